#!/usr/bin/env python3
"""Build events/schemas/*.json (JSON Schema 2020-12): what Swapdrop puts on its bus, what it takes from
it, and the body of its webhooks.

Swap Requested is generated from the jobs API's own pydantic JobRequest (the one request shape), with
the target narrowed to s3Key or url and the event's idempotencyKey added, so it cannot drift from what
RequestFunction accepts. The job record (the detail of Swap Job Finished and a webhook's `data`) is
written here once and checked against `Job.public_view` by tests/unit/test_event_schemas.py. `--check`
exits 1 when a committed file differs (make schemas rewrites them).
"""

# No `from __future__ import annotations`: pydantic resolves SwapRequestedDetail's annotations here.
import argparse
import json
import sys
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "events" / "schemas"
sys.path.insert(0, str(ROOT / "layers" / "common"))

from pydantic import ConfigDict, Field  # noqa: E402
from swapdrop import swap_requests  # noqa: E402
from swapdrop.job_events import DETAIL_TYPE, EVENT_SOURCE  # noqa: E402
from swapdrop.jobs import VIAS, JobStatus  # noqa: E402
from swapdrop.jobs_api import models  # noqa: E402

DIALECT = "https://json-schema.org/draft/2020-12/schema"
WEBHOOK_STATES = ("pending", "delivered", "failed", "disabled")


class SwapRequestedDetail(models.JobRequest):
    """The detail of a Swap Requested event: a POST /jobs body (target by s3Key or url: an event cannot
    upload) plus idempotencyKey (default: the event's id); the same key from the same source is one job."""

    model_config = ConfigDict(
        title="Swap Requested detail",
        json_schema_extra={
            "examples": [
                {
                    "face": "alice",
                    "target": {"s3Key": "incoming/beach.jpg"},
                    "metadata": {"order": "A-1042"},
                    "webhook": {"url": "https://example.com/hooks/swapdrop", "events": ["completed"]},
                    "idempotencyKey": "order-A-1042",
                }
            ]
        },
    )
    target: Annotated[
        models.S3KeyTarget | models.UrlTarget,
        Field(description="Exactly one of s3Key (an object in the stack's bucket) or url (fetched by Swapdrop)."),
    ]
    idempotencyKey: str | None = Field(
        default=None,
        pattern=swap_requests._KEY.pattern,
        description="1 to 255 printable ASCII characters, no spaces; default: the event's id. A repeated key "
        "from the same source is the same job (a different request under a used key is rejected).",
    )


def _swap_requested() -> dict[str, Any]:
    schema = SwapRequestedDetail.model_json_schema()
    metadata = next(s for s in schema["properties"]["metadata"]["anyOf"] if s.get("type") == "object")
    # The limits models.JobRequest checks in a validator, which pydantic cannot put into the schema itself.
    metadata["propertyNames"] = {"minLength": 1, "maxLength": models.MAX_METADATA_KEY_CHARS}
    metadata["additionalProperties"] = {"type": "string", "maxLength": models.MAX_METADATA_VALUE_CHARS}
    webhook = schema["$defs"]["WebhookRequest"]
    webhook["properties"]["events"]["uniqueItems"] = True
    webhook["properties"]["url"]["description"] = (
        "http(s) to a public address (no loopback, private, link-local or metadata address); signed as "
        "Standard Webhooks."
    )
    return _document(
        "swap-requested",
        f"The detail of a 'Swap Requested' event (any source but {EVENT_SOURCE!r}) on the stack's bus.",
        schema,
    )


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


TIME = {"type": "string", "format": "date-time", "description": "ISO-8601 UTC, e.g. 2024-10-16T09:59:21.500Z."}
TEXT = {"type": "string"}


def job_record() -> dict[str, Any]:
    """The public job record (`Job.public_view`): absent attributes are left out, never null."""
    properties: dict[str, Any] = {
        "jobId": {**TEXT, "description": "Swapdrop's id of the job (de-duplicate on it)."},
        "status": {"enum": [status.value for status in JobStatus]},
        "bucket": {**TEXT, "description": "The stack's bucket."},
        "targetKey": {**TEXT, "description": "The target image's key in the bucket."},
        "targetVersionId": TEXT,
        "targetSequencer": TEXT,
        "targetEventTime": TEXT,
        "targetUrl": {**TEXT, "description": "A URL target: where the image was fetched from."},
        "face": {**TEXT, "description": "The face's name (faces/<face>.<ext>)."},
        "sourceKey": {**TEXT, "description": "The face image's key."},
        "taskId": {**TEXT, "description": "The swap API's task."},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "queuePosition": {"type": "integer"},
        "imageUrl": {**TEXT, "description": "The swap API's result URL (may expire)."},
        "resultKey": {**TEXT, "description": "SUCCESS: where the result is in the bucket."},
        "resultVersionId": TEXT,
        "resultBase": TEXT,
        "resultCopyAttempts": {"type": "integer", "minimum": 0, "description": "Tries to copy the result."},
        "resultCopyError": {
            **TEXT,
            "description": "SUCCESS without a copy in results/: why (given up, or superseded by a newer upload).",
        },
        "failReason": {**TEXT, "description": "Why the job failed, was rejected or was cancelled, for a person."},
        "attempts": {"type": "integer", "minimum": 0},
        "lastError": TEXT,
        "createdAt": TIME,
        "updatedAt": TIME,
        "finishedAt": TIME,
        "uploadExpiresAt": TIME,
        "origin": {"enum": ["inbox", "api", "event"]},
        "requestedBy": {**TEXT, "description": "A JWT's sub, an IAM caller's ARN, or a Swap Requested source."},
        "requesterKind": {"enum": ["jwt", "iam", "event"]},
        "metadata": {"type": "object", "additionalProperties": TEXT},
        "retryOf": TEXT,
        "retriedBy": TEXT,
        "webhook": {
            "type": "object",
            "properties": {"url": TEXT, "events": {"type": "array", "items": {"enum": list(models.WEBHOOK_EVENTS)}}},
            "required": ["url"],
            "additionalProperties": False,
        },
        "webhookStatus": {
            "enum": list(WEBHOOK_STATES),
            "description": "The completed webhook's fate (present when the job has a webhook for it).",
        },
        "history": {
            "type": "array",
            "description": "The last status changes, oldest first.",
            "items": {
                "type": "object",
                "properties": {
                    "from": {"enum": [status.value for status in JobStatus]},
                    "to": {"enum": [status.value for status in JobStatus]},
                    "at": TIME,
                    "via": {"enum": sorted(VIAS)},
                },
                "required": ["from", "to", "at", "via"],
                "additionalProperties": False,
            },
        },
    }
    return {
        "type": "object",
        "description": "The public job record. Attributes a job does not have are absent (never null).",
        "properties": properties,
        "required": ["jobId", "status", "bucket", "targetKey", "createdAt", "updatedAt", "progress", "attempts"],
        "additionalProperties": False,
    }


def _swap_job_finished() -> dict[str, Any]:
    terminal = [status.value for status in JobStatus if status.is_terminal]
    schema = {
        "title": "Swap Job Finished detail",
        "allOf": [{"$ref": "#/$defs/Job"}],
        "properties": {"status": {"enum": terminal}},
        "required": ["finishedAt"],
        "$defs": {"Job": job_record()},
    }
    return _document(
        "swap-job-finished",
        f"The detail of a {DETAIL_TYPE!r} event (source {EVENT_SOURCE!r}): a job that reached a terminal status.",
        schema,
    )


def _swap_request_rejected() -> dict[str, Any]:
    location = {"type": "array", "items": {"type": ["string", "integer"]}}
    schema = {
        "title": "Swap Request Rejected detail",
        "type": "object",
        "properties": {
            "reason": {**TEXT, "description": "What was wrong, for a person (the first problem)."},
            "details": {
                "type": "array",
                "maxItems": swap_requests.MAX_DETAILS,
                "items": {
                    "type": "object",
                    "properties": {"loc": location, "msg": TEXT},
                    "required": ["loc", "msg"],
                    "additionalProperties": False,
                },
            },
            "eventId": {**_nullable(TEXT), "description": "The Swap Requested event's id (null: unreadable)."},
            "source": {**_nullable(TEXT), "description": "The Swap Requested event's source (null: unreadable)."},
            "idempotencyKey": {**TEXT, "description": "The key the request used, when it was not the event's id."},
            "request": {
                **TEXT,
                "maxLength": swap_requests.MAX_REQUEST_BYTES,
                "description": f"The request as received, cut to {swap_requests.MAX_REQUEST_BYTES} bytes of UTF-8 "
                "(a taskToken shown as '(hidden)').",
            },
        },
        "required": ["reason", "details", "eventId", "source", "request"],
        "additionalProperties": False,
    }
    return _document(
        "swap-request-rejected",
        f"The detail of a {swap_requests.REJECTED_DETAIL_TYPE!r} event (source {EVENT_SOURCE!r}): a Swap "
        "Requested event that could not even become a REJECTED job.",
        schema,
    )


def _webhook_body() -> dict[str, Any]:
    schema = {
        "title": "Swapdrop webhook body",
        "type": "object",
        "properties": {
            "type": {"enum": [f"job.{kind}" for kind in models.WEBHOOK_EVENTS]},
            "timestamp": {**TIME, "description": "When it happened (not when this attempt was sent)."},
            "data": {"$ref": "#/$defs/Job"},
        },
        "required": ["type", "timestamp", "data"],
        "additionalProperties": False,
        "$defs": {"Job": job_record()},
    }
    return _document(
        "webhook-body",
        "The signed body of a Swapdrop webhook (Standard Webhooks: webhook-id, webhook-timestamp, "
        "webhook-signature headers); `data` is the public job record, with a result key and no presigned URL.",
        schema,
    )


def _document(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    head = {"$schema": DIALECT, "$id": f"urn:swapdrop:events:schemas:{name}", "description": description}
    schema.pop("description", None)
    return {**head, **schema}


def build() -> dict[str, dict[str, Any]]:
    """File name → schema."""
    return {
        "swap-job-finished.json": _swap_job_finished(),
        "swap-requested.json": _swap_requested(),
        "swap-request-rejected.json": _swap_request_rejected(),
        "webhook-body.json": _webhook_body(),
    }


def render() -> dict[str, str]:
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for name, schema in build().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if events/schemas/ is out of date")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = OUTPUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date in events/schemas/: {', '.join(stale)}: run make schemas", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
