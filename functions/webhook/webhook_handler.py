"""WebhookFunction: WebhookQueue messages → signed POSTs; retries by hiding the message (partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, metrics, publish_metrics, tracer
from swapdrop.sqs_batch import SqsMessage, process_partial_response
from swapdrop.webhook_delivery import WebhookDeliverer
from swapdrop.webhooks import WebhookMessage, WebhookQueue


class RetryLater(Exception):
    """The record stays on the queue, hidden until its next attempt."""


def handle_record(record: SqsMessage, deliverer: WebhookDeliverer, queue: WebhookQueue) -> None:
    try:
        message = WebhookMessage.from_body(record.body)
    except (ValueError, KeyError, TypeError):
        metrics.add_metric(name="MalformedMessages", unit="Count", value=1)
        logger.warning("webhook message dropped: malformed", extra={"message_id": record.message_id})
        return
    outcome = deliverer.deliver(message)
    if outcome.dead_letter:
        queue.dead_letter(message)
    elif outcome.retry_in is not None:
        queue.hide(record.receipt_handle, outcome.retry_in)
        raise RetryLater(f"next attempt in {outcome.retry_in:.0f} s")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deliverer, queue = wiring.webhook_deliverer(), wiring.webhook_queue()
    # A message to retry is reported failed after its visibility was set to the wait: it comes back then.
    return process_partial_response(event, lambda record: handle_record(record, deliverer, queue))
