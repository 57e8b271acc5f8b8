"""The WebhookFunction's work: send one queued webhook message, record the attempt on the job, say when next.

Any 2xx is delivered; 410 disables the webhook for the job (nothing more is sent to it); anything else
(another status, no answer, a refused address) is retried after RETRY_SCHEDULE (or the receiver's
Retry-After), by hiding the SQS message that long — no Lambda sleeps. A message that comes back before
its time (a hide is at most 12 h) is hidden again. After the last attempt it goes to the
WebhookDeadLetterQueue and the job records "failed". The attempt count lives on the job, not in SQS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from swapdrop import state_machine as sm
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import iso, utc_now
from swapdrop.observability import logger, metrics
from swapdrop.url_rules import shown_url
from swapdrop.webhook_sender import SendResult, WebhookSender
from swapdrop.webhook_signing import WebhookSigner
from swapdrop.webhooks import WebhookMessage, webhook_body

RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 24 * 3600)
"""Seconds before each retry: 1 attempt, then 7 retries, then the dead-letter queue (about 41.6 h in all)."""
MAX_RETRY_AFTER_SECONDS = 24 * 3600
EARLY_TOLERANCE_SECONDS = 1
"""nextAt is stored in whole seconds (rounded up): a message back within a second of it is due."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with the SQS message: done (delete it), retry in `retry_in` seconds, or dead-letter it."""

    retry_in: float | None = None
    dead_letter: bool = False


DONE = Outcome()


def retry_delay(attempts: int, scale: float, answer: SendResult) -> float:
    """Seconds until the next attempt after `attempts` failed ones: Retry-After when given, else the schedule."""
    if answer.retry_after is not None:
        return min(MAX_RETRY_AFTER_SECONDS, answer.retry_after)
    return RETRY_SCHEDULE[attempts - 1] * scale


class WebhookDeliverer:
    def __init__(
        self,
        jobs: JobStore,
        signer: WebhookSigner,
        sender: WebhookSender,
        retry_scale: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._jobs = jobs
        self._signer = signer
        self._sender = sender
        self._scale = retry_scale
        self._clock = clock

    def deliver(self, message: WebhookMessage) -> Outcome:
        job = self._jobs.get(message.job_id)
        if job is None or not job.webhook:
            logger.warning("webhook message for no job (or a job without a webhook)", extra={"job_id": message.job_id})
            return DONE
        record = dict((job.webhookDeliveries or {}).get(message.webhook_id, {}))
        if record.get("state") in sm.WEBHOOK_FINAL_STATES:
            return DONE  # a duplicate of a message already settled
        now = self._clock()
        base = {"type": message.kind, "attempts": int(record.get("attempts", 0))}
        if job.webhookStatus == "disabled":
            self._record(message, {**record, **base, "state": "disabled", "lastError": "webhook disabled (HTTP 410)"})
            return DONE
        next_at = record.get("nextAt")
        if next_at is not None and float(next_at) > now.timestamp() + EARLY_TOLERANCE_SECONDS:
            return Outcome(retry_in=float(next_at) - now.timestamp())  # back early: hide it again
        body = json.dumps(webhook_body(job, message), separators=(",", ":"))
        headers = self._signer.headers(message.webhook_id, now, body)
        answer = self._sender.post(str(job.webhook["url"]), body.encode(), headers)
        attempts = base["attempts"] + 1
        entry: dict[str, object] = {"type": message.kind, "attempts": attempts, "lastAttemptAt": iso(now)}
        if answer.status is not None:
            entry["lastStatus"] = answer.status
        if answer.error:
            entry["lastError"] = answer.error
        log = {"job_id": job.jobId, "webhook_id": message.webhook_id, "url": shown_url(str(job.webhook["url"]))}
        if answer.delivered:
            self._record(message, {**entry, "state": "delivered", "deliveredAt": iso(now)})
            metrics.add_metric(name="WebhooksDelivered", unit="Count", value=1)
            logger.info("webhook delivered", extra={**log, "status": answer.status, "attempts": attempts})
            return DONE
        if answer.status == 410:
            self._record(message, {**entry, "state": "disabled"})
            metrics.add_metric(name="WebhooksDisabled", unit="Count", value=1)
            logger.info("webhook disabled by the receiver (410)", extra=log)
            return DONE
        if attempts > len(RETRY_SCHEDULE):
            self._record(message, {**entry, "state": "failed"})
            metrics.add_metric(name="WebhooksFailed", unit="Count", value=1)
            logger.warning("webhook given up after its last attempt", extra={**log, "error": answer.error})
            return Outcome(dead_letter=True)
        delay = retry_delay(attempts, self._scale, answer)
        self._record(message, {**entry, "state": "pending", "nextAt": math.ceil(now.timestamp() + delay)})
        metrics.add_metric(name="WebhookRetries", unit="Count", value=1)
        logger.info("webhook attempt failed; retried later", extra={**log, "error": answer.error, "retry_in": delay})
        return Outcome(retry_in=delay)

    def _record(self, message: WebhookMessage, record: dict[str, object]) -> None:
        update_job(
            self._jobs,
            message.job_id,
            lambda j: sm.record_webhook_delivery(j, self._clock(), message.webhook_id, record),
        )
