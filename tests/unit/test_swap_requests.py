"""Swap Requested events → jobs (swap_requests and RequestFunction's handler), on fakes.

The jobs API's service and its Powertools idempotency (moto in-process) are the `api` fixture's:
the event entrance uses the same create path and the same table. No sockets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
import request_handler
from fakes import FakeLambdaContext
from swapdrop import wiring
from swapdrop.jobs import SFN, WEBHOOK, JobStatus
from swapdrop.layout import input_key
from swapdrop.submission import Outcome
from swapdrop.swap_requests import MAX_REQUEST_BYTES, REJECTED_DETAIL_TYPE, SwapRequests

from .api_events import Api
from .test_logging_hygiene import captured  # noqa: F401 - the fixture

SOURCE = "com.example.pipeline"
TARGET_KEY = "photos/beach.png"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAX-task-token-never-logged"


class FakeRejections:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.fail_with: BaseException | None = None

    def rejected(self, detail: Mapping[str, Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        # what EventBridgeRejections sends must be JSON, UTF-8 encodable
        json.dumps(detail, ensure_ascii=False).encode("utf-8")
        self.published.append(dict(detail))


@pytest.fixture
def requests(api: Api, images: SimpleNamespace) -> SwapRequests:
    api.world.media.put("faces/alice.jpg", images.jpeg)
    api.world.media.put(TARGET_KEY, images.png)
    api.rejections = FakeRejections()  # type: ignore[attr-defined]
    return SwapRequests(api.service, api.posts, api.rejections)  # type: ignore[attr-defined]


def event(detail: Any, event_id: str = "e-1", source: str = SOURCE, detail_type: str = "Swap Requested") -> str:
    """The body SwapRequestQueue receives: the EventBridge event as the rule's SQS target sends it."""
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": "2024-10-16T09:59:21Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def request(**overrides: Any) -> dict[str, Any]:
    return {"face": "alice", "target": {"s3Key": TARGET_KEY}, **overrides}


def jobs(api: Api) -> list[Any]:
    return [api.world.jobs.get(job_id) for job_id in sorted(api.world.jobs.items)]


def rejected(api: Api) -> list[dict[str, Any]]:
    return api.rejections.published  # type: ignore[attr-defined]


# --- valid requests --------------------------------------------------------------------------


def test_a_valid_request_is_a_pending_api_like_job_from_the_source(api: Api, requests: SwapRequests) -> None:
    answer = requests.handle(event(request(metadata={"order": "A-1"}, taskToken=TOKEN)))
    (job,) = jobs(api)
    assert answer == {"status": 202, "body": {"jobId": job.jobId, "status": "PENDING"}}
    assert job.status is JobStatus.PENDING and job.origin == "event"
    assert (job.requestedBy, job.requesterKind) == (SOURCE, "event")
    assert (job.face, job.targetKey, job.metadata, job.taskToken) == ("alice", TARGET_KEY, {"order": "A-1"}, TOKEN)
    assert job.resultBase == f"results/alice/jobs/{job.jobId}"
    assert api.sender.sent == [job.jobId]
    assert rejected(api) == []


def test_an_event_job_is_submitted_like_an_api_job(api: Api, requests: SwapRequests) -> None:
    """The submitter reads an event job's face from its record (origin "event"), as for API jobs."""
    requests.handle(event(request()))
    (job,) = jobs(api)
    from swapdrop.upstream import Accepted

    api.world.gateway.script(Accepted(task_id="task-1", queue_position=None, code=1, description="ok"))
    result = api.world.submitter().submit_job(job.jobId, 900)
    assert result.outcome is Outcome.SUBMITTED, result
    assert api.world.jobs.get(job.jobId).status is JobStatus.SUBMITTED


def test_an_unknown_face_ends_rejected_by_the_submitter_with_why(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(face="nobody")))
    (job,) = jobs(api)
    api.world.submitter().submit_job(job.jobId, 900)
    job = api.world.jobs.get(job.jobId)
    assert job.status is JobStatus.REJECTED and "no face named 'nobody'" in (job.failReason or "")


def test_a_url_target_is_fetched_later(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(target={"url": "https://img.example/cat.png"})))
    (job,) = jobs(api)
    assert (job.status, job.targetUrl, job.targetKey) == (
        JobStatus.PENDING,
        "https://img.example/cat.png",
        input_key(job.jobId),
    )


# --- idempotency -----------------------------------------------------------------------------


def test_the_same_event_twice_is_one_job_and_the_same_answer(api: Api, requests: SwapRequests) -> None:
    first = requests.handle(event(request()))
    second = requests.handle(event(request()))
    assert first == second and len(api.world.jobs.items) == 1 and len(api.sender.sent) == 1


def test_events_with_one_idempotency_key_are_one_job(api: Api, requests: SwapRequests) -> None:
    first = requests.handle(event(request(idempotencyKey="order-1"), event_id="e-1"))
    second = requests.handle(event(request(idempotencyKey="order-1"), event_id="e-2"))
    assert first == second and len(api.world.jobs.items) == 1


def test_without_a_key_two_events_are_two_jobs(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(), event_id="e-1"))
    requests.handle(event(request(), event_id="e-2"))
    assert len(api.world.jobs.items) == 2


def test_keys_are_per_source(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(idempotencyKey="k"), source="a.pipeline"))
    requests.handle(event(request(idempotencyKey="k"), source="b.pipeline"))
    assert sorted(job.requestedBy for job in jobs(api)) == ["a.pipeline", "b.pipeline"]


def test_a_key_reused_with_another_request_is_a_rejected_event(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(idempotencyKey="order-1"), event_id="e-1"))
    answer = requests.handle(event(request(face="bob", idempotencyKey="order-1"), event_id="e-2"))
    assert answer["status"] == 400 and len(api.world.jobs.items) == 1
    (published,) = rejected(api)
    assert "idempotencyKey 'order-1' was used by this source with a different request" in published["reason"]
    assert (published["eventId"], published["source"], published["idempotencyKey"]) == ("e-2", SOURCE, "order-1")


def test_a_rejection_is_stored_too_a_duplicate_publishes_nothing_more(api: Api, requests: SwapRequests) -> None:
    requests.handle(event({"target": {"s3Key": TARGET_KEY}}))
    requests.handle(event({"target": {"s3Key": TARGET_KEY}}))
    assert len(rejected(api)) == 1 and api.world.jobs.items == {}


def test_a_bad_idempotency_key_falls_back_to_the_event_id_and_rejects_the_job(api: Api, requests: SwapRequests) -> None:
    body = event(request(idempotencyKey="has spaces"))
    requests.handle(body)
    requests.handle(body)
    (job,) = jobs(api)
    assert job.status is JobStatus.REJECTED
    assert job.failReason.startswith("detail.idempotencyKey: idempotencyKey must be 1 to 255 printable ASCII")


# --- invalid requests: a REJECTED job when face and target can be read -------------------------


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        (request(target={"s3Key": "photos/missing.png"}), "'photos/missing.png' is not in the bucket"),
        (request(target={"s3Key": "photos/doc.pdf"}), "is not an image the API takes"),
        (request(target={"url": "http://127.0.0.1/x.png"}), "private, loopback or reserved address"),
        (request(target={"url": "http://169.254.169.254/latest"}), "private, loopback or reserved address"),
        (request(target={"url": "ftp://img.example/x.png"}), "http"),
        (request(metadata={f"k{i}": "v" for i in range(51)}), "detail.metadata"),
        (request(metadata={"k": 5}), "detail.metadata.k"),
        (request(webhook={"url": "https://hooks.example/x", "events": ["nope"]}), "detail.webhook.events"),
        (request(colour="blue"), "detail.colour: Extra inputs are not permitted"),
        (request(taskToken=""), "detail.taskToken"),
    ],
)
def test_invalid_but_readable_requests_are_rejected_jobs_that_say_why(
    api: Api, requests: SwapRequests, detail: dict[str, Any], reason: str
) -> None:
    answer = requests.handle(event(detail))
    (job,) = jobs(api)
    assert answer["status"] == 202 and answer["body"]["status"] == "REJECTED"
    assert job.status is JobStatus.REJECTED and reason in (job.failReason or ""), job.failReason
    assert job.origin == "event" and job.history[-1].via == "event"
    assert api.sender.sent == [] and rejected(api) == []
    assert [published.jobId for published in api.world.events.published] == [job.jobId]  # told like any job


def test_a_rejected_job_keeps_the_fields_that_were_valid_so_the_workflow_is_told(
    api: Api, requests: SwapRequests
) -> None:
    webhook = {"url": "https://hooks.example/x", "events": ["completed"]}
    detail = request(metadata={"k": 5}, taskToken=TOKEN, webhook=webhook, target={"s3Key": "photos/missing.png"})
    requests.handle(event(detail))
    (job,) = jobs(api)
    assert job.status is JobStatus.REJECTED and job.metadata is None
    assert job.taskToken == TOKEN and dict(job.webhook or {}) == webhook
    assert {WEBHOOK, SFN} <= set(job.deliveries)  # answered with SendTaskFailure, told by webhook
    assert "(and 1 more problem)" not in job.failReason  # only the metadata failed validation
    assert job.failReason.startswith("detail.metadata.k")


def test_a_webhook_to_a_private_address_is_a_rejected_job_that_never_calls_it(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(webhook={"url": "http://10.0.0.7/hook"}, taskToken=TOKEN)))
    (job,) = jobs(api)
    assert job.status is JobStatus.REJECTED and "10.0.0.7" in (job.failReason or "")
    assert job.webhook is None and WEBHOOK not in job.deliveries and job.taskToken == TOKEN
    assert api.sender.sent == []


# --- invalid requests: a Swap Request Rejected event otherwise ---------------------------------


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"target": {"s3Key": TARGET_KEY}}, "detail.face: Field required"),
        ({"face": "alice"}, "detail.target: Field required"),
        (request(target={"upload": {"contentType": "image/png"}}), "an event cannot upload its target"),
        (request(face=123), "detail.face"),
        (request(target="photos/beach.png"), "detail.target"),
        (request(target={"s3Key": TARGET_KEY, "url": "https://a.example/x.png"}), "detail.target"),
        (request(face="../etc"), "detail.face"),
        (request(face="al\x1bice"), "control"),
        (request(face="a" * 100_000), "detail.face"),
        (request(target={"s3Key": "photos/../faces/alice.jpg"}), "'..' path segment"),
        (request(target={"s3Key": "k" * 5000 + ".png"}), "detail.target.s3Key"),
        (request(target={"url": "https://a.example/\x00.png"}), "control"),
    ],
)
def test_unreadable_requests_are_rejected_events(
    api: Api, requests: SwapRequests, detail: dict[str, Any], reason: str
) -> None:
    answer = requests.handle(event(detail, event_id="e-9"))
    assert answer["status"] == 400 and api.world.jobs.items == {}
    (published,) = rejected(api)
    assert reason in published["reason"], published["reason"]
    assert (published["eventId"], published["source"]) == ("e-9", SOURCE)
    assert "idempotencyKey" not in published  # the event id was the key
    assert len(published["request"].encode()) <= MAX_REQUEST_BYTES
    besides_the_request = json.dumps({name: value for name, value in published.items() if name != "request"})
    assert len(published["reason"]) < 600 and "a" * 200 not in besides_the_request  # never echoed in full


def test_the_rejected_event_repeats_the_request_cut_to_4_kib(api: Api, requests: SwapRequests) -> None:
    requests.handle(event({"face": "ü" * 10_000, "target": {"upload": {}}}))
    (published,) = rejected(api)
    text = published["request"]
    assert len(text.encode("utf-8")) <= MAX_REQUEST_BYTES and text.endswith("…") and text.startswith('{"face": "üü')


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "the message is not valid JSON"),
        ("[1, 2]", "not an EventBridge event"),
        (event(request(), detail_type="Something Else"), "detail-type is 'Something Else'"),
        (event(["face", "alice"]), "detail is not a JSON object"),
        (event(request(), source=""), "the event has no source"),
        ('{"detail-type": "Swap Requested", "source": "x", "detail": ' + "[" * 10_000 + "]" * 10_000 + "}", "nests"),
        (event(request(metadata={"k": "x" * 300_000})), "over EventBridge's 256 KiB"),
    ],
)
def test_messages_that_are_not_swap_requests_are_rejected_events(
    api: Api, requests: SwapRequests, body: str, reason: str
) -> None:
    answer = requests.handle(body)
    assert answer["status"] == 400 and api.world.jobs.items == {}
    (published,) = rejected(api)
    assert reason in published["reason"], published["reason"]
    assert len(published["request"].encode()) <= MAX_REQUEST_BYTES


def test_an_unpaired_surrogate_is_a_rejected_event_that_can_be_sent(api: Api, requests: SwapRequests) -> None:
    body = event(request()).replace('"face": "alice"', '"face": "al\\ud800ice"')
    requests.handle(body)
    (published,) = rejected(api)
    assert "not Unicode" in published["reason"] and api.world.jobs.items == {}


def test_a_huge_readable_request_is_a_rejected_job_with_a_short_reason(api: Api, requests: SwapRequests) -> None:
    requests.handle(event(request(metadata={f"k{i}": "x" * 2000 for i in range(100)})))
    (job,) = jobs(api)
    assert job.status is JobStatus.REJECTED and job.metadata is None and len(job.failReason) < 400


# --- the published event --------------------------------------------------------------------


def test_event_bridge_rejections_put_one_swapdrop_event_and_raise_when_refused() -> None:
    from swapdrop.swap_requests import EventBridgeRejections, RejectionNotPublished

    calls: list[dict[str, Any]] = []

    class Events:
        def __init__(self) -> None:
            self.answer: dict[str, Any] = {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}]}

        def put_events(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            return self.answer

    events = Events()
    EventBridgeRejections(events, "bus").rejected({"reason": "r", "request": "al\ud800ice"})
    (entry,) = calls[0]["Entries"]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("swapdrop", REJECTED_DETAIL_TYPE, "bus")
    assert json.loads(entry["Detail"]) == {"reason": "r", "request": "al?ice"}
    entry["Detail"].encode("utf-8")
    events.answer = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "Throttled", "ErrorMessage": "slow down"}]}
    with pytest.raises(RejectionNotPublished, match="Throttled"):
        EventBridgeRejections(events, "bus").rejected({"reason": "r"})


# --- the handler: SQS batches with partial failures ---------------------------------------------


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:swapdrop-SwapRequestQueue",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_only_aws_failures_fail_a_record_and_a_retry_makes_one_job(
    api: Api, requests: SwapRequests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring, "swap_requests", lambda: requests)
    create = api.world.jobs.create

    def flaky(job: Any) -> bool:
        if job.face == "bob":
            raise ConnectionError("DynamoDB is unreachable")
        return create(job)

    monkeypatch.setattr(api.world.jobs, "create", flaky)
    api.world.media.put("faces/bob.jpg", b"face")
    batch = sqs_event(
        event(request(), event_id="e-1"),
        event(request(face="bob"), event_id="e-2"),
        "garbage",
        event(request(target={"s3Key": "photos/missing.png"}), event_id="e-4"),
    )
    answer = request_handler.lambda_handler(batch, FakeLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert sorted(job.status.value for job in jobs(api)) == ["PENDING", "REJECTED"]
    assert len(rejected(api)) == 1
    monkeypatch.setattr(api.world.jobs, "create", create)  # DynamoDB is back: SQS delivers m-1 again
    again = request_handler.lambda_handler(sqs_event(event(request(face="bob"), event_id="e-2")), FakeLambdaContext())
    assert again == {"batchItemFailures": []}
    assert sorted(job.face for job in jobs(api)) == ["alice", "alice", "bob"]


def test_a_rejection_that_cannot_be_published_is_retried_then_published_once(
    api: Api, requests: SwapRequests, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring, "swap_requests", lambda: requests)
    api.rejections.fail_with = ConnectionError("EventBridge is unreachable")  # type: ignore[attr-defined]
    batch = sqs_event(event({"face": "alice"}))
    assert request_handler.lambda_handler(batch, FakeLambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "m-0"}]
    }
    api.rejections.fail_with = None  # type: ignore[attr-defined]
    assert request_handler.lambda_handler(batch, FakeLambdaContext()) == {"batchItemFailures": []}
    assert request_handler.lambda_handler(batch, FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(rejected(api)) == 1


def test_logs_hold_no_task_token_and_no_request(
    api: Api,
    requests: SwapRequests,
    monkeypatch: pytest.MonkeyPatch,
    captured: SimpleNamespace,  # noqa: F811
) -> None:
    monkeypatch.setattr(wiring, "swap_requests", lambda: requests)
    secret_metadata = "private-label-9f3c"
    batch = sqs_event(
        event(request(taskToken=TOKEN, metadata={"m": secret_metadata}), event_id="e-1"),
        event({"face": "alice", "taskToken": TOKEN, "metadata": {"m": secret_metadata}}, event_id="e-2"),
    )
    request_handler.lambda_handler(batch, FakeLambdaContext())
    logged = captured.text()
    assert "swap request handled" in logged and "swap request rejected" in logged
    assert TOKEN not in logged and secret_metadata not in logged
    (published,) = rejected(api)
    assert TOKEN not in json.dumps(published) and '"taskToken": "(hidden)"' in published["request"]
