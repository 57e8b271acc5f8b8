"""Every event the local stack puts on its bus, and every webhook body a receiver gets, validates against
the published schemas (events/schemas/). A test rule with an SQS target catches everything on the bus
(moto's EventBridge, as a consumer's rule would on AWS) while Swap Requested events make a SUCCESS, a
FAILURE (the emulator's engine refuses the target), a REJECTED job (a target not in the bucket) and a
Swap Request Rejected event (an upload target); each job has a webhook for all three message types."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from swapdrop.webhook_signing import receiver_keys
from swapdrop_local.provision import local_client, local_table
from swapdrop_local.stack import RunningStack, StackOptions
from swapdrop_local.webhook_receiver import WebhookReceiver

from integration.conftest import jpeg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"
SOURCE = "com.example.schemas"
RESULT = jpeg((20, 120, 200), size=(64, 48))
FACE = jpeg((200, 40, 40))
REFUSED = jpeg((1, 2, 3))
SCHEMA_OF = {
    "Swap Requested": "swap-requested.json",
    "Swap Job Finished": "swap-job-finished.json",
    "Swap Request Rejected": "swap-request-rejected.json",
}


def engine(_source: bytes, target: bytes) -> bytes:
    if target == REFUSED:
        raise ValueError("no face found in the target")
    return RESULT


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def problems(name: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(instance)]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="schemas-secret-key",
        reconcile_interval=3.0,
        parameters={"ReconcileQuietSeconds": "2", "AllowPrivateWebhookUrls": "true", "WebhookRetryScale": "0.001"},
        emulator={"step_delay": 0.1, "engine": engine, "callback_workers": 1},
        submit_concurrency=1,
    )
    with RunningStack(options) as running:
        running.stack.client("s3").put_object(Bucket=running.stack.bucket, Key="faces/alice.jpg", Body=FACE)
        yield running


@pytest.fixture(scope="module")
def everything(stack: RunningStack) -> str:
    """A queue that receives every event on the bus, whatever its source or type."""
    sqs, events = stack.stack.client("sqs"), stack.stack.client("events")
    url = sqs.create_queue(QueueName=f"everything-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [{"prefix": ""}]}
    events.put_rule(Name="test-everything", EventBusName=stack.stack.event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="test-everything", EventBusName=stack.stack.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


@pytest.fixture(scope="module")
def receiver(stack: RunningStack) -> Iterator[WebhookReceiver]:
    info = stack.info()
    secrets = local_client("secretsmanager", info["region"], info["endpoint_url"])
    secret = secrets.get_secret_value(SecretId=info["webhook_secret_id"])["SecretString"]
    with WebhookReceiver(keys=receiver_keys(secret)) as running:
        yield running


def put(stack: RunningStack, detail: dict[str, Any]) -> str:
    entry = {"Source": SOURCE, "DetailType": "Swap Requested", "Detail": json.dumps(detail)}
    answer = stack.stack.client("events").put_events(Entries=[{**entry, "EventBusName": stack.stack.event_bus}])
    assert answer["FailedEntryCount"] == 0, answer
    return answer["Entries"][0]["EventId"]


def target(stack: RunningStack, body: bytes) -> str:
    key = f"photos/{uuid.uuid4().hex[:8]}.jpg"
    stack.stack.client("s3").put_object(Bucket=stack.stack.bucket, Key=key, Body=body)
    return key


def job_of(stack: RunningStack, marker: str) -> dict[str, Any] | None:
    items = local_table(stack.stack.jobs_table, stack.stack.region, stack.stack.endpoint_url).scan()["Items"]
    found = [item for item in items if (item.get("metadata") or {}).get("run") == marker]
    return found[0] if found else None


def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.3)
    raise AssertionError(f"never: {what}")


def test_every_event_and_webhook_the_stack_emits_validates(
    stack: RunningStack, everything: str, receiver: WebhookReceiver
) -> None:
    receiver.answer(200)
    hook = {"url": f"{receiver.url}/schemas", "events": ["started", "progress", "completed"]}
    runs = {status: uuid.uuid4().hex for status in ("SUCCESS", "FAILURE", "REJECTED")}
    keys = {"SUCCESS": target(stack, RESULT), "FAILURE": target(stack, REFUSED), "REJECTED": "photos/not-there.jpg"}
    for status, marker in runs.items():
        put(stack, {"face": "alice", "target": {"s3Key": keys[status]}, "metadata": {"run": marker}, "webhook": hook})
    rejected_id = put(stack, {"target": {"upload": {"contentType": "image/png"}}, "metadata": {"run": "none"}})

    jobs: dict[str, dict[str, Any]] = {}
    for status, marker in runs.items():

        def settled(marker: str = marker) -> dict[str, Any] | None:
            item = job_of(stack, marker)
            return item if item and item.get("webhookDeliveries") and item.get("finishedAt") else None

        jobs[status] = until(settled, 120, f"the {status} job and its webhook")
        assert jobs[status]["status"] == status, jobs[status].get("failReason")

    # every completed webhook delivered, then every event on the bus read and validated by its type
    completed = [f"msg_{item['jobId']}_completed" for item in jobs.values()]

    def all_delivered() -> bool:
        return set(completed) <= {d.headers["webhook-id"] for d in receiver.received("/schemas")}

    until(all_delivered, 120, "every completed webhook delivered")
    sqs = stack.stack.client("sqs")
    seen: list[dict[str, Any]] = []

    def finished_and_rejected() -> bool:
        for message in sqs.receive_message(QueueUrl=everything, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=everything, ReceiptHandle=message["ReceiptHandle"])
        finished = {e["detail"].get("jobId") for e in seen if e["detail-type"] == "Swap Job Finished"}
        rejected = {e["detail"].get("eventId") for e in seen if e["detail-type"] == "Swap Request Rejected"}
        return {item["jobId"] for item in jobs.values()} <= finished and rejected_id in rejected

    until(finished_and_rejected, 60, "a Swap Job Finished per job and the Swap Request Rejected event")
    for event in seen:
        assert event["detail-type"] in SCHEMA_OF, event["detail-type"]
        found = problems(SCHEMA_OF[event["detail-type"]], event["detail"])
        if event["id"] == rejected_id:  # our own invalid request: the schema refuses it as the stack did
            assert found and any("target" in problem for problem in found), found
        else:
            assert found == [], event
    types = {(e["source"], e["detail-type"]) for e in seen}
    assert {("swapdrop", "Swap Job Finished"), ("swapdrop", "Swap Request Rejected"), (SOURCE, "Swap Requested")} <= (
        types
    )
    statuses = {e["detail"]["status"] for e in seen if e["detail-type"] == "Swap Job Finished"}
    assert {"SUCCESS", "FAILURE", "REJECTED"} <= statuses

    bodies = receiver.received("/schemas")
    assert {d.json["type"] for d in bodies} >= {"job.started", "job.completed"}
    for delivery in bodies:
        assert delivery.verified, delivery.headers
        assert problems("webhook-body.json", delivery.json) == [], delivery.json
