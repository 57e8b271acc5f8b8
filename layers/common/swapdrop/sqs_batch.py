"""SQS partial batch responses (ReportBatchItemFailures) for the Submit, Request and Webhook functions.

What these functions used of Powertools' batch utility, without its import: `aws_lambda_powertools.utilities.batch`
loads every event data class (DynamoDB streams, Kinesis, Kafka, CodePipeline, ...) and asyncio, about 50 ms of
CPU at every cold start of three functions (bench_cold_start.py; README "Cold start and layer"). The contract is
AWS's: each record is handled on its own, and the message ids of those that raised come back as
batchItemFailures, so only they return to the queue; the batch as a whole never fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swapdrop.observability import logger


class NotAnSqsBatch(ValueError):
    """The event has no SQS records: a misrouted event must fail loudly, not succeed with nothing done."""


@dataclass(frozen=True, slots=True)
class SqsMessage:
    """The fields of an SQS record the handlers read (the names Powertools' SQSRecord uses)."""

    message_id: str
    body: str
    receipt_handle: str
    event_source_arn: str

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SqsMessage:
        return cls(
            message_id=record["messageId"],
            body=record.get("body") or "",
            receipt_handle=record.get("receiptHandle") or "",
            event_source_arn=record.get("eventSourceARN") or "",
        )


def process_partial_response(
    event: Mapping[str, Any], record_handler: Callable[[SqsMessage], Any]
) -> dict[str, list[dict[str, str]]]:
    """Each record through `record_handler`; the ids of those that raised, for SQS to deliver again."""
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise NotAnSqsBatch("expected an SQS event (a list of Records); got another kind of event")
    failures = []
    for record in records:
        message = SqsMessage.from_record(record)
        try:
            record_handler(message)
        except Exception:  # any failure returns this record alone to the queue
            logger.debug("record failed", extra={"message_id": message.message_id})
            failures.append({"itemIdentifier": message.message_id})
    return {"batchItemFailures": failures}
