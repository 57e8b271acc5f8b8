"""RequestFunction: Swap Requested events (EventBridge → SwapRequestQueue, SQS batches) → jobs.

Thin: each record's body is the event; swap_requests makes the job, a REJECTED job or a Swap
Request Rejected event. A record fails (and comes back, then goes to the DLQ) only when AWS did.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, publish_metrics, tracer
from swapdrop.sqs_batch import SqsMessage, process_partial_response
from swapdrop.swap_requests import SwapRequests


def handle_record(record: SqsMessage, requests: SwapRequests) -> None:
    try:
        answer = requests.handle(record.body)
    except Exception:
        logger.exception("swap request failed; it returns to the queue", extra={"message_id": record.message_id})
        raise
    logger.info("swap request handled", extra={"message_id": record.message_id, **answer["body"]})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    requests = wiring.swap_requests()
    requests.register(context)
    # Failures reported per record even when all fail: the others' jobs are made and must not be retried.
    return process_partial_response(event, lambda record: handle_record(record, requests))
