"""ApiFunction: the jobs API (faces, jobs, cancel, retry, health) on the stack's HTTP API.

Thin: each route parses its input (pydantic models, validated by the resolver), makes one
service call and answers. Every error, validation included, is {"error": {code, message, details}}.
"""

from __future__ import annotations

import json
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import lenient_json, wiring
from swapdrop.jobs import JobStatus
from swapdrop.jobs_api.caller import Caller
from swapdrop.jobs_api.errors import ApiError, shown
from swapdrop.jobs_api.models import (
    MAX_BATCH,
    BatchJobRequest,
    BatchResponse,
    CreateJobsBody,
    ErrorResponse,
    FaceList,
    FaceUploadRequest,
    FaceUploadResponse,
    Health,
    JobList,
    JobRequest,
    JobView,
)
from swapdrop.jobs_api.service import MAX_WAIT_SECONDS, validation_details
from swapdrop.observability import logger, metrics, publish_metrics, tracer

MAX_BODY_BYTES = 256 * 1024
"""A batch of 100 targets with long URLs fits in a tenth of this."""
SIGNED = [{"sigv4": []}, {"jwt": []}]

SECURITY_SCHEMES = {
    "sigv4": APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS SigV4 (service execute-api): IAM callers with the stack's ClientPolicyArn are operators.",
        **{"x-amazon-apigateway-authtype": "awsSigv4"},
    ),
    "jwt": HTTPBearer(
        bearerFormat="JWT",
        description="A JWT from the JwtIssuer (JwtApiUrl only): the caller sees only the jobs it created.",
    ),
}

MAX_BODY_DEPTH = 16
"""The deepest a request body may nest: a batch of targets with metadata needs 4."""


def _request_json(text: str) -> Any:
    """Request bodies parsed without recursion limits to trip on: `[[[[…` 50,000 deep would make
    the standard parser raise RecursionError (a 500); here it is a 400 that says why."""
    try:
        return lenient_json.loads(text, "the request body", max_depth=MAX_BODY_DEPTH, needs="a jobs API request")
    except lenient_json.JsonRefused as refused:
        raise ApiError("invalid_request", 400, str(refused), [{"loc": ["body"], "msg": str(refused)}]) from None


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_request_json)
app.configure_openapi(
    title="Swapdrop jobs API",
    version="1",
    description="Start, watch, list, cancel and retry face swaps. Errors are always {error: {code, message, details}}.",
    security_schemes=SECURITY_SCHEMES,
)


def _errors(*statuses: int) -> dict[int, Any]:
    reasons = {
        400: "Invalid request (details: a list of {loc, msg})",
        401: "No IAM signature or JWT reached the function",
        403: "Only IAM callers (operators) may add or delete faces",
        404: "No such job or face (or another caller's job)",
        409: "Conflict with the job's or face's state, or the same Idempotency-Key still in progress",
        413: "Request body too large",
        415: "The body is not sent as application/json",
        422: "Idempotency-Key reused with a different body",
        500: "Internal error",
    }
    error = {"application/json": {"model": ErrorResponse}}
    return {status: {"description": reasons[status], "content": error} for status in statuses}


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Same key, same caller, same body (within 24 h): the first answer again, nothing created twice. "
        "Same key with another body: 422.",
        max_length=255,
    ),
]


def _caller() -> Caller:
    return Caller.from_request_context(app.current_event.raw_event.get("requestContext"))


def _operator(action: str) -> Caller:
    """Faces are the stack's shared catalogue: an app's signed-in users (JWT) use them, operators change them."""
    caller = _caller()
    if not caller.is_operator:
        raise ApiError(
            "forbidden", 403, f"only IAM callers (operators) may {action}; JWT callers use the faces that exist"
        )
    return caller


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _path_value(value: str) -> str:
    """Path parameters arrive as sent (percent-encoded): '%2F' is a '/' the name must be refused for."""
    return unquote(value, errors="surrogateescape")


# --- faces ------------------------------------------------------------------------------------


@app.put(
    "/faces/<face>",
    summary="Get an upload form for a face",
    description="A presigned POST for faces/<face>.<ext>, limited to MaxImageBytes and the given content type.",
    tags=["faces"],
    security=SIGNED,
    responses={200: {"description": "The upload form", "content": {"application/json": {"model": FaceUploadResponse}}}}
    | _errors(400, 403, 409, 415),
)
def put_face(face: str, request: Annotated[FaceUploadRequest, Body()]) -> FaceUploadResponse:
    _operator("add faces")
    return wiring.api_service().put_face(_path_value(face), request.contentType)


@app.get(
    "/faces",
    summary="List the faces",
    tags=["faces"],
    security=SIGNED,
    responses={200: {"description": "A page of faces", "content": {"application/json": {"model": FaceList}}}}
    | _errors(400),
)
def list_faces(
    limit: Annotated[int, Query(ge=1, le=1000, description="Faces per page.")] = 100,
    cursor: Annotated[str | None, Query(max_length=2048, description="From the previous page.")] = None,
) -> FaceList:
    _caller()
    return wiring.api_service().list_faces(limit, cursor)


@app.delete(
    "/faces/<face>",
    summary="Delete a face",
    tags=["faces"],
    security=SIGNED,
    responses={204: {"description": "Deleted"}} | _errors(400, 403, 404),
)
def delete_face(face: str) -> Response[None]:
    _operator("delete faces")
    wiring.api_service().delete_face(_path_value(face))
    return Response(status_code=HTTPStatus.NO_CONTENT)


# --- jobs -------------------------------------------------------------------------------------


@app.post(
    "/jobs",
    summary="Start one swap, or a batch of up to 100",
    description="Body {face, target, metadata?} answers the job; {face, targets: [...]} answers one entry per "
    "target, in order. An upload target's answer carries the presigned POST for it.",
    tags=["jobs"],
    security=SIGNED,
    responses={
        202: {
            "description": "Created: the job (single) or one entry per target (batch)",
            "content": {"application/json": {"model": JobView | BatchResponse}},
        },
    }
    | _errors(400, 409, 413, 415, 422),
)
def create_jobs(
    request: Annotated[CreateJobsBody, Body(description=f"One job, or a batch of up to {MAX_BATCH}.")],
    idempotency_key: IdempotencyKey = None,
) -> Response[JobView | BatchResponse]:
    caller, service = _caller(), wiring.api_service()
    if isinstance(request, BatchJobRequest):
        work = lambda: _stored(service.create_batch(caller, request))  # noqa: E731
    else:
        assert isinstance(request, JobRequest)
        work = lambda: _stored(service.create(caller, request))  # noqa: E731
    return _replayed(caller, "POST /jobs", idempotency_key, work)


@app.get(
    "/jobs",
    summary="List jobs, newest first",
    description="Every filter is a key condition on a list index (never a Scan). A JWT caller sees only its own jobs.",
    tags=["jobs"],
    security=SIGNED,
    responses={200: {"description": "A page of jobs", "content": {"application/json": {"model": JobList}}}}
    | _errors(400),
)
def list_jobs(
    face: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: Annotated[JobStatus | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO-8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO-8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="From the previous page, same filters.")] = None,
) -> JobList:
    return wiring.api_service().list(_caller(), face, status, since, until, limit, cursor)


@app.get(
    "/jobs/<jobId>",
    summary="Get a job",
    description="With ?wait=N (0..25), holds the answer until the job is terminal or N seconds pass.",
    tags=["jobs"],
    security=SIGNED,
    responses={200: {"description": "The job", "content": {"application/json": {"model": JobView}}}}
    | _errors(400, 404),
)
def get_job(
    jobId: str,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for a terminal status.")] = 0,
) -> JobView:
    return wiring.api_service().get(_caller(), jobId, wait)


@app.post(
    "/jobs/<jobId>/cancel",
    summary="Cancel a job",
    description="An unfinished job ends CANCELLED (and its upstream task is cancelled); a finished one answers 409.",
    tags=["jobs"],
    security=SIGNED,
    responses={200: {"description": "The cancelled job", "content": {"application/json": {"model": JobView}}}}
    | _errors(400, 404, 409, 415, 422),
)
def cancel_job(jobId: str, idempotency_key: IdempotencyKey = None) -> Response[JobView]:
    caller, service = _caller(), wiring.api_service()
    work = lambda: {"status": 200, "body": service.cancel(caller, jobId).model_dump(mode="json", by_alias=True)}  # noqa: E731
    return _replayed(caller, f"POST /jobs/{jobId}/cancel", idempotency_key, work)


@app.post(
    "/jobs/<jobId>/retry",
    summary="Retry a failed, rejected or cancelled job",
    description="A new job with the same inputs, linked both ways (retryOf / retriedBy).",
    tags=["jobs"],
    security=SIGNED,
    responses={202: {"description": "The new job", "content": {"application/json": {"model": JobView}}}}
    | _errors(400, 404, 409, 415, 422),
)
def retry_job(jobId: str, idempotency_key: IdempotencyKey = None) -> Response[JobView]:
    caller, service = _caller(), wiring.api_service()
    work = lambda: _stored(service.retry(caller, jobId))  # noqa: E731
    return _replayed(caller, f"POST /jobs/{jobId}/retry", idempotency_key, work)


@app.get(
    "/health",
    summary="The stack's version and whether the swap API's key is set",
    tags=["health"],
    security=[],
    responses={200: {"description": "Health", "content": {"application/json": {"model": Health}}}},
)
def health() -> Health:
    return wiring.api_service().health()


def _stored(answer: Any) -> dict[str, Any]:
    return {"status": answer.status, "body": answer.body}


def _replayed(caller: Caller, route: str, key: str | None, work: Any) -> Response:
    if key is None:
        stored = work()
    else:
        posts = wiring.api_idempotency()
        posts.config.register_lambda_context(app.lambda_context)  # an in-progress record dies with its invocation
        stored = posts.run(caller, route, key, _payload(), work)
    return _json(stored["status"], stored["body"])


def _payload() -> Any:
    """What an Idempotency-Key stands for: the JSON body, or the text as sent (cancel and retry take no
    body, and one that does not parse must not make json_body raise a 500)."""
    try:
        return app.current_event.json_body
    except (ValueError, ApiError):  # ApiError: _request_json refused it (too deep, not JSON)
        return app.current_event.body


# --- errors -----------------------------------------------------------------------------------


@app.exception_handler(ApiError)
def api_error(error: ApiError) -> Response:
    return _json(error.status, error.body())


@app.exception_handler(RequestValidationError)
def invalid(error: RequestValidationError) -> Response:
    details = validation_details(list(error.errors()))
    first = details[0] if details else {"loc": [], "msg": "invalid"}
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['msg']}" if where else first["msg"]
    return api_error(ApiError("invalid_request", 400, message, details))


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_media_type(_: RequestUnsupportedContentType) -> Response:
    content_type = shown(app.current_event.headers.get("content-type") or "")
    message = f"the body must be sent as application/json, not '{content_type}'"
    return api_error(ApiError("unsupported_media_type", 415, message))


@app.exception_handler(UnicodeDecodeError)
def not_utf8(_: UnicodeDecodeError) -> Response:
    message = "the body is not UTF-8 text; send JSON encoded as UTF-8"
    return api_error(ApiError("invalid_request", 400, message, [{"loc": ["body"], "msg": "not UTF-8"}]))


@app.not_found
def no_route(_: NotFoundError) -> Response:
    event = app.current_event
    path, method = event.path, event.http_method
    others = sorted({route.method for route in app._static_routes + app._dynamic_routes if route.rule.match(path)})
    if others and method not in others:
        return api_error(ApiError("method_not_allowed", 405, f"{method} is not allowed here; use {', '.join(others)}"))
    return api_error(ApiError("not_found", 404, "no such route"))


@app.exception_handler(Exception)
def internal(error: Exception) -> Response:
    logger.exception("unexpected error")
    metrics.add_metric(name="ApiInternalErrors", unit="Count", value=1)
    return api_error(ApiError("internal", 500, "an internal error occurred; it has been logged"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        error = ApiError("payload_too_large", 413, f"the request body is over {MAX_BODY_BYTES:,} bytes")
        return {"statusCode": 413, "headers": {"Content-Type": "application/json"}, "body": json.dumps(error.body())}
    media_type = _body_media_type(event)
    if media_type is not None and media_type != content_types.APPLICATION_JSON:
        message = f"the body must be sent as application/json, not '{shown(media_type)}'"
        error = ApiError("unsupported_media_type", 415, message)
        return {"statusCode": 415, "headers": {"Content-Type": "application/json"}, "body": json.dumps(error.body())}
    return app.resolve(event, context)


def _body_media_type(event: dict[str, Any]) -> str | None:
    """A POST's or PUT's body media type (JSON when unsaid), None without a body. Checked before Powertools
    parses: it would read a form or multipart body itself (and a multipart type without a boundary was a 500)."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method")
    if method not in ("POST", "PUT") or not event.get("body"):
        return None
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    return str(headers.get("content-type") or content_types.APPLICATION_JSON).split(";")[0].strip().lower()
