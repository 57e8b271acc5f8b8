"""What happens after a job's status is settled: keep the result image, announce the end.

Both are retried by the reconciler until done, so neither a broken download nor an
EventBridge hiccup loses a result or an event (the job stays open until then).
A result never replaces one from a newer upload of the same target (see media_store).

The copy and the event are recorded in one write when the copy hands over the event's claim:
the result is in S3 before the event goes out (so the event never names a missing result), and
a crash before that write redoes both, as a crash between an event and its record always did:
an event is delivered at least once either way. One DynamoDB write a job fewer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from swapdrop import state_machine as sm
from swapdrop.job_events import JobEventPublisher
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import COPY, DELIVERY_ORDER, EVENT, WEBHOOK, Job, utc_now
from swapdrop.layout import LayoutError, parse_inbox_key, result_key
from swapdrop.media_store import MediaStore, ResultWriteContended, TargetOrder
from swapdrop.observability import logger, metrics
from swapdrop.result_download import DownloadedImage, DownloadRefused


class ResultSource(Protocol):
    """What the finisher needs from a downloader (see result_download.ResultDownloader)."""

    def download(self, url: str) -> DownloadedImage: ...


class DeliveryFailed(Exception):
    """An outbox consumer could not do its work: retried later, or given up when `final`."""

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.final = reason, final


class OutboxConsumer(Protocol):
    """One outbox entry's work beyond copy and event (the webhook hand-over, the task-token answer).
    Returns when done; raises DeliveryFailed (or anything: retried) when not."""

    def deliver(self, job: Job) -> None: ...


class JobFinisher:
    """Works the job's outbox (`deliveries`): copy, then event, each under a claim.

    A finisher works an entry only while it holds its claim: the one it was handed (`held`, by
    the write that made the job terminal or finished the entry before), or one it claims here
    with a version-checked write. A second finisher racing on the same job finds the entry
    claimed and leaves it, so a duplicate copy or event needs a crash between the work and its
    record, never a mere race.
    """

    def __init__(
        self,
        jobs: JobStore,
        media: MediaStore,
        downloader: ResultSource,
        events: JobEventPublisher,
        clock: Callable[[], datetime] = utc_now,
        consumers: Mapping[str, OutboxConsumer] | None = None,
    ) -> None:
        self._jobs = jobs
        self._media = media
        self._downloader = downloader
        self._events = events
        self._clock = clock
        self._consumers = dict(consumers or {})
        """WEBHOOK and SFN consumers; an entry whose consumer this finisher lacks is left for one that has it."""

    def finish(self, job: Job, held: str | None = None) -> Job:
        job = self._hand_over_webhooks(job)
        for _ in DELIVERY_ORDER:
            name = job.next_delivery
            if name is None:
                return job
            if name not in (COPY, EVENT) and name not in self._consumers:
                return job  # not this finisher's work (the reconciler's finisher has every consumer)
            if held != name:
                if not job.deliveries[name].claimable(int(self._clock().timestamp())):
                    return job  # another finisher holds it (or it is not due yet)
                claim = update_job(
                    self._jobs, job.jobId, lambda j, n=name: sm.claim_delivery(j, self._clock(), n), held=job
                )
                if claim.claimed != name:
                    return claim.job
                job = claim.job
            worked: tuple[str, ...] = (name,)
            if name == COPY:
                decision = self._copy_result(job)
                worked = (COPY, EVENT)  # the event too, when the copy's record carried it
            elif name == EVENT:
                decision = self._publish(job)
            else:
                decision = self._consume(job, name)
            job, held = decision.job, decision.claimed
            if job.next_delivery in worked and held != job.next_delivery:
                return job  # this entry failed and was given back: retried later
        return job

    def _hand_over_webhooks(self, job: Job) -> Job:
        """Pending started/progress webhook messages to the WebhookQueue (the WEBHOOK consumer's
        `hand_over`); on failure they stay pending and the job open, for the reconciler's sweep."""
        hand_over = getattr(self._consumers.get(WEBHOOK), "hand_over", None)
        if not job.webhookOutbox or hand_over is None:
            return job
        sent = tuple(job.webhookOutbox)
        try:
            hand_over(job)
        except Exception as error:
            logger.warning("webhook hand-over failed", extra={"job_id": job.jobId, "error": type(error).__name__})
            return job
        return update_job(
            self._jobs, job.jobId, lambda j: sm.webhooks_handed_over(j, self._clock(), sent), held=job
        ).job

    def _copy_result(self, job: Job) -> sm.Decision:
        assert job.imageUrl is not None
        try:
            name_result = _result_namer(job)
            image = self._downloader.download(job.imageUrl)
            key = name_result(image.extension)
            written = self._media.write_result(
                key,
                image.data,
                image.mime_type,
                {"job-id": job.jobId, "task-id": job.taskId or ""},
                TargetOrder(job.targetSequencer, job.targetEventTime),
            )
        except (DownloadRefused, LayoutError) as error:
            return self._copy_failed(job, str(error))
        except ResultWriteContended:
            return self._copy_failed(job, "other writers kept replacing the result; will retry")
        except (ClientError, BotoCoreError) as error:
            return self._copy_failed(job, f"could not write the result to S3 ({_aws_error_code(error)})")
        if written.superseded_by is not None:
            why = f"superseded by a newer upload of the same target (job {written.superseded_by} wrote {key})"
            metrics.add_metric(name="ResultsSuperseded", unit="Count", value=1)
            logger.info("result superseded", extra={"job_id": job.jobId, "result_key": key})
            return update_job(
                self._jobs, job.jobId, lambda j: sm.record_result_superseded(j, self._clock(), why), held=job
            )
        metrics.add_metric(name="ResultsCopied", unit="Count", value=1)
        logger.info("result copied", extra={"job_id": job.jobId, "result_key": key})

        def copied(j: Job) -> sm.Decision:
            return sm.record_result_copied(j, self._clock(), key, written.version_id)

        if copied(job).claimed == EVENT:  # the event is next and due: announce now, record both at once
            return self._publish(job, first=copied)
        return update_job(self._jobs, job.jobId, copied, held=job)

    def _copy_failed(self, job: Job, reason: str) -> sm.Decision:
        metrics.add_metric(name="ResultCopyFailures", unit="Count", value=1)
        logger.warning("result copy failed", extra={"job_id": job.jobId, "reason": reason})
        return update_job(
            self._jobs, job.jobId, lambda j: sm.record_result_copy_failed(j, self._clock(), reason), held=job
        )

    def _publish(self, job: Job, first: Callable[[Job], sm.Decision] | None = None) -> sm.Decision:
        """Announce the job's end and record it. `first`: the copy's record, not written yet: the event
        describes the job as that record leaves it, and both go in one write."""
        announced = first(job).job if first else job
        try:
            self._events.job_finished(announced)
        except Exception as error:  # the claim is given back; the reconciler retries
            logger.warning("job event not published", extra={"job_id": job.jobId, "error": type(error).__name__})
            why = f"could not publish ({type(error).__name__})"
            failed = _after(first, lambda j: sm.record_event_failed(j, self._clock(), why))
            return update_job(self._jobs, job.jobId, failed, held=job)
        published = _after(first, lambda j: sm.record_event_published(j, self._clock()))
        return update_job(self._jobs, job.jobId, published, held=job)

    def _consume(self, job: Job, name: str) -> sm.Decision:
        reason, final = None, False
        try:
            self._consumers[name].deliver(job)
        except DeliveryFailed as failed:
            reason, final = failed.reason, failed.final
        except Exception as error:  # the claim is given back; the reconciler retries
            reason = f"{name} delivery failed ({type(error).__name__})"
        if reason is None:
            return update_job(self._jobs, job.jobId, lambda j: sm.record_delivered(j, self._clock(), name), held=job)
        metrics.add_metric(name="OutboxDeliveryFailures", unit="Count", value=1)
        logger.warning("outbox delivery failed", extra={"job_id": job.jobId, "entry": name, "reason": reason})
        return update_job(
            self._jobs,
            job.jobId,
            lambda j: sm.record_delivery_failed(j, self._clock(), name, reason, final),
            held=job,
        )


def _after(
    first: Callable[[Job], sm.Decision] | None, then: Callable[[Job], sm.Decision]
) -> Callable[[Job], sm.Decision]:
    """`then` on the job as `first` leaves it, one decision for one write. `then` records the event, so it
    runs only when `first` hands over the event's claim: on a job where someone else recorded the copy
    meanwhile, the event is theirs to record (ours went out anyway: at least once)."""
    if first is None:
        return then

    def both(job: Job) -> sm.Decision:
        one = first(job)
        if one.claimed != EVENT:
            return one
        two = then(one.job)
        return dataclasses.replace(
            two, changed=one.changed or two.changed, became_terminal=one.became_terminal or two.became_terminal
        )

    return both


def _result_namer(job: Job) -> Callable[[str], str]:
    """The result key for an extension: `resultBase.<ext>` for a jobs-API job, else the inbox rule
    (same face and path as the target). Checked before downloading: a bad target key fails early."""
    if job.resultBase:
        return lambda extension: f"{job.resultBase}.{extension}"
    target = parse_inbox_key(job.targetKey)
    return lambda extension: result_key(target, extension)


def _aws_error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
