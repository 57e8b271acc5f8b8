"""Lambda's SQS event source, locally: receive a batch, invoke the handler, honour
partial batch failures (failed messages stay; their visibility is what the handler set).
A failed invocation (handler error, crashed or timed-out worker) deletes nothing: its
messages come back after the queue's visibility timeout, and the poller says so."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swapdrop_local.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("swapdrop.local")


@dataclass
class BatchResult:
    received: int
    failed: int


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class SqsEventSource:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        function_name: str,
        batch_size: int = 5,
        function_timeout: int = 180,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._function_name = function_name
        self._batch_size = max(1, min(10, batch_size))
        self._timeout = function_timeout
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self._region = self.queue_arn.split(":")[3]

    def poll_once(self, wait_seconds: int = 0) -> BatchResult:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return BatchResult(0, 0)
        event = lambda_event(messages, self.queue_arn, self._region)
        context = LocalLambdaContext(self._function_name, timeout_seconds=self._timeout)
        try:
            result = self._handler(event, context) or {}
            failed_ids = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except Exception as exc:  # a failed invocation: every message comes back after its visibility timeout
            log.warning(
                "%s invocation failed (%s): %d message(s) stay in flight and come back after the visibility timeout",
                self._function_name,
                getattr(exc, "error_type", type(exc).__name__),
                len(messages),
            )
            return BatchResult(len(messages), len(messages))
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return BatchResult(len(messages), len(messages) - len(done))

    def drain(self, max_batches: int = 50) -> int:
        """Poll until the queue answers empty; the number of messages handled."""
        total = 0
        for _ in range(max_batches):
            result = self.poll_once()
            if not result.received:
                break
            total += result.received
        return total
