"""What happens after a job's status is settled: keep the result image, announce the end.

Both are retried by the reconciler until done, so neither a broken download nor an
EventBridge hiccup loses a result or an event (the job keeps `openFlag` until then).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from swapdrop import state_machine as sm
from swapdrop.job_events import JobEventPublisher
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, utc_now
from swapdrop.layout import LayoutError, parse_inbox_key, result_key
from swapdrop.media_store import MediaStore
from swapdrop.observability import logger, metrics
from swapdrop.result_download import DownloadedImage, DownloadRefused


class ResultSource(Protocol):
    """What the finisher needs from a downloader (see result_download.ResultDownloader)."""

    def download(self, url: str) -> DownloadedImage: ...


class JobFinisher:
    def __init__(
        self,
        jobs: JobStore,
        media: MediaStore,
        downloader: ResultSource,
        events: JobEventPublisher,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self._media = media
        self._downloader = downloader
        self._events = events
        self._clock = clock

    def finish(self, job: Job) -> Job:
        if job.needs_result_copy:
            job = self._copy_result(job)
        if job.eventPending and not job.needs_result_copy:
            job = self._publish(job)
        return job

    def _copy_result(self, job: Job) -> Job:
        assert job.imageUrl is not None
        try:
            target = parse_inbox_key(job.targetKey)
            image = self._downloader.download(job.imageUrl)
            key = result_key(target, image.extension)
            self._media.write(key, image.data, image.mime_type, {"job-id": job.jobId, "task-id": job.taskId or ""})
        except (DownloadRefused, LayoutError) as error:
            return self._copy_failed(job, str(error))
        except (ClientError, BotoCoreError) as error:
            return self._copy_failed(job, f"could not write the result to S3 ({_aws_error_code(error)})")
        metrics.add_metric(name="ResultsCopied", unit="Count", value=1)
        logger.info("result copied", extra={"job_id": job.jobId, "result_key": key})
        return update_job(self._jobs, job.jobId, lambda j: sm.record_result_copied(j, self._clock(), key)).job

    def _copy_failed(self, job: Job, reason: str) -> Job:
        metrics.add_metric(name="ResultCopyFailures", unit="Count", value=1)
        logger.warning("result copy failed", extra={"job_id": job.jobId, "reason": reason})
        return update_job(self._jobs, job.jobId, lambda j: sm.record_result_copy_failed(j, self._clock(), reason)).job

    def _publish(self, job: Job) -> Job:
        try:
            self._events.job_finished(job)
        except Exception as error:  # any failure leaves the outbox flag set; the reconciler retries
            logger.warning("job event not published", extra={"job_id": job.jobId, "error": type(error).__name__})
            return job
        return update_job(self._jobs, job.jobId, lambda j: sm.record_event_published(j, self._clock())).job


def _aws_error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__
