"""SubmitQueue message bodies → what the submitter is asked to do.

A body is one of: an S3 event notification (inbox/ and uploads/ keys; Uploads with decoded
keys), S3's s3:TestEvent, or the jobs API's `{"jobId": "<32 hex>"}`. Anything else is
Malformed, described by its shape only (never its content), for the handler to log and drop.

The S3 model reads only the fields Swapdrop needs, so it accepts every shape S3 (and
S3-compatible emulators, which omit userIdentity and friends) is seen to send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swapdrop.jobs import iso
from swapdrop.layout import decode_event_key, printable
from swapdrop.submission import Upload

MAX_SHOWN_KEYS = 10


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class S3ObjectRef(_Lenient):
    key: str
    size: int | None = None
    eTag: str | None = None
    sequencer: str | None = None
    versionId: str | None = None


class S3BucketRef(_Lenient):
    name: str


class S3Entity(_Lenient):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(_Lenient):
    eventName: str
    eventTime: datetime
    s3: S3Entity


class S3Notification(_Lenient):
    Records: list[S3EventRecord]


def is_test_event(body: dict[str, Any]) -> bool:
    """S3 sends one s3:TestEvent when a notification is configured; it names no object."""
    return body.get("Event") == "s3:TestEvent"


def uploads_from_s3_event(event: dict[str, Any]) -> list[Upload]:
    """Object-created records only; keys decoded (S3 sends them URL-encoded)."""
    notification = parse(event=event, model=S3Notification)
    uploads = []
    for record in notification.Records:
        if not record.eventName.startswith("ObjectCreated:"):
            continue
        key = decode_event_key(record.s3.object.key)
        if key.endswith("/") and not record.s3.object.size:
            continue  # a "folder" made by the console, not an upload
        uploads.append(
            Upload(
                bucket=record.s3.bucket.name,
                key=key,
                sequencer=record.s3.object.sequencer,
                version_id=record.s3.object.versionId,
                fallback_identity=f"{record.s3.object.eTag}@{record.eventTime.isoformat()}",
                event_time=iso(record.eventTime),
            )
        )
    return uploads


def parse_message_body(body: str) -> dict[str, Any]:
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("message body is not a JSON object")
    return payload


# --- one SQS message body -------------------------------------------------------------------


class _JobMessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    jobId: str = Field(pattern=r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class S3TestEvent:
    """S3's s3:TestEvent: names no object."""


@dataclass(frozen=True, slots=True)
class JobMessage:
    """The jobs API's {"jobId"}: drive that job (everything else comes from its record)."""

    job_id: str


@dataclass(frozen=True, slots=True)
class S3Uploads:
    uploads: list[Upload]


@dataclass(frozen=True, slots=True)
class Malformed:
    shape: str
    """What the body looked like (kinds, key names, sizes), never its values."""


SubmitMessage = S3TestEvent | JobMessage | S3Uploads | Malformed


def read_message(body: str) -> SubmitMessage:
    """What one SubmitQueue message asks for; Malformed (never an exception) for anything else."""
    try:
        payload = json.loads(body)
    except ValueError:  # includes bad UTF-8 escapes and nesting too deep to parse
        return Malformed(f"not JSON ({len(body)} characters)")
    except RecursionError:
        return Malformed(f"JSON nested too deeply ({len(body)} characters)")
    if not isinstance(payload, dict):
        return Malformed(f"JSON {_kind(payload)}, not an object")
    if is_test_event(payload):
        return S3TestEvent()
    if "jobId" in payload:
        try:
            return JobMessage(_JobMessageBody.model_validate(payload).jobId)
        except ValidationError:
            return Malformed(f'a job message that is not exactly {{"jobId": <32 lowercase hex>}}: {_shape(payload)}')
    if "Records" in payload:
        try:
            return S3Uploads(uploads_from_s3_event(payload))
        except ValueError as error:  # pydantic's ValidationError: report where, not what
            where = _error_locations(error)
            return Malformed(f"an S3 event that does not parse ({where}): {_shape(payload)}")
    return Malformed(f"neither an S3 event nor a job message: {_shape(payload)}")


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _shape(payload: dict[str, Any]) -> str:
    """`object {a: string, b: number, ...}`: key names (escaped, cut short) and the kinds of their values."""
    names = sorted(payload)
    shown = [f"{printable(name[:40])}: {_kind(payload[name])}" for name in names[:MAX_SHOWN_KEYS]]
    more = f", … {len(names) - MAX_SHOWN_KEYS} more" if len(names) > MAX_SHOWN_KEYS else ""
    return "object {" + ", ".join(shown) + more + "}"


def _error_locations(error: ValueError) -> str:
    if not isinstance(error, ValidationError):
        return type(error).__name__
    locations = [".".join(str(part) for part in e["loc"]) for e in error.errors()[:3]]
    return "; ".join(f"{printable(loc[:80])} invalid" for loc in locations) or "invalid"
