"""SubmitFunction: S3 upload notifications and jobs-API job ids (via SQS; S3 events also direct) → submitted swaps."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, metrics, publish_metrics, tracer
from swapdrop.s3_events import JobMessage, Malformed, S3TestEvent, S3Uploads, read_message, uploads_from_s3_event
from swapdrop.sqs_batch import SqsMessage, process_partial_response
from swapdrop.submission import Outcome, SubmitResult, Submitter, Upload
from swapdrop.submit_queue import SubmitQueue

LEASE_MARGIN_SECONDS = 15


class RetryLater(Exception):
    """The record goes back to the queue; its visibility was already set to the backoff."""


def lease_seconds(context: LambdaContext) -> int:
    """A submitter holds a job for as long as this invocation can run, plus a margin."""
    return context.get_remaining_time_in_millis() // 1000 + LEASE_MARGIN_SECONDS


def submit_all(event: dict[str, Any], submitter: Submitter, lease: int) -> int | None:
    """Submit every upload in one S3 event; the longest backoff asked for, if any."""
    return submit_uploads(uploads_from_s3_event(event), submitter, lease)


def submit_uploads(uploads: list[Upload], submitter: Submitter, lease: int) -> int | None:
    return longest_backoff([submitter.submit(upload, lease) for upload in uploads])


def longest_backoff(results: list[SubmitResult]) -> int | None:
    delays = [r.retry_after_seconds or 0 for r in results if r.outcome is Outcome.RETRY_LATER]
    return max(delays) if delays else None


def handle_record(record: SqsMessage, submitter: Submitter, queue: SubmitQueue, lease: int) -> None:
    try:
        _handle_record(record, submitter, queue, lease)
    except RetryLater:
        raise
    except Exception:
        logger.exception("record failed; it returns to the queue", extra={"message_id": record.message_id})
        raise


def _handle_record(record: SqsMessage, submitter: Submitter, queue: SubmitQueue, lease: int) -> None:
    match read_message(record.body):
        case S3TestEvent():
            logger.info("s3:TestEvent dropped")
            return
        case Malformed(shape=shape):
            # Retrying cannot mend it: drop it (a DLQ would only collect it), say what it looked like.
            metrics.add_metric(name="MalformedMessages", unit="Count", value=1)
            logger.warning(
                "message dropped: not one SubmitFunction takes", extra={"message_id": record.message_id, "shape": shape}
            )
            return
        case JobMessage(job_id=job_id):
            results = [submitter.submit_job(job_id, lease)]
        case S3Uploads(uploads=uploads):
            results = [submitter.submit(upload, lease) for upload in uploads]
    # Jobs waiting for upstream capacity (their records exist) go back as new {"jobId"} messages: returning
    # this one would count a receive per wait, and a long wait would reach the dead-letter queue.
    waits = [(r.job_id, r.retry_after_seconds or 0) for r in results if r.capacity_wait]
    if waits:
        queue.send_again(record.event_source_arn, waits)
    delay = longest_backoff([r for r in results if not r.capacity_wait])
    if delay is not None:
        queue.defer(record.event_source_arn, record.receipt_handle, delay)
        raise RetryLater(f"retry in {delay} s")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submitter = wiring.submitter()
    lease = lease_seconds(context)
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:s3":  # a direct S3 event (e.g. sam local invoke)
        delay = submit_all(event, submitter, lease)
        if delay is not None:
            raise RetryLater(f"retry in {delay} s")
        return {"batchItemFailures": []}
    queue = wiring.submit_queue()
    # Failures reported per message even when all fail: their visibility (backoff) is already set.
    return process_partial_response(event, lambda record: handle_record(record, submitter, queue, lease))
