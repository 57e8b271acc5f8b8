"""Turn one job into one submitted swap, exactly once, whichever door the job came through.

Every entrance makes (or binds) the job record, then one path drives it by id:
- inbox/ upload: claim, i.e. create the job record with a conditional write (same event →
  same job id);
- uploads/<jobId>/target.<ext>: bind the upload to the jobs API's AWAITING_UPLOAD job
  (version-checked: a reused upload form cannot start the job twice);
- a {"jobId"} message from the jobs API: the job record exists already.

From there on (`submit_job`), all of it comes from the record, never from the message:
1. Take the job for this attempt (a lease), so concurrent deliveries submit nothing.
2. Check the inputs (fetching a URL target first); anything wrong ends the job REJECTED with
   a reason, never sent upstream.
3. Submit, and record what the upstream said: SUBMITTED, retry later, or FAILURE. A job
   cancelled while the swap was in flight gets its new task cancelled upstream.

A submit that times out after the request was sent, or whose worker died before
recording the answer, may have created an upstream task. The job remembers that
(`submitInDoubt`, or a lease left behind with no outcome), and the next attempt first
looks for that task in the swap API's task list (by `state`, our job id) and adopts it.
Only where the task cannot be found is the swap sent again; the job then follows only
one task: whichever is recorded first (by our submit's answer or by that task's own
callback, which carries our job id and token); snapshots of the other are refused.

The swap API is an upstream pool (upstream_pool): the member that took the task is recorded
on the job (and the member of an attempt in doubt, so the search looks there). When every
member is full or benched the job waits for capacity: the attempt is given back and the
message comes back after CapacityRetrySeconds (jittered), so MaxSubmitAttempts counts only
real failures. A container that saw every member full defers at once, before any AWS call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote

from aws_lambda_powertools.metrics import MetricUnit

from swapdrop import metric_names
from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.finishing import JobFinisher, ResultSource
from swapdrop.image_check import InvalidImage, inspect_image
from swapdrop.job_store import JobStore
from swapdrop.job_updates import JobNotFound, update_job
from swapdrop.jobs import Job, JobStatus, iso, utc_now
from swapdrop.layout import (
    FACES_PREFIX,
    UPLOADS_PREFIX,
    LayoutError,
    describe_face_keys,
    face_key_candidate_prefixes,
    face_name_problem,
    job_id_for,
    job_id_of_upload,
    match_face_keys,
    parse_inbox_key,
    printable,
)
from swapdrop.media_store import MediaStore, ObjectMissing, ObjectTooLarge
from swapdrop.observability import logger, metrics
from swapdrop.snapshots import SnapshotApplier
from swapdrop.target_fetch import TargetFetchRefused, fetch_target
from swapdrop.task_recovery import find_task_of, members_to_search
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import Accepted, Rejected, Retryable, SubmitOutcome, SwapImage, SwapRequest
from swapdrop.url_rules import shown_url

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900


class SwapGateway(Protocol):
    """The upstream pool as the submitter uses it (upstream_pool.UpstreamPool)."""

    def submit_swap(self, request: SwapRequest) -> SubmitOutcome: ...

    def has_capacity(self) -> bool:
        """False when this container saw every member full or benched (within their cooldowns)."""

    def members(self) -> list[str]: ...

    def recent_tasks(self, member: str | None = None) -> list[TaskSnapshot] | None:
        """That member's latest tasks (None: every member's); None when there is no task list."""

    def cancel_task(self, task_id: str, member: str | None = None) -> bool | None:
        """True once asked; None where the API has no cancel route; raises when the ask failed."""


@dataclass(slots=True)
class _Flight:
    sent: bool = False
    """The swap request has started to go out: from here on a task may exist upstream."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One object created under inbox/ or uploads/, as an S3 event names it (key already decoded)."""

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
    DROPPED = "DROPPED"
    """The message names no job this Swapdrop may start (unknown id, a reused upload form, ...)."""


@dataclass(frozen=True, slots=True)
class SubmitResult:
    job_id: str
    outcome: Outcome
    detail: str = ""
    retry_after_seconds: int | None = None
    capacity_wait: bool = False
    """RETRY_LATER because every upstream member is full or benched: no attempt was spent, and the
    message is sent again (a fresh receive count) rather than returned, so a long wait never reaches the DLQ."""


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    bucket: str
    callback_base_url: str
    max_image_bytes: int
    max_attempts: int
    instance_id: str = ""
    capacity_retry_seconds: int = 20
    """How soon a job waiting for upstream capacity is tried again (jittered 0.5-1.5x)."""


def backoff_seconds(attempt: int, rng: Callable[[float, float], float] = random.uniform) -> int:
    """Exponential backoff with jitter for the SQS message's next visibility."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return max(1, int(rng(ceiling * 0.75, ceiling)))


def capacity_delay_seconds(base: int, rng: Callable[[float, float], float] = random.uniform) -> int:
    """A capacity wait's delay: jittered so a burst's messages do not all come back at once."""
    return max(1, round(base * rng(0.5, 1.5)))


class _Rejection(Exception):
    pass


class _Missing(_Rejection):
    """An object to read is not there (a URL target not fetched yet, or a deleted input)."""


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
        target_source: ResultSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`target_source` fetches URL targets (a ResultDownloader capped at MaxImageBytes); `monotonic`
        times the swap API's submit answer."""
        self._jobs = jobs
        self._media = media
        self._upstream = upstream
        self._finisher = finisher
        self._callback_secret = callback_secret
        self._policy = policy
        self._clock = clock
        self._target_source = target_source
        self._monotonic = monotonic
        self._applier = SnapshotApplier(jobs, finisher, clock=clock)

    def submit(self, upload: Upload, lease_seconds: int) -> SubmitResult:
        """One object an S3 event announced: an uploads/ key binds to its jobs-API job, any other
        key is a drop-folder target (claimed as a new job). Either way the job is then driven by id."""
        if upload.key.startswith(UPLOADS_PREFIX):
            return self._bind_upload(upload, lease_seconds)
        job_id = upload.job_id
        # With upstream room, a new job is created already taken for its first attempt: one write, not a
        # create and a lease. Without, or when it existed (a redelivery), it is driven as any job.
        lease_until = int(self._clock().timestamp()) + lease_seconds if self._upstream.has_capacity() else None
        claimed = self._claim(upload, job_id, lease_until)
        if claimed is not None and lease_until is not None:
            return self._send(claimed)
        return self._drive(job_id, lease_seconds, held=claimed)

    def submit_job(self, job_id: str, lease_seconds: int) -> SubmitResult:
        """A job the jobs API created and queued as {"jobId"}: everything comes from its record."""
        try:
            return self._drive(job_id, lease_seconds)
        except JobNotFound:
            return self._dropped(job_id, "no job has this id", "UnknownJobMessages")

    def _bind_upload(self, upload: Upload, lease_seconds: int) -> SubmitResult:
        job_id = job_id_of_upload(upload.key)
        shown = {"upload_key": printable(upload.key[:300])}
        if job_id is None:
            return self._dropped("", "not an upload key the jobs API hands out", "UploadsDropped", **shown)
        job = self._jobs.get(job_id)
        if job is None:
            return self._dropped(job_id, "no job has this id", "UploadsDropped", **shown)
        if (job.bucket, job.targetKey) != (upload.bucket, upload.key):
            return self._dropped(job_id, "the job's upload form is for another key", "UploadsDropped", **shown)
        bound = update_job(
            self._jobs,
            job_id,
            lambda j: sm.bind_upload(j, self._clock(), upload.version_id, upload.sequencer, upload.event_time),
            held=job,
        )
        if bound.changed:
            metrics.add_metric(name="UploadsBound", unit="Count", value=1)
            logger.info("upload bound to its job", extra={"job_id": job_id, **shown})
        elif not _is_bound_to(bound.job, upload):
            # Another upload with the same form, or one after the job ended: it starts nothing.
            why = f"{bound.refusal}; this upload is not the one the job was bound to"
            return self._dropped(job_id, why, "UploadsDropped", **shown)
        # Bound now, or by this same event before (a redelivery): the one path from here on.
        return self._drive(job_id, lease_seconds, held=bound.job)

    def _dropped(self, job_id: str, why: str, metric: str, **extra: str) -> SubmitResult:
        metrics.add_metric(name=metric, unit="Count", value=1)
        logger.warning("message dropped", extra={"job_id": job_id, "why": why, **extra})
        return SubmitResult(job_id, Outcome.DROPPED, why)

    def _drive(self, job_id: str, lease_seconds: int, held: Job | None = None) -> SubmitResult:
        """Take the job, then send it (or adopt the task an earlier attempt left), all from its record.
        `held`: the job as this submitter just created or bound it, so it is not read again."""
        if not self._upstream.has_capacity():
            # This container saw every member full or benched: no read, no write, no lease.
            delay = capacity_delay_seconds(self._policy.capacity_retry_seconds)
            logger.debug("upstream pool full; job deferred", extra={"job_id": job_id, "delay": delay})
            why = "every upstream member is full or benched"
            return SubmitResult(job_id, Outcome.RETRY_LATER, why, retry_after_seconds=delay, capacity_wait=True)
        lease_until = int(self._clock().timestamp()) + lease_seconds
        taken = update_job(self._jobs, job_id, lambda j: sm.start_attempt(j, self._clock(), lease_until), held=held)
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
        return self._send(taken.job, in_doubt=taken.in_doubt)

    def _send(self, job: Job, in_doubt: bool = False) -> SubmitResult:
        """Send a job this submitter holds the lease of (or adopt the task an earlier attempt left, `in_doubt`);
        on an unexpected error, give the lease back."""
        flight = _Flight()
        try:
            if in_doubt and (adopted := self._adopt_lost_task(job)) is not None:
                return adopted
            return self._attempt(job, flight)
        except Exception as error:
            self._release(job.jobId, f"internal error ({type(error).__name__}); will retry", in_doubt=flight.sent)
            raise

    def _adopt_lost_task(self, job: Job) -> SubmitResult | None:
        """An earlier attempt may have sent the swap and died before recording it: find its task, on the member
        it was sent to (recorded when its answer was lost) or, when none is recorded, on each member in turn."""
        job_id = job.jobId
        task, why_not, member = None, None, None
        for member in members_to_search(self._upstream.members(), job.upstreamMember):
            task, why_not = find_task_of(self._upstream, job_id, member)
            if task is not None:
                break
        if task is None:
            logger.info("no upstream task found for an earlier attempt", extra={"job_id": job_id, "why": why_not})
            return None
        if member and member != job.upstreamMember:  # so polls and cancels go to the member holding it
            job = update_job(self._jobs, job_id, lambda j: sm.record_member(j, self._clock(), member), held=job).job
        decision = self._applier.apply(job_id, task, via="submit", held=job)
        if decision.refusal is not None:
            return None
        metrics.add_metric(name="TasksAdopted", unit="Count", value=1)
        logger.info("adopted the task of an earlier attempt", extra={"job_id": job_id, "task_id": task.id})
        return SubmitResult(job_id, Outcome.SUBMITTED, task.id)

    def _claim(self, upload: Upload, job_id: str, lease_until: int | None = None) -> Job | None:
        """The new job as written, or None when it already existed (a redelivery: read it then). With
        `lease_until`, written already taken for its first attempt (what start_attempt makes of it)."""
        now = self._clock()
        stamp = iso(now)
        try:
            face: str | None = parse_inbox_key(upload.key).face
        except LayoutError:
            face = None  # recorded as a rejection once the job is taken
        job = Job(
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
        if lease_until is not None:
            job = sm.start_attempt(job, now, lease_until).job
        if not self._jobs.create(job):
            return None
        metrics.add_metric(name="JobsCreated", unit="Count", value=1)
        logger.info("job created", extra={"job_id": job_id, "target_key": printable(upload.key)})
        return job

    def _release(self, job_id: str, error: str, in_doubt: bool) -> None:
        try:
            update_job(self._jobs, job_id, lambda j: sm.release_attempt(j, self._clock(), error, in_doubt))
        except Exception:  # the lease then simply expires
            logger.exception("could not release the job", extra={"job_id": job_id})

    def _attempt(self, job: Job, flight: _Flight) -> SubmitResult:
        try:
            request, job = self._build_request(job)
        except _Rejection as rejection:
            return self._reject(job.jobId, str(rejection))
        flight.sent = True
        started = self._monotonic()
        outcome = self._upstream.submit_swap(request)
        elapsed_ms = (self._monotonic() - started) * 1000
        metrics.add_metric(name=metric_names.UPSTREAM_SUBMIT_LATENCY, unit=MetricUnit.Milliseconds, value=elapsed_ms)
        match outcome:
            case Accepted(task_id=task_id, queue_position=position, member=member):
                return self._accepted(job, task_id, position, member)
            case Rejected(reason=reason):
                return self._failed(job.jobId, reason)
            case Retryable(reason=reason, capacity=True):
                return self._capacity_wait(job, reason)
            case Retryable(reason=reason, maybe_accepted=maybe_accepted, member=member):
                return self._retryable(job.jobId, reason, maybe_accepted, member)
        raise TypeError(f"unexpected submit outcome {outcome!r}")

    def _build_request(self, job: Job) -> tuple[SwapRequest, Job]:
        """The swap request, and the job as noting its inputs left it (the version in hand)."""
        if job.bucket != self._policy.bucket:
            raise _Rejection(f"bucket '{job.bucket}' is not this Swapdrop's bucket '{self._policy.bucket}'")
        face = self._face_of(job)
        source_key = self._resolve_face(face)
        job = update_job(
            self._jobs, job.jobId, lambda j: sm.note_inputs(j, self._clock(), face, source_key), held=job
        ).job
        source_bytes = self._read(source_key, f"the face image '{source_key}'")
        target_bytes = self._read_target(job)
        try:
            source_info = inspect_image(source_bytes, f"the face image '{source_key}'")
            target_info = inspect_image(target_bytes, f"the target '{job.targetKey}'")
        except InvalidImage as error:
            raise _Rejection(str(error)) from None
        if source_bytes == target_bytes:
            raise _Rejection(f"the target is the same image as the face '{source_key}'; there is nothing to swap")
        token = token_for(self._callback_secret(), job.jobId)
        request = SwapRequest(
            source=SwapImage(source_bytes, source_info.mime_type),
            target=SwapImage(target_bytes, target_info.mime_type),
            notify_hook=f"{self._policy.callback_base_url}/{quote(job.jobId, safe='')}?token={token}",
            state=job.jobId,
            instance_id=self._policy.instance_id,
        )
        return request, job

    @staticmethod
    def _face_of(job: Job) -> str:
        """A jobs-API or Swap Requested job names its face; a drop-folder job's face is its inbox folder."""
        if job.origin in ("api", "event"):
            if not job.face:
                raise _Rejection("the job names no face")
            problem = face_name_problem(job.face)
            if problem:
                raise _Rejection(problem)
            return job.face
        try:
            return parse_inbox_key(job.targetKey).face
        except LayoutError as error:
            raise _Rejection(str(error)) from None

    def _read_target(self, job: Job) -> bytes:
        """The version the record names (the one its event announced), not whatever was uploaded since.

        A URL target is fetched into targetKey the first time; a later attempt reads it back."""
        try:
            return self._read(job.targetKey, f"the target '{job.targetKey}'", job.targetVersionId)
        except _Missing:
            if job.targetUrl is None:
                raise
        return self._fetch_target(job, job.targetUrl)

    def _fetch_target(self, job: Job, url: str) -> bytes:
        if self._target_source is None:
            raise _Rejection("this Swapdrop was set up without a downloader for URL targets")
        try:
            image = fetch_target(self._target_source, url)
        except TargetFetchRefused as error:
            raise _Rejection(str(error)) from None
        self._media.write(job.targetKey, image.data, image.mime_type, {"job-id": job.jobId})
        metrics.add_metric(name="TargetsFetched", unit="Count", value=1)
        logger.info(
            "target fetched",
            extra={"job_id": job.jobId, "target_url": shown_url(url), "bytes": len(image.data)},
        )
        return image.data

    FACE_CACHE_SECONDS = 60.0
    FACE_CACHE_SIZE = 1024

    def _resolve_face(self, face: str) -> str:
        """The face's one image key. Found keys are kept per container for FACE_CACHE_SECONDS, so a
        steady stream of jobs for one face lists S3 (a LIST: PUT-priced) once a minute, not per job:
        a kept key is confirmed with a HEAD (GET-priced, 1/12 of a LIST), and one deleted or renamed
        since is listed again. A miss is never kept (a face uploaded after a rejection is found at
        once); a second image of the face added meanwhile is noticed when the entry expires."""
        cache: dict[str, tuple[str, float]] = vars(self).setdefault("_face_keys", {})
        now = self._monotonic()
        kept = cache.get(face)
        if kept is not None and now - kept[1] < self.FACE_CACHE_SECONDS and self._media.head(kept[0]) is not None:
            return kept[0]
        cache.pop(face, None)
        listed = [key for prefix in face_key_candidate_prefixes(face) for key in self._media.list_keys(prefix)]
        keys = match_face_keys(face, listed)
        if len(keys) == 1:
            if len(cache) >= self.FACE_CACHE_SIZE:
                cache.clear()
            cache[face] = (keys[0], now)
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
            raise _Missing(f"{label} no longer exists") from None
        except ObjectTooLarge as error:
            raise _Rejection(
                f"{label} is {error.size:,} bytes, over the limit of {error.limit:,} bytes "
                f"({error.limit / 1048576:.1f} MiB)"
            ) from None

    # --- recording outcomes -------------------------------------------------------

    def _reject(self, job_id: str, reason: str) -> SubmitResult:
        decision = update_job(self._jobs, job_id, lambda j: sm.reject(j, self._clock(), reason))  # counts JobsRejected
        logger.info("job rejected", extra={"job_id": job_id, "reason": reason})
        self._finisher.finish(decision.job, held=decision.claimed)
        return SubmitResult(job_id, Outcome.REJECTED, reason)

    def _accepted(self, job: Job, task_id: str, position: int | None, member: str) -> SubmitResult:
        job_id = job.jobId
        decision = update_job(
            self._jobs,
            job_id,
            lambda j: sm.record_accepted(j, self._clock(), task_id, position, member=member),
            held=job,
        )
        if decision.refusal:
            metrics.add_metric(name="OrphanUpstreamTasks", unit="Count", value=1)
            logger.warning(
                "upstream task not followed", extra={"job_id": job_id, "task_id": task_id, "why": decision.refusal}
            )
            if decision.job.status is JobStatus.CANCELLED and decision.job.taskId != task_id:
                self._cancel_orphan(job_id, task_id, member)
        else:
            metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
            logger.info(
                "job submitted",
                extra={"job_id": job_id, "task_id": task_id, "queue_position": position, "member": member},
            )
            if decision.job.webhookOutbox:  # the "started" webhook
                self._finisher.finish(decision.job)
        return SubmitResult(job_id, Outcome.SUBMITTED, task_id)

    def _cancel_orphan(self, job_id: str, task_id: str, member: str) -> None:
        """The job was cancelled while its swap was in flight: nobody else knows this task, so stop it
        (on the member that took it)."""
        try:
            asked = self._upstream.cancel_task(task_id, member or None)
        except Exception as error:  # best effort: the job is CANCELLED whatever the upstream does
            logger.warning(
                "could not cancel the task of a cancelled job",
                extra={"job_id": job_id, "task_id": task_id, "error": type(error).__name__},
            )
            return
        if asked is None:
            logger.info("the swap API has no cancel route", extra={"job_id": job_id, "task_id": task_id})
            return
        metrics.add_metric(name="OrphanTasksCancelled", unit="Count", value=1)
        logger.info("task of a cancelled job cancelled upstream", extra={"job_id": job_id, "task_id": task_id})

    def _failed(self, job_id: str, reason: str) -> SubmitResult:
        decision = update_job(self._jobs, job_id, lambda j: sm.record_final_failure(j, self._clock(), reason))
        metrics.add_metric(name="SubmitsRefused", unit="Count", value=1)
        logger.warning("upstream refused the job", extra={"job_id": job_id, "reason": reason})
        self._finisher.finish(decision.job, held=decision.claimed)
        return SubmitResult(job_id, Outcome.FAILED, reason)

    def _capacity_wait(self, job: Job, reason: str) -> SubmitResult:
        """Every member is full or benched: the job waits, its attempt given back, the lease cleared."""
        decision = update_job(
            self._jobs, job.jobId, lambda j: sm.record_capacity_wait(j, self._clock(), reason), held=job
        )
        if decision.job.status is not JobStatus.PENDING:  # cancelled meanwhile, or a callback came
            return SubmitResult(job.jobId, Outcome.DUPLICATE, f"job is {decision.job.status.value}")
        delay = capacity_delay_seconds(self._policy.capacity_retry_seconds)
        logger.info("job waits for upstream capacity", extra={"job_id": job.jobId, "reason": reason, "delay": delay})
        return SubmitResult(job.jobId, Outcome.RETRY_LATER, reason, retry_after_seconds=delay, capacity_wait=True)

    def _retryable(self, job_id: str, reason: str, maybe_accepted: bool, member: str = "") -> SubmitResult:
        decision = update_job(
            self._jobs,
            job_id,
            lambda j: sm.record_retryable_failure(
                j, self._clock(), reason, self._policy.max_attempts, maybe_accepted, member=member
            ),
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


def _is_bound_to(job: Job, upload: Upload) -> bool:
    """Whether `upload` is the one the job was bound to (a redelivery of that event), not another."""
    if job.status is JobStatus.AWAITING_UPLOAD:
        return False
    bound = (job.targetVersionId, job.targetSequencer, job.targetEventTime)
    return bound == (upload.version_id, upload.sequencer, upload.event_time)
