"""CallbackFunction: the notifyHook. POST /callbacks/{jobId}?token=… with a task snapshot.

Whatever the body, the answer is a 4xx with a reason or the receiver's own answer, never a
500: an unanswered or failed callback only makes relays that retry send it again.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, publish_metrics, tracer

app = APIGatewayHttpResolver()


class UnreadableBody(ValueError):
    """The event's body cannot be turned into bytes (bad base64, not text)."""


def raw_body(event: dict[str, Any]) -> bytes:
    """The body's bytes as sent; text that is not valid Unicode stays invalid (the parser says so)."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise UnreadableBody("body is not text")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise UnreadableBody("body is marked base64-encoded but is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")


@app.post("/callbacks/<job_id>")
@tracer.capture_method
def receive_callback(job_id: str) -> Response:
    event = app.current_event
    try:
        body = raw_body(event.raw_event)
    except UnreadableBody as error:
        return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body={"message": str(error)})
    reply = wiring.callback_receiver().receive(
        job_id=job_id,
        token=event.get_query_string_value("token"),
        body=body,
    )
    return Response(status_code=reply.status_code, content_type=content_types.APPLICATION_JSON, body=reply.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
