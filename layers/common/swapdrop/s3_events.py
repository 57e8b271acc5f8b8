"""S3 event notifications (direct, or inside SQS messages) → Uploads with decoded keys."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3Model

from swapdrop.layout import decode_event_key
from swapdrop.submission import Upload


def is_test_event(body: dict[str, Any]) -> bool:
    """S3 sends one s3:TestEvent when a notification is configured; it names no object."""
    return body.get("Event") == "s3:TestEvent"


def uploads_from_s3_event(event: dict[str, Any]) -> list[Upload]:
    """Object-created records only; keys decoded (the models keep them URL-encoded)."""
    parsed = S3Model.model_validate(event)
    uploads = []
    for record in parsed.Records:
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
            )
        )
    return uploads


def parse_message_body(body: str) -> dict[str, Any]:
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("message body is not a JSON object")
    return payload
