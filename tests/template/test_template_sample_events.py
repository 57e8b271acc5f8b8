"""events/*.json: sample events shaped as AWS delivers them, consistent with the template and each other."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote_plus

import pytest
from cfn_template import ROOT

EVENTS = ROOT / "events"
RAW_KEY = "inbox/alice/summer trip/café + friends.jpg"
ENCODED_KEY = "inbox/alice/summer+trip/caf%C3%A9+%2B+friends.jpg"
TASK_ID = "1729072764329123"
CALLBACKS = {
    "callback-submitted.json": ("SUBMITTED", "0%"),
    "callback-in-progress.json": ("IN_PROGRESS", "45%"),
    "callback-success.json": ("SUCCESS", "100%"),
    "callback-failure.json": ("FAILURE", ""),
}
SNAPSHOT_FIELDS = {
    "id", "action", "status", "prompt", "promptEn", "description", "state", "submitTime", "startTime",
    "finishTime", "imageUrl", "progress", "failReason", "properties", "buttons",
}  # fmt: skip


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_s3_put_event_key_is_encoded_as_s3_encodes_it() -> None:
    (record,) = load("s3-put.json")["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    s3 = record["s3"]
    assert s3["bucket"]["name"] == "swapdrop-example"
    assert s3["bucket"]["arn"] == "arn:aws:s3:::swapdrop-example"
    key = s3["object"]["key"]
    assert key == ENCODED_KEY == quote_plus(RAW_KEY, safe="/"), f"key {key!r}: S3 writes space as +, + as %2B"
    assert unquote_plus(key) == RAW_KEY
    obj = s3["object"]
    assert isinstance(obj["size"], int) and obj["size"] > 0
    assert re.fullmatch(r"[0-9a-f]{32}", obj["eTag"])
    assert re.fullmatch(r"[0-9A-F]{16,}", obj["sequencer"]), "sequencer: upper-case hex, as S3 sends it"


def test_sqs_event_wraps_the_s3_event_and_a_test_event() -> None:
    records = load("sqs-s3-put.json")["Records"]
    assert len(records) == 2
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:swapdrop-SubmitQueue-x"
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["messageId"] and record["receiptHandle"]
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest(), "md5OfBody mismatch"  # noqa: S324
    assert json.loads(records[0]["body"]) == load("s3-put.json"), "the first body must be events/s3-put.json"
    test_event = json.loads(records[1]["body"])
    assert test_event["Event"] == "s3:TestEvent"
    assert test_event["Service"] == "Amazon S3"
    assert test_event["Bucket"] == "swapdrop-example"
    assert {"Time", "RequestId", "HostId"} <= set(test_event)


def callback_job_ids() -> set[str]:
    return {load(name)["pathParameters"]["jobId"] for name in CALLBACKS}


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_callback_event_is_an_http_api_v2_request_for_the_route(resources: dict[str, Any], name: str) -> None:
    event = load(name)
    route = resources["CallbackFunction"]["Properties"]["Events"]
    (definition,) = route.values()
    route_key = f"{definition['Properties']['Method'].upper()} {definition['Properties']['Path']}"
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route_key
    job_id = event["pathParameters"]["jobId"]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), f"job id {job_id!r}: 32 lowercase hex characters"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == f"/callbacks/{job_id}"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["queryStringParameters"] == {"token": "example-token"}
    assert parse_qs(event["rawQueryString"]) == {"token": ["example-token"]}
    assert event["headers"]["content-type"] == "application/json"
    assert event["isBase64Encoded"] is False
    assert int(event["headers"]["content-length"]) == len(event["body"].encode())


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_callback_body_is_an_upstream_task_snapshot(name: str) -> None:
    event = load(name)
    snapshot = json.loads(event["body"])
    status, progress = CALLBACKS[name]
    missing = SNAPSHOT_FIELDS - set(snapshot)
    assert not missing, f"{name}: snapshot lacks {sorted(missing)}"
    assert set(snapshot) - SNAPSHOT_FIELDS, f"{name}: add unknown fields (botType, ...) the receiver must ignore"
    assert snapshot["id"] == TASK_ID
    assert snapshot["action"] == "SWAP_FACE"
    assert snapshot["status"] == status
    assert snapshot["progress"] == progress
    assert snapshot["state"] == event["pathParameters"]["jobId"], "state echoes our job id"
    assert (snapshot["imageUrl"] is not None) == (status == "SUCCESS")
    assert (snapshot["failReason"] is not None) == (status == "FAILURE")
    assert (snapshot["finishTime"] is not None) == (status in ("SUCCESS", "FAILURE"))


def test_callbacks_are_about_one_job() -> None:
    assert len(callback_job_ids()) == 1


def test_schedule_event() -> None:
    event = load("schedule.json")
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
