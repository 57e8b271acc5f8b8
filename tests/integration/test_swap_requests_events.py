"""Swap Requested events on the local stack over real protocols: PutEvents on the stack's bus (moto's
EventBridge), SwapRequestRule → SwapRequestQueue (moto's SQS), the local SQS event source →
RequestFunction in a worker, the submitter, the emulator's callbacks, the jobs API (SigV4 over HTTP).

A test rule on the bus copies every Swap Request Rejected event to a queue the tests read.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from swapdrop_local.auth import signed_request
from swapdrop_local.provision import local_table
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SOURCE = "com.example.pipeline"
RESULT = jpeg((20, 120, 200), size=(64, 48))
FACE = jpeg((200, 40, 40))
TERMINAL = {"SUCCESS", "FAILURE", "REJECTED", "CANCELLED"}


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="events-secret-key",
        reconcile_interval=5.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.1, "engine": lambda _source, _target: RESULT, "callback_workers": 1},
        submit_concurrency=1,
    )
    with RunningStack(options) as running:
        s3 = running.stack.client("s3")
        s3.put_object(Bucket=running.stack.bucket, Key="faces/alice.jpg", Body=FACE)
        yield running


@pytest.fixture(scope="module")
def rejections(stack: RunningStack) -> str:
    """A queue that receives every Swap Request Rejected event (a consumer's rule, as on AWS)."""
    sqs, events = stack.stack.client("sqs"), stack.stack.client("events")
    url = sqs.create_queue(QueueName=f"rejections-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["swapdrop"], "detail-type": ["Swap Request Rejected"]}
    events.put_rule(Name="test-rejections", EventBusName=stack.stack.event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="test-rejections", EventBusName=stack.stack.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def put(stack: RunningStack, *details: dict[str, Any], source: str = SOURCE) -> list[str]:
    entries = [
        {
            "Source": source,
            "DetailType": "Swap Requested",
            "Detail": json.dumps(d),
            "EventBusName": stack.stack.event_bus,
        }
        for d in details
    ]
    answer = stack.stack.client("events").put_events(Entries=entries)
    assert answer["FailedEntryCount"] == 0, answer
    return [entry["EventId"] for entry in answer["Entries"]]


def target(stack: RunningStack, color: tuple[int, int, int]) -> str:
    key = f"photos/{uuid.uuid4().hex[:8]}.jpg"
    stack.stack.client("s3").put_object(Bucket=stack.stack.bucket, Key=key, Body=jpeg(color))
    return key


def jobs_marked(stack: RunningStack, marker: str) -> list[dict[str, Any]]:
    items = local_table(stack.stack.jobs_table, stack.stack.region, stack.stack.endpoint_url).scan()["Items"]
    return [item for item in items if (item.get("metadata") or {}).get("run") == marker]


def wait_for_jobs(stack: RunningStack, marker: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = jobs_marked(stack, marker)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{count} job(s) marked {marker} never appeared: {jobs_marked(stack, marker)}")


def settled(stack: RunningStack) -> None:
    """SwapRequestQueue is empty and nothing is in flight: every event put so far has been handled."""
    sqs, url = stack.stack.client("sqs"), stack.stack.resolver.refs["SwapRequestQueue"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if all(attributes[name] == "0" for name in names):
            return
        time.sleep(0.2)
    raise AssertionError(f"SwapRequestQueue never drained: {attributes}")


def api_job(stack: RunningStack, job_id: str, wait: int = 0) -> dict[str, Any]:
    answer = signed_request(stack.info(), "GET", f"/jobs/{job_id}?wait={wait}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_swap_requested_event_becomes_a_job_and_a_result(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex
    key = target(stack, (10, 200, 30))
    (event_id,) = put(stack, {"face": "alice", "target": {"s3Key": key}, "metadata": {"run": marker}})
    (item,) = wait_for_jobs(stack, marker)
    assert (item["origin"], item["requestedBy"], item["requesterKind"]) == ("event", SOURCE, "event")
    deadline = time.monotonic() + 90
    view = api_job(stack, item["jobId"])
    while view["status"] not in TERMINAL or (view["status"] == "SUCCESS" and not view.get("result")):
        assert time.monotonic() < deadline, view
        view = api_job(stack, item["jobId"], wait=5)
    assert view["status"] == "SUCCESS", view
    assert view["origin"] == "event" and view["target"]["key"] == key
    assert view["result"]["key"] == f"results/alice/jobs/{item['jobId']}.jpg"
    body = stack.stack.client("s3").get_object(Bucket=stack.stack.bucket, Key=view["result"]["key"])["Body"].read()
    assert body == RESULT
    assert event_id  # EventBridge took it; the job's id is Swapdrop's own


def test_a_duplicated_event_is_one_job(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex
    detail = {
        "face": "alice",
        "target": {"s3Key": target(stack, (90, 30, 160))},
        "metadata": {"run": marker},
        "idempotencyKey": f"order-{marker}",
    }
    put(stack, detail, detail)  # the producer's retry, in one PutEvents
    put(stack, detail)  # and again later, a new event id
    wait_for_jobs(stack, marker)
    settled(stack)
    assert len(jobs_marked(stack, marker)) == 1
    put(stack, detail, source="com.example.other")  # another source's key is its own
    wait_for_jobs(stack, marker, count=2)
    settled(stack)
    assert sorted(item["requestedBy"] for item in jobs_marked(stack, marker)) == ["com.example.other", SOURCE]


def test_an_invalid_request_naming_a_face_and_target_is_a_rejected_job(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex
    put(stack, {"face": "alice", "target": {"s3Key": "photos/not-there.jpg"}, "metadata": {"run": marker}})
    (item,) = wait_for_jobs(stack, marker)
    assert item["status"] == "REJECTED" and "'photos/not-there.jpg' is not in the bucket" in item["failReason"]
    view = api_job(stack, item["jobId"])
    assert view["status"] == "REJECTED" and view["origin"] == "event"


def test_an_unreadable_request_is_a_swap_request_rejected_event(stack: RunningStack, rejections: str) -> None:
    marker = uuid.uuid4().hex
    (event_id,) = put(stack, {"target": {"upload": {"contentType": "image/png"}}, "metadata": {"run": marker}})
    sqs = stack.stack.client("sqs")
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=rejections, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            published = json.loads(message["Body"])
            if published["detail"].get("eventId") == event_id:
                found.append(published)
    (published,) = found
    assert (published["source"], published["detail-type"]) == ("swapdrop", "Swap Request Rejected")
    detail = published["detail"]
    assert detail["source"] == SOURCE and detail["reason"].startswith("detail.face:")
    assert marker in detail["request"] and len(detail["request"].encode()) <= 4096
    settled(stack)
    assert jobs_marked(stack, marker) == []
