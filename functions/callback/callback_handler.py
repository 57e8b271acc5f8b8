"""CallbackFunction: the notifyHook. POST /callbacks/{jobId}?token=… with a task snapshot."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, metrics, tracer

app = APIGatewayHttpResolver()


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode()


@app.post("/callbacks/<job_id>")
@tracer.capture_method
def receive_callback(job_id: str) -> Response:
    event = app.current_event
    reply = wiring.callback_receiver().receive(
        job_id=job_id,
        token=event.get_query_string_value("token"),
        body=raw_body(event.raw_event),
    )
    return Response(status_code=reply.status_code, content_type=content_types.APPLICATION_JSON, body=reply.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
