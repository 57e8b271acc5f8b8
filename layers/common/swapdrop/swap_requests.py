"""Swap Requested events (EventBridge → SwapRequestQueue → RequestFunction) become jobs.

The event's `detail` is POST /jobs's body (face, target as `s3Key` or `url`, metadata, webhook,
taskToken) plus `idempotencyKey` (default: the event's id). The job is made by the jobs API's own
service (one request shape, one create path), idempotent on (source, key) in the API's Powertools
table: a repeated event is one job. Bad input never raises: a detail that names a readable face
and target becomes a REJECTED job that says why; anything less is published as a "Swap Request
Rejected" event (and counted). Only AWS failures raise, so that the record is retried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from swapdrop import lenient_json
from swapdrop.job_events import EVENT_SOURCE
from swapdrop.jobs import Job
from swapdrop.jobs_api.caller import EVENT, Caller
from swapdrop.jobs_api.errors import ApiError, shown
from swapdrop.jobs_api.idempotency import IdempotentPosts
from swapdrop.jobs_api.models import MAX_KEY_CHARS, MAX_URL_CHARS, JobRequest
from swapdrop.jobs_api.service import JobsService, validation_details
from swapdrop.layout import face_name_problem, key_problem
from swapdrop.observability import logger, metrics

REQUEST_DETAIL_TYPE = "Swap Requested"
REJECTED_DETAIL_TYPE = "Swap Request Rejected"
ROUTE = "Swap Requested"
"""The idempotency record's route: an event's key never meets an Idempotency-Key of POST /jobs."""
MAX_EVENT_BYTES = 256 * 1024 + 8 * 1024
"""An EventBridge entry is at most 256 KiB; the envelope adds a little. Anything larger is not one."""
MAX_DETAIL_DEPTH = 16
"""As the jobs API's bodies: a request with metadata and a webhook nests 3 deep."""
MAX_REQUEST_BYTES = 4096
"""How much of a rejected request its Swap Request Rejected event repeats."""
MAX_DETAILS = 20
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
"""idempotencyKey: the Idempotency-Key header's rule (printable ASCII, no spaces, 1..255)."""


class Rejections(Protocol):
    def rejected(self, detail: Mapping[str, Any]) -> None:
        """Publish a Swap Request Rejected event with this detail; raise when it was not taken."""


class RejectionNotPublished(RuntimeError):
    pass


class EventBridgeRejections:
    def __init__(self, events_client: Any, bus_name: str) -> None:
        self._events, self._bus = events_client, bus_name

    def rejected(self, detail: Mapping[str, Any]) -> None:
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": REJECTED_DETAIL_TYPE,
            # An unpaired surrogate (from a \\ud800 escape) would make EventBridge refuse the entry: "?" instead.
            "Detail": json.dumps(detail, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8"),
            "EventBusName": self._bus,
        }
        response = self._events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RejectionNotPublished(f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What could be read of the EventBridge event; `problem` when it is not a Swap Requested event at all."""

    event_id: str | None = None
    source: str | None = None
    detail: Any = None
    problem: str | None = None
    raw: str = ""


Answer = dict[str, Any]
"""What is stored for a key and replayed for a duplicate: {"status": 202, "body": {jobId, status, ...}}
for a job, {"status": 400, "body": {"rejected": reason}} for a Swap Request Rejected event."""


class SwapRequests:
    def __init__(self, service: JobsService, posts: IdempotentPosts, rejections: Rejections) -> None:
        self._service, self._posts, self._rejections = service, posts, rejections

    def register(self, context: Any) -> None:
        """An in-progress idempotency record dies with the invocation that made it."""
        self._posts.config.register_lambda_context(context)

    def handle(self, body: str) -> Answer:
        """One SQS record's body: the event EventBridge delivered."""
        envelope = read_envelope(body)
        if envelope.problem is not None:
            return self._reject(envelope, None, envelope.problem, [])
        assert envelope.source is not None and isinstance(envelope.detail, dict)
        caller = Caller(EVENT, envelope.source)
        key, key_problem = _idempotency_key(envelope)
        try:
            return self._posts.run(
                caller, ROUTE, key, envelope.detail, lambda: self._create(caller, envelope, key, key_problem)
            )
        except ApiError as error:
            if error.code != "idempotency_key_reused":
                raise  # idempotency_in_progress: the first is still running; this record comes back later
            reason = (
                f"idempotencyKey '{shown(key or '')}' was used by this source with a different request: "
                "a new request needs a new key"
            )
            return self._reject(envelope, key, reason, [{"loc": ["detail", "idempotencyKey"], "msg": "reused"}])

    def _create(self, caller: Caller, envelope: Envelope, key: str | None, key_problem: str | None) -> Answer:
        detail = {name: value for name, value in envelope.detail.items() if name != "idempotencyKey"}
        problems: list[dict[str, Any]] = []
        if key_problem is not None:
            problems.append({"loc": ["detail", "idempotencyKey"], "msg": key_problem})
        if not _unicode(detail):
            reason = "the detail holds text that is not Unicode (an unpaired surrogate escape such as \\ud800)"
            return self._reject(envelope, key, reason, [{"loc": ["detail"], "msg": "not Unicode"}])
        request: JobRequest | None = None
        try:
            request = JobRequest.model_validate(detail)
        except ValidationError as error:
            problems += _details(validation_details(error.errors(include_input=False, include_url=False), ["detail"]))
        unfit = unfit_inputs(detail)
        if unfit is None and request is not None and not problems:
            return _job_answer(self._service.create_from_event(caller, request))
        if unfit is not None:  # nothing to make a job of: a Swap Request Rejected event
            if not any(problem["loc"][:2] == unfit["loc"][:2] for problem in problems):
                problems.insert(0, unfit)
            return self._reject(envelope, key, _reason(problems), problems)
        reason = _reason(problems)
        job = self._service.create_rejected(caller, _kept_fields(detail), reason)
        logger.info("swap request rejected as a job", extra={"job_id": job.jobId, "reason": reason})
        return _job_answer(job)

    def _reject(self, envelope: Envelope, key: str | None, reason: str, details: list[dict[str, Any]]) -> Answer:
        detail: dict[str, Any] = {
            "reason": reason,
            "details": details[:MAX_DETAILS],
            "eventId": shown(envelope.event_id) if envelope.event_id is not None else None,
            "source": shown(envelope.source) if envelope.source is not None else None,
            "request": _excerpt(envelope),
        }
        if key is not None and key != envelope.event_id:
            detail["idempotencyKey"] = key
        self._rejections.rejected(detail)
        metrics.add_metric(name="SwapRequestsRejected", unit="Count", value=1)
        logger.info(
            "swap request rejected", extra={"event_id": detail["eventId"], "source": detail["source"], "reason": reason}
        )
        return {"status": 400, "body": {"rejected": reason}}


def read_envelope(body: str) -> Envelope:
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        return Envelope(problem=f"the message is {size:,} bytes, over EventBridge's 256 KiB: not an event", raw=body)
    try:
        event = lenient_json.loads(body, "the message", max_depth=MAX_DETAIL_DEPTH + 1, needs="a Swap Requested event")
    except lenient_json.JsonRefused as refused:
        return Envelope(problem=str(refused), raw=body)
    if not isinstance(event, dict):
        return Envelope(problem="the message is not an EventBridge event (not a JSON object)", raw=body)
    event_id = event.get("id") if isinstance(event.get("id"), str) and _unicode(event.get("id")) else None
    source = event.get("source") if isinstance(event.get("source"), str) and _unicode(event.get("source")) else None
    source = source or None
    detail_type, detail = event.get("detail-type"), event.get("detail")
    envelope = Envelope(event_id=event_id, source=source, detail=detail, raw=body)
    if detail_type != REQUEST_DETAIL_TYPE:
        shown_type = shown(detail_type) if isinstance(detail_type, str) else "missing"
        problem = f"the event's detail-type is {shown_type!r}, not {REQUEST_DETAIL_TYPE!r}"
    elif source is None:
        problem = "the event has no source"
    elif not isinstance(detail, dict):
        problem = "the event's detail is not a JSON object: send the request's fields (face, target, ...) as detail"
    else:
        return envelope
    return Envelope(
        event_id=event_id, source=source if source and _unicode(source) else None, problem=problem, raw=body
    )


def unfit_inputs(detail: Mapping[str, Any]) -> dict[str, Any] | None:
    """Why the detail's face or target cannot be kept on a job, as {loc, msg}; None when both can (a face
    name the drop folder takes; exactly one of a safe s3Key or a printable URL). Only then is a refused
    request a REJECTED job: a job never records a key or name that is unsafe to use again (retry)."""
    face, target = detail.get("face"), detail.get("target")
    if not isinstance(face, str) or not face:
        return {"loc": ["detail", "face"], "msg": "a face name (a string) is required"}
    problem = face_name_problem(face) if len(face) <= 128 else "a face name is at most 128 characters"
    if problem is not None:
        return {"loc": ["detail", "face"], "msg": problem}
    if isinstance(target, dict) and set(target) == {"upload"}:
        message = "an event cannot upload its target: name it by s3Key (in the stack's bucket) or url"
        return {"loc": ["detail", "target", "upload"], "msg": message}
    if not isinstance(target, dict) or len(target) != 1 or next(iter(target)) not in ("s3Key", "url"):
        return {"loc": ["detail", "target"], "msg": "a target is an object with exactly one of 's3Key' or 'url'"}
    ((kind, value),) = target.items()
    limit = MAX_KEY_CHARS if kind == "s3Key" else MAX_URL_CHARS
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        return {"loc": ["detail", "target", kind], "msg": f"{kind} is a string of 1 to {limit} characters"}
    if kind == "s3Key":
        problem = key_problem(value)
    elif not value.isprintable():
        problem = "the URL contains a control or separator character"
    return {"loc": ["detail", "target", kind], "msg": problem} if problem else None


def _kept_fields(detail: Mapping[str, Any]) -> JobRequest:
    """A fit face and target with the other fields that are valid alone: a REJECTED job still answers
    its task token and tells its webhook."""
    base: dict[str, Any] = {"face": detail["face"], "target": dict(detail["target"])}
    kept = dict(base)
    for name in ("metadata", "webhook", "taskToken"):
        if name in detail:
            try:
                JobRequest.model_validate({**base, name: detail[name]})
            except ValidationError:
                continue
            kept[name] = detail[name]
    return JobRequest.model_validate(kept)


def _idempotency_key(envelope: Envelope) -> tuple[str | None, str | None]:
    """(the key, why the detail's idempotencyKey was not usable): the event's id stands in for a bad one."""
    given = envelope.detail.get("idempotencyKey")
    fallback = envelope.event_id if envelope.event_id is not None and _KEY.match(envelope.event_id) else None
    if given is None:
        return fallback, None
    if isinstance(given, str) and _KEY.match(given):
        return given, None
    return fallback, "idempotencyKey must be 1 to 255 printable ASCII characters without spaces"


def _job_answer(job: Job) -> Answer:
    body: dict[str, Any] = {"jobId": job.jobId, "status": job.status.value}
    if job.failReason:
        body["failReason"] = job.failReason
    return {"status": 202, "body": body}


def _details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Locations name the caller's own keys (an unknown field, a metadata key): keep them short."""
    return [
        {"loc": [shown(part) if isinstance(part, str) else part for part in item["loc"]], "msg": item["msg"]}
        for item in details
    ]


def _reason(problems: list[dict[str, Any]]) -> str:
    first = problems[0] if problems else {"loc": ["detail"], "msg": "invalid"}
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _unicode(value: Any) -> bool:
    """Whether every string in `value` can be stored and sent (JSON's \\ud800 escape makes one that cannot)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError):
        return False
    return True


def _excerpt(envelope: Envelope) -> str:
    """The request as received (the detail, else the whole message), cut to MAX_REQUEST_BYTES of UTF-8.
    A message that is not an event at all is repeated as it came (a task token in it, if any, too)."""
    if isinstance(envelope.detail, dict):
        # A task token completes someone's workflow step: it is not repeated to everyone who reads the bus.
        hidden = {"taskToken": "(hidden)"} if "taskToken" in envelope.detail else {}
        text = json.dumps({**envelope.detail, **hidden}, ensure_ascii=False)
    else:
        text = envelope.raw
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_REQUEST_BYTES:
        return data.decode("utf-8")
    return data[: MAX_REQUEST_BYTES - 3].decode("utf-8", "ignore") + "…"
