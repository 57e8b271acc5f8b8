"""events/schemas/*.json: what scripts/generate_event_schemas.py generates, valid JSON Schema 2020-12; the
examples in events/ validate and broken ones do not; what the code itself publishes (job_events,
webhooks, swap_requests) validates for jobs of every terminal status; the README's examples work."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from swapdrop import state_machine as sm
from swapdrop.job_events import DETAIL_TYPE, EventBridgePublisher
from swapdrop.jobs import Job, JobStatus, webhook_message_id
from swapdrop.swap_requests import REJECTED_DETAIL_TYPE, EventBridgeRejections, SwapRequests
from swapdrop.webhook_signing import WebhookSigner, receiver_keys
from swapdrop.webhooks import WebhookMessage, completed_message, webhook_body

from .api_events import Api
from .builders import make_job, snap

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "events" / "schemas"
NOW = datetime(2024, 10, 16, 10, 0, 2, tzinfo=UTC)
HIDDEN = {"version", "leaseUntil", "submitInDoubt", "deliveries", "taskToken", "webhookOutbox", "webhookDeliveries"} | {
    "upstreamMember",  # the upstream pool's bookkeeping
    "submittedAt",
}
"""Job attributes public_view never shows (`extra` is not an attribute of the item)."""


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_event_schemas", ROOT / "scripts" / "generate_event_schemas.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def problems(name: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(instance)]


def example(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


# --- the files ----------------------------------------------------------------------------------


def test_the_committed_schemas_are_what_the_models_generate() -> None:
    rendered = _generator().render()
    assert sorted(rendered) == sorted(path.name for path in SCHEMAS.glob("*.json"))
    for name, text in rendered.items():
        assert (SCHEMAS / name).read_text() == text, f"events/schemas/{name} is out of date: run make schemas"


@pytest.mark.parametrize("name", sorted(path.name for path in SCHEMAS.glob("*.json")))
def test_each_schema_is_a_valid_2020_12_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


# --- examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_file", "schema", "detail_type", "source"),
    [
        ("swap-requested.json", "swap-requested.json", "Swap Requested", "com.example.pipeline"),
        ("swap-job-finished.json", "swap-job-finished.json", DETAIL_TYPE, "swapdrop"),
        ("swap-request-rejected.json", "swap-request-rejected.json", REJECTED_DETAIL_TYPE, "swapdrop"),
    ],
)
def test_the_example_events_validate(event_file: str, schema: str, detail_type: str, source: str) -> None:
    event = example(event_file)
    assert (event["detail-type"], event["source"]) == (detail_type, source)
    assert problems(schema, event["detail"]) == []


def test_the_example_webhook_body_validates() -> None:
    assert problems("webhook-body.json", example("webhook-completed.json")) == []


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    node = copy
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return copy


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


FINISHED = example("swap-job-finished.json")["detail"]
REQUESTED = example("swap-requested.json")["detail"]
REJECTED = example("swap-request-rejected.json")["detail"]
BODY = example("webhook-completed.json")


BROKEN = [
    ("swap-job-finished.json", _with(FINISHED, "IN_PROGRESS", "status"), "not terminal"),
    ("swap-job-finished.json", _without(FINISHED, "finishedAt"), "no finishedAt"),
    ("swap-job-finished.json", _without(FINISHED, "jobId"), "no jobId"),
    ("swap-job-finished.json", _with(FINISHED, 101, "progress"), "progress over 100"),
    ("swap-job-finished.json", _with(FINISHED, "s3cr3t", "taskToken"), "an internal attribute"),
    ("swap-job-finished.json", _with(FINISHED, {"copy": {}}, "deliveries"), "the outbox"),
    ("swap-job-finished.json", _with(FINISHED, [{"from": "PENDING"}], "history"), "a partial transition"),
    ("swap-requested.json", _without(REQUESTED, "face"), "no face"),
    ("swap-requested.json", _with(REQUESTED, {"upload": {"contentType": "image/png"}}, "target"), "an upload"),
    ("swap-requested.json", _with(REQUESTED, {"s3Key": "a", "url": "https://x/"}, "target"), "two targets"),
    ("swap-requested.json", _with(REQUESTED, "has space", "idempotencyKey"), "a key with a space"),
    ("swap-requested.json", _with(REQUESTED, "k" * 256, "idempotencyKey"), "a key too long"),
    ("swap-requested.json", _with(REQUESTED, {"": "x"}, "metadata"), "an empty metadata key"),
    ("swap-requested.json", _with(REQUESTED, {"k": "v" * 501}, "metadata"), "a metadata value too long"),
    ("swap-requested.json", _with(REQUESTED, ["completed", "completed"], "webhook", "events"), "twice"),
    ("swap-requested.json", _with(REQUESTED, ["finished"], "webhook", "events"), "an unknown event"),
    ("swap-requested.json", _with(REQUESTED, "x" * 1025, "taskToken"), "a token too long"),
    ("swap-requested.json", _with(REQUESTED, 1, "priority"), "an unknown field"),
    ("swap-request-rejected.json", _without(REJECTED, "reason"), "no reason"),
    ("swap-request-rejected.json", _with(REJECTED, "x" * 4097, "request"), "an excerpt over 4 KiB"),
    ("swap-request-rejected.json", _with(REJECTED, [{"loc": ["detail"]}], "details"), "a detail without msg"),
    ("webhook-body.json", _with(BODY, "job.finished", "type"), "an unknown type"),
    ("webhook-body.json", _without(BODY, "data"), "no data"),
    ("webhook-body.json", _with(BODY, {"url": "https://x"}, "data", "result"), "a presigned URL"),
]


@pytest.mark.parametrize(("schema", "instance", "why"), BROKEN)
def test_broken_examples_fail(schema: str, instance: dict[str, Any], why: str) -> None:
    assert problems(schema, instance), why


# --- Swap Requested: the schema says what RequestFunction's model accepts ----------------------------


@pytest.mark.parametrize(
    "detail",
    [
        REQUESTED,
        {"face": "alice", "target": {"url": "https://example.com/a.jpg"}},
        {"face": "alice", "target": {"s3Key": "photos/a.jpg"}, "taskToken": "t" * 1024, "idempotencyKey": None},
        {"face": "alice", "target": {"s3Key": "photos/a.jpg"}, "metadata": {"k" * 40: "v" * 500}},
        *(instance for schema, instance, _ in BROKEN if schema == "swap-requested.json"),
        {"face": "", "target": {"s3Key": "a"}},
        {"face": "alice", "target": {"s3Key": ""}},
        {"face": "alice", "target": {"url": "u" * 2049}},
        {"face": "alice", "target": {"s3Key": "a"}, "metadata": {str(n): "v" for n in range(51)}},
        {"face": "alice", "target": {"s3Key": "a"}, "webhook": {"url": "https://x/", "events": []}},
    ],
)
def test_the_swap_requested_schema_agrees_with_the_model(detail: dict[str, Any]) -> None:
    model = _generator().SwapRequestedDetail
    try:
        model.model_validate(detail)
        accepted = True
    except ValidationError:
        accepted = False
    assert (problems("swap-requested.json", detail) == []) == accepted, detail


# --- what the code publishes ----------------------------------------------------------------------


HOOK = {"url": "https://hooks.example/in", "events": ["started", "progress", "completed"]}


def _open_job(**overrides: Any) -> Job:
    """A job with every optional public attribute a real one can carry."""
    values: dict[str, Any] = {
        "jobId": "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617",
        "status": JobStatus.PENDING,
        "targetKey": "jobs/3f2a9c1e5b7d4e8fa0b1c2d3e4f50617/target",
        "targetVersionId": "v1",
        "targetSequencer": "00670F8E19D1F5E2A1",
        "targetEventTime": "2024-10-16T09:59:21.000Z",
        "targetUrl": "https://images.example/beach.jpg",
        "sourceKey": "faces/alice.jpg",
        "origin": "event",
        "requestedBy": "com.example.pipeline",
        "requesterKind": "event",
        "metadata": {"order": "A-1042"},
        "webhook": HOOK,
        "taskToken": "AQCEAAAA-task-token",
        "retryOf": "0" * 32,
        "resultBase": "results/alice/jobs/3f2a9c1e5b7d4e8fa0b1c2d3e4f50617",
        "lastError": "upstream 503",
        "attempts": 2,
        "uploadExpiresAt": "2024-10-16T10:14:21.000Z",
    }
    return make_job(**(values | overrides))


def _submitted() -> Job:
    job = sm.record_accepted(_open_job(), NOW, "1729072764329123", 3).job
    return sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "45%")).job


def terminal_jobs() -> dict[str, Job]:
    success = sm.apply_snapshot(_submitted(), NOW, snap("SUCCESS", "100%", imageUrl="https://cdn.example/r.png")).job
    success = sm.record_result_copied(success, NOW, "results/alice/jobs/x.png", "rv1").job
    return {
        "SUCCESS": dataclasses.replace(success, retriedBy="1" * 32),
        "FAILURE": sm.apply_snapshot(_submitted(), NOW, snap("FAILURE", failReason="执行超时")).job,
        "REJECTED": sm.reject(_open_job(), NOW, "detail.target.s3Key: 'x.jpg' is not in the bucket").job,
        "CANCELLED": sm.cancel(_submitted(), NOW, "cancelled by the caller").job,
        "plain": make_job(status=JobStatus.REJECTED, finishedAt="2024-10-16T10:00:02.113Z"),
    }


def test_every_public_attribute_of_a_job_is_in_the_schema() -> None:
    """A new Job attribute fails here until the schema (scripts/generate_event_schemas.py) describes it."""
    public = {spec.name for spec in dataclasses.fields(Job)} - HIDDEN - {"extra"}
    schema = json.loads((SCHEMAS / "swap-job-finished.json").read_text())
    described = set(schema["$defs"]["Job"]["properties"])
    # plus what public_view derives: the webhook's fate and the result copy's outbox mirrors
    assert public | {"webhookStatus", "resultCopyAttempts", "resultCopyError"} == described
    assert schema["$defs"]["Job"] == json.loads((SCHEMAS / "webhook-body.json").read_text())["$defs"]["Job"]


class RecordingEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.entries))}]}


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE", "REJECTED", "CANCELLED", "plain"])
def test_swap_job_finished_as_published_validates(status: str) -> None:
    job = terminal_jobs()[status]
    assert job.status.is_terminal
    events = RecordingEvents()
    EventBridgePublisher(events, "bus").job_finished(job)
    (entry,) = events.entries
    assert entry["DetailType"] == DETAIL_TYPE
    detail = json.loads(entry["Detail"])
    assert problems("swap-job-finished.json", detail) == []
    assert "taskToken" not in detail


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE", "REJECTED", "CANCELLED"])
def test_webhook_bodies_as_sent_validate(status: str) -> None:
    job = terminal_jobs()[status]
    messages = [completed_message(job)]
    if status != "REJECTED":  # a rejected job was never started
        started = _submitted()
        messages += [
            WebhookMessage(job.jobId, message_id, entry["type"], entry["at"])
            for message_id, entry in (started.webhookOutbox or {}).items()
        ]
        assert {m.kind for m in messages} == {"started", "progress", "completed"}
        assert problems("webhook-body.json", webhook_body(started, messages[-1])) == []
    for message in messages:
        body = json.loads(json.dumps(webhook_body(job, message), separators=(",", ":")))
        assert problems("webhook-body.json", body) == [], message


def _swap_event(detail: Any, event_id: str = "e-1") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": "Swap Requested",
            "source": "com.example.pipeline",
            "account": "123456789012",
            "time": "2024-10-16T09:59:21Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


@pytest.mark.parametrize(
    "body",
    [
        _swap_event({"target": {"upload": {"contentType": "image/png"}}, "taskToken": "t", "idempotencyKey": "k-1"}),
        _swap_event({"face": "../x", "target": {"s3Key": "a.jpg"}}),
        _swap_event({"face": "alice", "target": {"s3Key": "a/../b.jpg"}, "extra": "x" * 9000}),
        _swap_event("not an object"),
        _swap_event({"face": "alice", "target": {"s3Key": "a\ud800.jpg"}}),
        "not json at all",
        json.dumps({"detail-type": "Something Else", "source": "x", "detail": {}}),
        json.dumps({"detail-type": "Swap Requested", "detail": {}}),
    ],
)
def test_swap_request_rejected_as_published_validates(api: Api, body: str) -> None:
    events = RecordingEvents()
    requests = SwapRequests(api.service, api.posts, EventBridgeRejections(events, "bus"))
    assert requests.handle(body)["status"] == 400
    (entry,) = events.entries
    assert entry["DetailType"] == REJECTED_DETAIL_TYPE
    assert problems("swap-request-rejected.json", json.loads(entry["Detail"])) == []


# --- the README ---------------------------------------------------------------------------------


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Event-driven pipelines")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", readme_section(), re.S)


def test_the_readme_put_events_entry_is_a_valid_swap_request() -> None:
    (entries,) = [json.loads(block) for block in code_blocks("json") if '"Swap Requested"' in block]
    (entry,) = entries
    assert (entry["DetailType"], entry["Source"]) == ("Swap Requested", "com.example.pipeline")
    assert problems("swap-requested.json", json.loads(entry["Detail"])) == []


SECRET = json.dumps({"current": "generated-by-secrets-manager", "previous": "the-old-one"})


def _signed(body: str, when: datetime) -> dict[str, str]:
    return WebhookSigner(lambda: SECRET).headers(webhook_message_id("job-1", "completed"), when, body)


def test_the_readme_verifies_by_hand_in_ten_lines() -> None:
    (snippet,) = [block for block in code_blocks("python") if "def verify(" in block]
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 10, snippet  # code lines
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - the README's own code
    verify = namespace["verify"]
    body = json.dumps(BODY, separators=(",", ":"))
    headers = _signed(body, datetime.now(UTC))
    current, previous = receiver_keys(SECRET)
    assert verify(current, headers, body.encode()) and verify(previous, headers, body.encode())
    assert not verify(current, headers, body.encode() + b" ")
    assert not verify("whsec_" + "c29tZW9uZSBlbHNl", headers, body.encode())
    assert not verify(current, _signed(body, datetime(2024, 10, 16, tzinfo=UTC)), body.encode())  # too old


def test_the_readme_verifies_with_the_standardwebhooks_package() -> None:
    (snippet,) = [block for block in code_blocks("python") if "from standardwebhooks" in block]
    body = json.dumps(BODY, separators=(",", ":"))
    current, _ = receiver_keys(SECRET)
    namespace: dict[str, Any] = {"key": current, "body": body.encode(), "headers": _signed(body, datetime.now(UTC))}
    exec(snippet, namespace)  # noqa: S102 - the README's own code
    assert namespace["event"]["data"]["jobId"] == BODY["data"]["jobId"]


def test_jobs_of_every_status_make_the_examples_used_here() -> None:
    """The terminal jobs above really carry what they claim (so the validations above mean something)."""
    jobs = terminal_jobs()
    assert {job.status.value for job in jobs.values()} == {"SUCCESS", "FAILURE", "REJECTED", "CANCELLED"}
    view = jobs["SUCCESS"].public_view()
    assert {"resultKey", "history", "webhook", "webhookStatus", "metadata", "targetUrl", "retriedBy"} <= set(view)
