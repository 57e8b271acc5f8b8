"""CallbackFunction: the notifyHook. POST /callbacks/{jobId}?token=… with a task snapshot.

Whatever the body, the answer is a 4xx with a reason or the receiver's own answer, never a
500: an unanswered or failed callback only makes relays that retry send it again.

One route, matched here as Powertools' APIGatewayHttpResolver matches it (same pattern, same answers:
a test compares them): importing Powertools' event_handler package (every resolver, AppSync's asyncio
among them) cost about 40 ms of each cold start (bench_cold_start.py). `app`, that resolver with this
route, is built on first use for the OpenAPI generator and the route tests.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, publish_metrics, tracer

PATH = "/callbacks/<job_id>"
ROUTE = re.compile(r"^/callbacks/(?P<job_id>[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+)$")
"""PATH as Powertools compiles it (event_handler.api_gateway: _NAMED_GROUP_BOUNDARY_PATTERN)."""
NOT_FOUND = {"statusCode": 404, "message": "Not found"}


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


@tracer.capture_method
def receive_callback(job_id: str, event: dict[str, Any]) -> tuple[int, Any]:
    """(status, JSON body) for one callback."""
    try:
        body = raw_body(event)
    except UnreadableBody as error:
        return 400, {"message": str(error)}
    reply = wiring.callback_receiver().receive(
        job_id=job_id,
        token=(event.get("queryStringParameters") or {}).get("token"),
        body=body,
    )
    return reply.status_code, reply.body


def route(event: dict[str, Any]) -> str | None:
    """The job id of a POST /callbacks/{jobId}, else None (the path without a stage's prefix, as Powertools)."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    path, stage = event.get("rawPath") or "", context.get("stage")
    if stage and stage != "$default":
        path = path[len("/" + stage) :]
    match = ROUTE.match(path)
    return match["job_id"] if match and str(http.get("method", "")).upper() == "POST" else None


def answer(status: int, body: Any) -> dict[str, Any]:
    """An HTTP API (payload 2.0) response, as Powertools' resolver builds it."""
    return {
        "statusCode": status,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "cookies": [],
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = route(event)
    if job_id is None:
        return answer(404, NOT_FOUND)
    return answer(*receive_callback(job_id, event))


@functools.cache
def resolver() -> Any:
    """The same route on Powertools' APIGatewayHttpResolver: what the OpenAPI generator and tests read."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

    app = APIGatewayHttpResolver()

    @app.post(PATH)
    def receive(job_id: str) -> Any:
        status, body = receive_callback(job_id, app.current_event.raw_event)
        return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)

    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return resolver()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
