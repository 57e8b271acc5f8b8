"""The three Lambda handlers: event shapes in, use cases called, answers out.

Services are swapped in at the composition root (swapdrop.wiring) with monkeypatch;
everything behind them is the real code on fakes."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import callback_handler
import pytest
import reconcile_handler
import submit_handler
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from fakes import FakeLambdaContext, FakeSubmitQueue, FakeSubmitter
from swapdrop import wiring
from swapdrop.callback_token import token_for
from swapdrop.jobs import JobStatus
from swapdrop.reconciler import ReconcileReport
from swapdrop.submission import Outcome, SubmitPolicy, SubmitResult
from swapdrop.upstream import Accepted, Retryable

from .builders import CALLBACK_BASE, CALLBACK_SECRET, TASK_ID, make_job
from .conftest import World

EVENTS = Path(__file__).resolve().parents[2] / "events"
DECODED_KEY = "inbox/alice/summer trip/café + friends.jpg"
EVENT_BUCKET = "swapdrop-example"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:swapdrop-SubmitQueue-x"
JOB_ID = "5d41402abc4b2a76b9719d911017c592"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def answering(outcome: Outcome, retry_after: int | None = None) -> FakeSubmitter:
    return FakeSubmitter(lambda u: SubmitResult(u.job_id, outcome, "", retry_after))


@pytest.fixture
def event_world(world: World, images: SimpleNamespace) -> World:
    """The world the recorded S3 event belongs to: its bucket, alice's face, the target."""
    world.policy = SubmitPolicy(
        bucket=EVENT_BUCKET, callback_base_url=CALLBACK_BASE, max_image_bytes=100_000, max_attempts=3
    )
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(DECODED_KEY, images.png, version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko")
    return world


# --- submit: S3 events --------------------------------------------------------------------------


def test_submit_all_decodes_keys_from_the_s3_event() -> None:
    submitter = answering(Outcome.SUBMITTED)
    assert submit_handler.submit_all(load("s3-put.json"), submitter, 75) is None  # type: ignore[arg-type]
    ((item, lease),) = submitter.calls
    assert (item.bucket, item.key, item.sequencer, item.version_id) == (
        EVENT_BUCKET,
        DECODED_KEY,
        "00670F8E19D1F5E2A1",
        "096fKKXTRTtl3on89fVO.nfljtsv6qko",
    )
    # the same event delivered again names the same job
    again = answering(Outcome.SUBMITTED)
    submit_handler.submit_all(load("s3-put.json"), again, 75)  # type: ignore[arg-type]
    assert again.calls[0][0].job_id == item.job_id
    assert lease == 75


def _records(event: dict[str, Any], *keys_and_names: tuple[str, str, int]) -> dict[str, Any]:
    template = event["Records"][0]
    records = []
    for i, (key, name, size) in enumerate(keys_and_names):
        record = copy.deepcopy(template)
        record["eventName"] = name
        record["s3"]["object"].update({"key": key, "size": size, "sequencer": f"00670F8E19D1F5E2A{i}"})
        records.append(record)
    return {"Records": records}


def test_submit_all_skips_folder_markers_and_non_create_events() -> None:
    event = _records(
        load("s3-put.json"),
        ("inbox/alice/", "ObjectCreated:Put", 0),
        ("inbox/alice/gone.jpg", "ObjectRemoved:Delete", 0),
        ("inbox/alice/new+one.jpg", "ObjectCreated:CompleteMultipartUpload", 10),
    )
    submitter = answering(Outcome.SUBMITTED)
    submit_handler.submit_all(event, submitter, 30)  # type: ignore[arg-type]
    assert [u.key for u, _ in submitter.calls] == ["inbox/alice/new one.jpg"]


def test_submit_all_returns_the_longest_backoff() -> None:
    event = _records(
        load("s3-put.json"), ("inbox/a/1.jpg", "ObjectCreated:Put", 5), ("inbox/a/2.jpg", "ObjectCreated:Put", 5)
    )
    delays = iter([40, 90])
    submitter = FakeSubmitter(lambda u: SubmitResult(u.job_id, Outcome.RETRY_LATER, "x", next(delays)))
    assert submit_handler.submit_all(event, submitter, 30) == 90  # type: ignore[arg-type]


def sqs_record(index: int) -> SQSRecord:
    return SQSRecord(load("sqs-s3-put.json")["Records"][index])


def test_the_s3_test_event_is_dropped_without_a_job(world: World) -> None:
    queue = FakeSubmitQueue()
    submit_handler.handle_record(sqs_record(1), world.submitter(), queue, 60)  # type: ignore[arg-type]
    assert world.jobs.items == {}
    assert world.gateway.requests == []
    assert queue.deferred == []


def test_a_record_to_retry_is_deferred_by_its_backoff_then_failed(event_world: World) -> None:
    event_world.gateway.script(Retryable("code 23 QUEUE_REJECTED"))
    queue = FakeSubmitQueue()
    with pytest.raises(submit_handler.RetryLater):
        submit_handler.handle_record(sqs_record(0), event_world.submitter(), queue, 60)  # type: ignore[arg-type]
    ((arn, receipt, seconds),) = queue.deferred
    assert arn == QUEUE_ARN
    assert receipt == "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq/EXAMPLE1"
    assert 22 <= seconds <= 30
    (job,) = (event_world.jobs.get(i) for i in event_world.jobs.items)
    assert job is not None and job.status is JobStatus.PENDING and job.targetKey == DECODED_KEY


def test_a_submitted_record_is_not_deferred(event_world: World) -> None:
    event_world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    queue = FakeSubmitQueue()
    submit_handler.handle_record(sqs_record(0), event_world.submitter(), queue, 60)  # type: ignore[arg-type]
    assert queue.deferred == []
    (request,) = event_world.gateway.requests
    assert request.notify_hook.startswith(f"{CALLBACK_BASE}/")


def test_lease_is_the_remaining_time_plus_a_margin() -> None:
    context = FakeLambdaContext(remaining_millis=123_999)
    assert submit_handler.lease_seconds(context) == 123 + submit_handler.LEASE_MARGIN_SECONDS  # type: ignore[arg-type]


def test_sqs_batch_reports_exactly_the_retrying_record(event_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event_world.gateway.script(Retryable("HTTP 503"))
    queue = FakeSubmitQueue()
    monkeypatch.setattr(wiring, "submitter", event_world.submitter)
    monkeypatch.setattr(wiring, "submit_queue", lambda: queue)

    answer = submit_handler.lambda_handler(load("sqs-s3-put.json"), FakeLambdaContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}
    assert [d[1] for d in queue.deferred] == ["AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq/EXAMPLE1"]


def test_sqs_batch_with_everything_submitted_reports_nothing(
    event_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    submitter = event_world.submitter()
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", FakeSubmitQueue)

    answer = submit_handler.lambda_handler(load("sqs-s3-put.json"), FakeLambdaContext(remaining_millis=300_000))

    assert answer == {"batchItemFailures": []}
    (job,) = (event_world.jobs.get(i) for i in event_world.jobs.items)
    assert job is not None and job.status is JobStatus.SUBMITTED


def test_sqs_lease_comes_from_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    submitter = answering(Outcome.SUBMITTED)
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", FakeSubmitQueue)
    submit_handler.lambda_handler(load("sqs-s3-put.json"), FakeLambdaContext(remaining_millis=45_500))
    assert [lease for _, lease in submitter.calls] == [45 + submit_handler.LEASE_MARGIN_SECONDS]


def test_a_direct_s3_event_is_submitted(event_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event_world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    monkeypatch.setattr(wiring, "submitter", event_world.submitter)
    assert submit_handler.lambda_handler(load("s3-put.json"), FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(event_world.gateway.requests) == 1


def test_a_direct_s3_event_to_retry_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wiring, "submitter", lambda: answering(Outcome.RETRY_LATER, 120))
    with pytest.raises(submit_handler.RetryLater, match="retry in 120 s"):
        submit_handler.lambda_handler(load("s3-put.json"), FakeLambdaContext())


# --- submit: jobs-API job ids, and bodies that are neither --------------------------------------------

API_JOB_ID = "0f8e1c2d3b4a59687766554433221100"


def sqs_event(*bodies: str) -> dict[str, Any]:
    """An SQS batch of these bodies, shaped like the recorded one (ids 0, 1, ...)."""
    template = load("sqs-s3-put.json")["Records"][0]
    records = [
        template | {"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body} for i, body in enumerate(bodies)
    ]
    return {"Records": records}


def test_a_job_id_message_drives_that_job(monkeypatch: pytest.MonkeyPatch) -> None:
    submitter = FakeSubmitter(lambda u: SubmitResult(u.job_id, Outcome.SUBMITTED))
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", FakeSubmitQueue)
    answer = submit_handler.lambda_handler(
        sqs_event(json.dumps({"jobId": API_JOB_ID})), FakeLambdaContext(remaining_millis=30_000)
    )
    assert answer == {"batchItemFailures": []}
    assert submitter.job_calls == [(API_JOB_ID, 30 + submit_handler.LEASE_MARGIN_SECONDS)]
    assert submitter.calls == []


def test_a_job_id_message_to_retry_is_deferred_by_its_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    submitter = FakeSubmitter(
        lambda u: SubmitResult(u.job_id, Outcome.SUBMITTED),
        job_answer=lambda job_id: SubmitResult(job_id, Outcome.RETRY_LATER, "HTTP 503", 240),
    )
    queue = FakeSubmitQueue()
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", lambda: queue)
    answer = submit_handler.lambda_handler(sqs_event(json.dumps({"jobId": API_JOB_ID})), FakeLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert queue.deferred == [(QUEUE_ARN, "r-0", 240)]


def test_malformed_bodies_are_dropped_and_counted_and_the_rest_of_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    submitter = FakeSubmitter(lambda u: SubmitResult(u.job_id, Outcome.SUBMITTED))
    monkeypatch.setattr(wiring, "submitter", lambda: submitter)
    monkeypatch.setattr(wiring, "submit_queue", FakeSubmitQueue)
    bodies = (
        "not json at all: sk-live-SECRET",
        json.dumps({"jobId": "sk-live-SECRET"}),
        json.dumps(["sk-live-SECRET"]),
        json.dumps({"Records": [{"s3": "sk-live-SECRET"}]}),
        json.dumps({"jobId": API_JOB_ID}),
    )
    answer = submit_handler.lambda_handler(sqs_event(*bodies), FakeLambdaContext())
    assert answer == {"batchItemFailures": []}, "dropped, not returned to the queue to fail again"
    assert [job_id for job_id, _ in submitter.job_calls] == [API_JOB_ID]
    printed = capsys.readouterr().out
    (emf,) = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    assert emf["MalformedMessages"] == [1.0] * 4
    dropped = [r for r in caplog.records if r.getMessage() == "message dropped: not one SubmitFunction takes"]
    assert [r.__dict__["message_id"] for r in dropped] == ["m-0", "m-1", "m-2", "m-3"]
    assert all(r.__dict__["shape"] for r in dropped)
    assert "sk-live-SECRET" not in printed + repr([r.__dict__ for r in caplog.records])


def test_an_upload_form_event_over_sqs_binds_the_api_job(event_world: World, images: SimpleNamespace) -> None:
    stamp = "2024-10-16T09:50:00.000Z"
    event_world.jobs.create(
        make_job(
            jobId=API_JOB_ID,
            status=JobStatus.AWAITING_UPLOAD,
            bucket=EVENT_BUCKET,
            targetKey=f"uploads/{API_JOB_ID}/target.png",
            origin="api",
            resultBase=f"results/alice/jobs/{API_JOB_ID}",
            uploadExpiresAt="2024-10-16T10:05:00.000Z",
            createdAt=stamp,
            updatedAt=stamp,
        )
    )
    event_world.media.put(f"uploads/{API_JOB_ID}/target.png", images.png, version_id="u1")
    body = json.loads(load("sqs-s3-put.json")["Records"][0]["body"])
    body["Records"][0]["s3"]["object"].update({"key": f"uploads/{API_JOB_ID}/target.png", "versionId": "u1"})
    event_world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    record = SQSRecord(sqs_event(json.dumps(body))["Records"][0])
    submit_handler.handle_record(record, event_world.submitter(), FakeSubmitQueue(), 60)  # type: ignore[arg-type]
    assert list(event_world.jobs.items) == [API_JOB_ID], "no second job for the upload"
    job = event_world.jobs.get(API_JOB_ID)
    assert job is not None and job.status is JobStatus.SUBMITTED and job.targetVersionId == "u1"
    assert event_world.gateway.requests[0].target.data == images.png


# --- callback -------------------------------------------------------------------------------------


@pytest.fixture
def callback_world(world: World, images: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> World:
    from swapdrop.result_download import DownloadedImage

    world.jobs.put(
        make_job(jobId=JOB_ID, status=JobStatus.SUBMITTED, taskId=TASK_ID, targetKey=DECODED_KEY, attempts=1)
    )
    world.downloader.results["https://cdn.example.com/attachments/1729072764329123/swap.png"] = DownloadedImage(
        images.png, "png", "image/png"
    )
    receiver = world.receiver()
    monkeypatch.setattr(wiring, "callback_receiver", lambda: receiver)
    return world


def http_event(name: str = "callback-success.json", token: str | None = None) -> dict[str, Any]:
    event = load(name)
    token = token_for(CALLBACK_SECRET, JOB_ID) if token is None else token
    event["rawQueryString"] = f"token={token}"
    event["queryStringParameters"] = {"token": token}
    return event


def test_callback_success_maps_the_reply(callback_world: World) -> None:
    response = callback_handler.lambda_handler(http_event(), FakeLambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == {"jobId": JOB_ID, "status": "SUCCESS", "progress": 100, "changed": True}
    job = callback_world.jobs.get(JOB_ID)
    assert job is not None and job.resultKey == "results/alice/summer trip/café + friends.png"
    assert len(callback_world.events.published) == 1


def test_callback_with_a_bad_token_is_403(callback_world: World) -> None:
    response = callback_handler.lambda_handler(http_event(token="example-token"), FakeLambdaContext())
    assert response["statusCode"] == 403
    assert json.loads(response["body"]) == {"message": "invalid or missing token"}
    job = callback_world.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.SUBMITTED


def test_callback_without_a_query_string_is_403(callback_world: World) -> None:
    event = http_event()
    event["rawQueryString"] = ""
    del event["queryStringParameters"]
    assert callback_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 403


def test_callback_base64_body_is_decoded(callback_world: World) -> None:
    event = http_event("callback-failure.json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    response = callback_handler.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    job = callback_world.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.FAILURE and "执行超时 10 分钟" in (job.failReason or "")


def test_callback_malformed_body_is_400(callback_world: World) -> None:
    event = http_event()
    event["body"] = '{"id": "1729072764329123"}'
    response = callback_handler.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 400
    assert "status: Field required" in json.loads(response["body"])["errors"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_not_routed(callback_world: World, method: str) -> None:
    event = http_event()
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} /callbacks/{{jobId}}"
    writes = len(callback_world.jobs.writes)
    response = callback_handler.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] in (404, 405)
    assert len(callback_world.jobs.writes) == writes


def test_other_paths_are_not_routed(callback_world: World) -> None:
    event = http_event()
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/elsewhere/{JOB_ID}"
    assert callback_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 404


def test_raw_body() -> None:
    assert callback_handler.raw_body({"body": "café", "isBase64Encoded": False}) == "café".encode()
    assert (
        callback_handler.raw_body({"body": base64.b64encode(b"\x00\xff").decode(), "isBase64Encoded": True})
        == b"\x00\xff"
    )
    assert callback_handler.raw_body({"body": None}) == b""
    assert callback_handler.raw_body({}) == b""


# --- reconcile ------------------------------------------------------------------------------------


def test_reconcile_handler_returns_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    report = ReconcileReport(examined=4, finished=1, timed_out=1, polled=2, updated=1, expired=3, poll_error=None)
    runs: list[int] = []

    class OneRun:
        def run(self) -> ReconcileReport:
            runs.append(1)
            return report

    monkeypatch.setattr(wiring, "reconciler", OneRun)
    answer = reconcile_handler.lambda_handler(load("schedule.json"), FakeLambdaContext())
    assert answer == {
        "examined": 4,
        "finished": 1,
        "timed_out": 1,
        "polled": 2,
        "updated": 1,
        "expired": 3,
        "errors": 0,
        "moved": 0,
        "poll_error": None,
    }
    assert runs == [1]


def test_a_batch_whose_only_record_defers_still_answers_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    # its visibility is already set to the backoff: a function error would only add noise
    event = load("sqs-s3-put.json")
    event["Records"] = event["Records"][:1]
    queue = FakeSubmitQueue()
    monkeypatch.setattr(wiring, "submitter", lambda: answering(Outcome.RETRY_LATER, 300))
    monkeypatch.setattr(wiring, "submit_queue", lambda: queue)
    answer = submit_handler.lambda_handler(event, FakeLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}
    assert [seconds for _, _, seconds in queue.deferred] == [300]
