"""Per-job webhooks: the messages, the WebhookQueue, and handing messages over to it.

started/progress messages are recorded as pending on the job by the state machine (`webhookOutbox`)
and handed over here by whoever wrote that change (or by the reconciler's sweep: the job stays in
the open index until they are). "completed" is the outbox entry WEBHOOK; its consumer hands it over.
The WebhookFunction (webhook_delivery) then signs, sends and retries each message on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from swapdrop.jobs import Job, webhook_message_id

MAX_SQS_DELAY_SECONDS = 12 * 3600
"""ChangeMessageVisibility's ceiling: a longer wait is several hides (webhook_delivery re-hides early arrivals)."""


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """What travels on the WebhookQueue: which message of which job (the body is built when it is sent)."""

    job_id: str
    webhook_id: str
    kind: str
    """started | progress | completed"""
    at: str
    """When it happened (the body's `timestamp`)."""

    def to_body(self) -> str:
        return json.dumps({"jobId": self.job_id, "webhookId": self.webhook_id, "type": self.kind, "at": self.at})

    @classmethod
    def from_body(cls, body: str) -> WebhookMessage:
        data = json.loads(body)
        return cls(
            job_id=str(data["jobId"]), webhook_id=str(data["webhookId"]), kind=str(data["type"]), at=str(data["at"])
        )


def webhook_body(job: Job, message: WebhookMessage) -> dict[str, Any]:
    """The signed body: {type: job.<kind>, timestamp, data: the public job record} (a result key, no URL)."""
    return {"type": f"job.{message.kind}", "timestamp": message.at, "data": job.public_view()}


def pending_messages(job: Job) -> list[WebhookMessage]:
    return [
        WebhookMessage(job.jobId, message_id, str(entry["type"]), str(entry["at"]))
        for message_id, entry in (job.webhookOutbox or {}).items()
    ]


def completed_message(job: Job) -> WebhookMessage:
    return WebhookMessage(job.jobId, webhook_message_id(job.jobId, "completed"), "completed", job.finishedAt or "")


class WebhookQueue:
    """The only module that talks to the WebhookQueue and its dead-letter queue."""

    def __init__(self, sqs_client: Any, queue_url: str, dead_letter_url: str = "") -> None:
        self._sqs = sqs_client
        self._url = queue_url
        self._dead_letter_url = dead_letter_url

    def send(self, messages: list[WebhookMessage]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": m.to_body()} for i, m in enumerate(chunk)]
            answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"the WebhookQueue refused {len(answer['Failed'])} message(s)")

    def hide(self, receipt_handle: str, seconds: float) -> None:
        """Bring the message back in `seconds` (at most 12 h: the rest is another hide when it comes back)."""
        wait = max(1, min(MAX_SQS_DELAY_SECONDS, int(seconds + 0.999)))
        self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=wait)

    def dead_letter(self, message: WebhookMessage) -> None:
        self._sqs.send_message(QueueUrl=self._dead_letter_url, MessageBody=message.to_body())


class WebhookHandOver:
    """The outbox consumer of entry WEBHOOK (the completed message), and the hand-over of pending ones."""

    def __init__(self, queue: WebhookQueue) -> None:
        self._queue = queue

    def deliver(self, job: Job) -> None:
        if job.webhookStatus == "disabled":
            return  # the receiver answered 410 to an earlier message: nothing more is sent for this job
        self._queue.send([completed_message(job)])

    def hand_over(self, job: Job) -> None:
        self._queue.send(pending_messages(job))
