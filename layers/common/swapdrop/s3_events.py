"""S3 event notifications (direct, or inside SQS messages) → Uploads with decoded keys.

The model reads only the fields Swapdrop needs, so it accepts every shape S3 (and
S3-compatible emulators, which omit userIdentity and friends) is seen to send.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict

from swapdrop.jobs import iso
from swapdrop.layout import decode_event_key
from swapdrop.submission import Upload


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
