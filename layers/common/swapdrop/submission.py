"""Turn one uploaded target into one submitted swap job, exactly once.

1. Claim: create the job record with a conditional write (same event → same job id).
2. Take the job for this attempt (a lease), so concurrent deliveries submit nothing.
3. Check the inputs; anything wrong ends the job REJECTED with a reason, never sent upstream.
4. Submit, and record what the upstream said: SUBMITTED, retry later, or FAILURE.

A submit that times out after the request was sent, or whose worker died before
recording the answer, may have created an upstream task. The job remembers that
(`submitInDoubt`, or a lease left behind with no outcome), and the next attempt first
looks for that task in the swap API's task list (by `state`, our job id) and adopts it.
Only where the task cannot be found is the swap sent again; the job then follows only
one task: whichever is recorded first (by our submit's answer or by that task's own
callback, which carries our job id and token); snapshots of the other are refused.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote

from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.finishing import JobFinisher
from swapdrop.image_check import InvalidImage, inspect_image
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, iso, utc_now
from swapdrop.layout import (
    FACES_PREFIX,
    LayoutError,
    describe_face_keys,
    face_key_candidate_prefixes,
    job_id_for,
    match_face_keys,
    parse_inbox_key,
    printable,
)
from swapdrop.media_store import MediaStore, ObjectMissing, ObjectTooLarge
from swapdrop.observability import logger, metrics
from swapdrop.snapshots import SnapshotApplier
from swapdrop.task_recovery import TaskFinder, find_task_of
from swapdrop.upstream import Accepted, Rejected, Retryable, SubmitOutcome, SwapImage, SwapRequest

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900


class SwapGateway(TaskFinder, Protocol):
    def submit_swap(self, request: SwapRequest) -> SubmitOutcome: ...


@dataclass(slots=True)
class _Flight:
    sent: bool = False
    """The swap request has started to go out: from here on a task may exist upstream."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One object created under inbox/, as an S3 event names it (key already decoded)."""

    bucket: str
    key: str
    sequencer: str | None
    version_id: str | None = None
    fallback_identity: str = ""
    """eTag@eventTime, for event sources that send neither sequencer nor versionId."""
    event_time: str | None = None
    """The S3 event's time, ISO-8601 UTC (orders two uploads of one key when there is no sequencer)."""

    @property
    def job_id(self) -> str:
        return job_id_for(self.bucket, self.key, self.version_id or self.sequencer or self.fallback_identity)


class Outcome(StrEnum):
    SUBMITTED = "SUBMITTED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    RETRY_LATER = "RETRY_LATER"
    DUPLICATE = "DUPLICATE"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    job_id: str
    outcome: Outcome
    detail: str = ""
    retry_after_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    bucket: str
    callback_base_url: str
    max_image_bytes: int
    max_attempts: int
    instance_id: str = ""


def backoff_seconds(attempt: int, rng: Callable[[float, float], float] = random.uniform) -> int:
    """Exponential backoff with jitter for the SQS message's next visibility."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return max(1, int(rng(ceiling * 0.75, ceiling)))


class _Rejection(Exception):
    pass


class Submitter:
    def __init__(
        self,
        jobs: JobStore,
        media: MediaStore,
        upstream: SwapGateway,
        finisher: JobFinisher,
        callback_secret: Callable[[], str],
        policy: SubmitPolicy,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self._media = media
        self._upstream = upstream
        self._finisher = finisher
        self._callback_secret = callback_secret
        self._policy = policy
        self._clock = clock
        self._applier = SnapshotApplier(jobs, finisher, clock=clock)

    def submit(self, upload: Upload, lease_seconds: int) -> SubmitResult:
        job_id = upload.job_id
        self._claim(upload, job_id)
        lease_until = int(self._clock().timestamp()) + lease_seconds
        taken = update_job(self._jobs, job_id, lambda j: sm.start_attempt(j, self._clock(), lease_until))
        if not taken.changed:
            held_for = sm.lease_left(taken.job, self._clock())
            if held_for:
                # Another submitter holds the job. If it dies, only its lease's end can tell, and
                # its own message may come back before that (or never): keep this delivery until then.
                metrics.add_metric(name="DeliveriesDeferred", unit="Count", value=1)
                logger.info("job held by another submitter", extra={"job_id": job_id, "retry_in": held_for})
                return SubmitResult(job_id, Outcome.RETRY_LATER, taken.refusal or "", retry_after_seconds=held_for)
            metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
            logger.info("duplicate delivery ignored", extra={"job_id": job_id, "why": taken.refusal})
            return SubmitResult(job_id, Outcome.DUPLICATE, taken.refusal or "")
        flight = _Flight()
        try:
            if taken.in_doubt and (adopted := self._adopt_lost_task(job_id)) is not None:
                return adopted
            return self._attempt(taken.job, upload, flight)
        except Exception as error:
            self._release(job_id, f"internal error ({type(error).__name__}); will retry", in_doubt=flight.sent)
            raise

    def _adopt_lost_task(self, job_id: str) -> SubmitResult | None:
        """An earlier attempt may have sent the swap and died before recording it: find its task."""
        task, why_not = find_task_of(self._upstream, job_id)
        if task is None:
            logger.info("no upstream task found for an earlier attempt", extra={"job_id": job_id, "why": why_not})
            return None
        decision = self._applier.apply(job_id, task, via="submit")
        if decision.refusal is not None:
            return None
        metrics.add_metric(name="TasksAdopted", unit="Count", value=1)
        logger.info("adopted the task of an earlier attempt", extra={"job_id": job_id, "task_id": task.id})
        return SubmitResult(job_id, Outcome.SUBMITTED, task.id)

    def _claim(self, upload: Upload, job_id: str) -> None:
        stamp = iso(self._clock())
        try:
            face: str | None = parse_inbox_key(upload.key).face
        except LayoutError:
            face = None  # recorded as a rejection once the job is taken
        created = self._jobs.create(
            Job(
                jobId=job_id,
                status=JobStatus.PENDING,
                bucket=upload.bucket,
                targetKey=upload.key,
                targetVersionId=upload.version_id,
                targetSequencer=upload.sequencer,
                targetEventTime=upload.event_time,
                face=face,
                createdAt=stamp,
                updatedAt=stamp,
            )
        )
        if created:
            metrics.add_metric(name="JobsCreated", unit="Count", value=1)
            logger.info("job created", extra={"job_id": job_id, "target_key": printable(upload.key)})

    def _release(self, job_id: str, error: str, in_doubt: bool) -> None:
        try:
            update_job(self._jobs, job_id, lambda j: sm.release_attempt(j, self._clock(), error, in_doubt))
        except Exception:  # the lease then simply expires
            logger.exception("could not release the job", extra={"job_id": job_id})

    def _attempt(self, job: Job, upload: Upload, flight: _Flight) -> SubmitResult:
        try:
            request = self._build_request(job, upload)
        except _Rejection as rejection:
            return self._reject(job.jobId, str(rejection))
        flight.sent = True
        outcome = self._upstream.submit_swap(request)
        match outcome:
            case Accepted(task_id=task_id, queue_position=position):
                return self._accepted(job.jobId, task_id, position)
            case Rejected(reason=reason):
                return self._failed(job.jobId, reason)
            case Retryable(reason=reason, maybe_accepted=maybe_accepted):
                return self._retryable(job.jobId, reason, maybe_accepted)
        raise TypeError(f"unexpected submit outcome {outcome!r}")

    def _build_request(self, job: Job, upload: Upload) -> SwapRequest:
        if upload.bucket != self._policy.bucket:
            raise _Rejection(f"bucket '{upload.bucket}' is not this Swapdrop's bucket '{self._policy.bucket}'")
        try:
            target = parse_inbox_key(upload.key)
        except LayoutError as error:
            raise _Rejection(str(error)) from None
        source_key = self._resolve_face(target.face)
        update_job(self._jobs, job.jobId, lambda j: sm.note_inputs(j, self._clock(), target.face, source_key))
        source_bytes = self._read(source_key, f"the face image '{source_key}'")
        # the version this event announced, not whatever was uploaded to the key since
        target_bytes = self._read(upload.key, f"the target '{upload.key}'", upload.version_id)
        try:
            source_info = inspect_image(source_bytes, f"the face image '{source_key}'")
            target_info = inspect_image(target_bytes, f"the target '{upload.key}'")
        except InvalidImage as error:
            raise _Rejection(str(error)) from None
        if source_bytes == target_bytes:
            raise _Rejection(f"the target is the same image as the face '{source_key}'; there is nothing to swap")
        token = token_for(self._callback_secret(), job.jobId)
        return SwapRequest(
            source=SwapImage(source_bytes, source_info.mime_type),
            target=SwapImage(target_bytes, target_info.mime_type),
            notify_hook=f"{self._policy.callback_base_url}/{quote(job.jobId, safe='')}?token={token}",
            state=job.jobId,
            instance_id=self._policy.instance_id,
        )

    def _resolve_face(self, face: str) -> str:
        listed = [key for prefix in face_key_candidate_prefixes(face) for key in self._media.list_keys(prefix)]
        keys = match_face_keys(face, listed)
        if not keys:
            raise _Rejection(
                f"no face named '{face}': upload {FACES_PREFIX}{face}.jpg (or .jpeg, .png, .webp) first, "
                f"then upload the target again"
            )
        if len(keys) > 1:
            raise _Rejection(f"face '{face}' is ambiguous: {describe_face_keys(keys)} all exist; keep only one")
        return keys[0]

    def _read(self, key: str, label: str, version_id: str | None = None) -> bytes:
        try:
            return self._media.read(key, self._policy.max_image_bytes, version_id)
        except ObjectMissing:
            raise _Rejection(f"{label} no longer exists") from None
        except ObjectTooLarge as error:
            raise _Rejection(
                f"{label} is {error.size:,} bytes, over the limit of {error.limit:,} bytes "
                f"({error.limit / 1048576:.1f} MiB)"
            ) from None

    # --- recording outcomes -------------------------------------------------------

    def _reject(self, job_id: str, reason: str) -> SubmitResult:
        decision = update_job(self._jobs, job_id, lambda j: sm.reject(j, self._clock(), reason))
        metrics.add_metric(name="JobsRejected", unit="Count", value=1)
        logger.info("job rejected", extra={"job_id": job_id, "reason": reason})
        self._finisher.finish(decision.job, held=decision.claimed)
        return SubmitResult(job_id, Outcome.REJECTED, reason)

    def _accepted(self, job_id: str, task_id: str, position: int | None) -> SubmitResult:
        decision = update_job(self._jobs, job_id, lambda j: sm.record_accepted(j, self._clock(), task_id, position))
        if decision.refusal:
            metrics.add_metric(name="OrphanUpstreamTasks", unit="Count", value=1)
            logger.warning(
                "upstream task not followed", extra={"job_id": job_id, "task_id": task_id, "why": decision.refusal}
            )
        else:
            metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
            logger.info("job submitted", extra={"job_id": job_id, "task_id": task_id, "queue_position": position})
        return SubmitResult(job_id, Outcome.SUBMITTED, task_id)

    def _failed(self, job_id: str, reason: str) -> SubmitResult:
        decision = update_job(self._jobs, job_id, lambda j: sm.record_final_failure(j, self._clock(), reason))
        metrics.add_metric(name="SubmitsRefused", unit="Count", value=1)
        logger.warning("upstream refused the job", extra={"job_id": job_id, "reason": reason})
        self._finisher.finish(decision.job, held=decision.claimed)
        return SubmitResult(job_id, Outcome.FAILED, reason)

    def _retryable(self, job_id: str, reason: str, maybe_accepted: bool) -> SubmitResult:
        decision = update_job(
            self._jobs,
            job_id,
            lambda j: sm.record_retryable_failure(j, self._clock(), reason, self._policy.max_attempts, maybe_accepted),
        )
        if maybe_accepted:
            metrics.add_metric(name="AmbiguousSubmits", unit="Count", value=1)
        if decision.job.status is JobStatus.FAILURE:
            logger.warning("job failed after its last attempt", extra={"job_id": job_id, "reason": reason})
            self._finisher.finish(decision.job, held=decision.claimed)
            return SubmitResult(job_id, Outcome.FAILED, decision.job.failReason or reason)
        if decision.job.status is not JobStatus.PENDING:  # its task's callback arrived meanwhile
            return SubmitResult(job_id, Outcome.SUBMITTED, decision.job.taskId or "")
        delay = backoff_seconds(decision.job.attempts)
        metrics.add_metric(name="SubmitRetries", unit="Count", value=1)
        logger.info(
            "submit will be retried",
            extra={"job_id": job_id, "reason": reason, "attempt": decision.job.attempts, "delay": delay},
        )
        return SubmitResult(job_id, Outcome.RETRY_LATER, reason, retry_after_seconds=delay)
