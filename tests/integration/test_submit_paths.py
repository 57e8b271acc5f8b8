"""Submit-side behaviour on moto's server: duplicates, retries, refusals and rejections."""

from __future__ import annotations

import json

import pytest
import submit_handler
from swapdrop import submission, wiring
from swapdrop.jobs import JobStatus, parse_iso
from swapdrop_local.lambda_context import LocalLambdaContext
from swapdrop_local.sqs_source import lambda_event

from integration.conftest import Harness, jpeg, png

FACE = jpeg((10, 200, 30))
TARGET = jpeg((200, 30, 10))


def _receive_all(harness: Harness) -> list[dict]:
    sqs = harness.stack.client("sqs")
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=harness.stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages"):
        messages.extend(batch)
    return [m for m in messages if "s3:TestEvent" not in m["Body"]]


def _invoke(harness: Harness, messages: list[dict]) -> dict:
    event = lambda_event(messages, harness.submit_source.queue_arn, harness.stack.region)
    return submit_handler.lambda_handler(event, LocalLambdaContext("SubmitFunction"))


@pytest.fixture
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of 0 s: the deferred message is visible again at once (time cannot pass in moto)."""
    monkeypatch.setattr(submission, "backoff_seconds", lambda attempt: 0)


@pytest.fixture
def instant_capacity_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capacity wait of 0 s: the job's new message is visible at once (time cannot pass in moto)."""
    monkeypatch.setattr(submission, "capacity_delay_seconds", lambda base: 0)


def test_a_retryable_answer_defers_the_message_by_the_backoff(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/busy.jpg", TARGET)
    harness.upstream.responses.append((502, None))
    (message,) = _receive_all(harness)
    sqs = harness.stack.client("sqs")
    # the message would be visible again right away, were its visibility not set by the handler
    sqs.change_message_visibility(
        QueueUrl=harness.stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    result = _invoke(harness, [message])
    assert result["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    assert _receive_all(harness) == []


def test_the_same_event_delivered_twice_submits_once(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/dup.jpg", TARGET)
    (message,) = _receive_all(harness)
    twice = [message, {**message, "MessageId": "copy-of-" + message["MessageId"]}]
    result = _invoke(harness, twice)
    assert result == {"batchItemFailures": []}
    assert _invoke(harness, [message]) == {"batchItemFailures": []}  # and a third, later
    assert len(harness.upstream.swaps) == 1
    job = harness.job_for("inbox/alice/dup.jpg")
    assert job.status is JobStatus.SUBMITTED and job.attempts == 1


def test_a_reupload_of_the_same_key_is_a_new_job(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    second = png((1, 2, 3))
    harness.put("inbox/alice/again.jpg", TARGET)
    harness.put("inbox/alice/again.jpg", second)
    harness.drain_submits()
    jobs = [j for j in harness.all_jobs() if j.targetKey == "inbox/alice/again.jpg"]
    assert len(jobs) == 2
    assert {j.status for j in jobs} == {JobStatus.SUBMITTED}
    # moto's events carry no versionId (S3's do), so which version each job read is a unit test
    assert len(harness.upstream.swaps) == 2


@pytest.mark.parametrize(
    ("answer", "reason_part"),
    [
        ((200, {"code": 23, "description": "队列已满，请稍后尝试"}), "default: code 23 QUEUE_REJECTED"),
        ((200, {"code": 9, "description": "系统繁忙"}), "default: code 9"),
    ],
)
@pytest.mark.usefixtures("instant_capacity_retry")
def test_queue_full_is_a_capacity_wait_sent_again_without_spending_an_attempt(
    harness: Harness, answer: tuple, reason_part: str
) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/busy.jpg", TARGET)
    harness.upstream.responses.append(answer)
    (message,) = _receive_all(harness)
    assert _invoke(harness, [message]) == {"batchItemFailures": []}  # consumed: its receive count ends here
    job = harness.job_for("inbox/alice/busy.jpg")
    assert job.status is JobStatus.PENDING and job.attempts == 0 and job.leaseUntil is None
    assert (job.lastError or "").startswith("every upstream member is full (") and reason_part in job.lastError
    (again,) = _receive_all(harness)
    assert json.loads(again["Body"]) == {"jobId": job.jobId}
    assert _invoke(harness, [again]) == {"batchItemFailures": []}  # this container saw the pool full: no call
    assert len(harness.upstream.swaps) == 1
    wiring.reset()  # a container that has not seen it full (here: the cooldown's end)
    harness.drain_submits()
    job = harness.job(job.jobId)
    assert job.status is JobStatus.SUBMITTED and job.attempts == 1 and job.upstreamMember == "default"
    assert len(harness.upstream.swaps) == 2


@pytest.mark.parametrize(
    ("answer", "reason_part"),
    [
        ((429, {"message": "rate limited"}), "HTTP 429"),
        ((502, None), "HTTP 502"),
    ],
)
@pytest.mark.usefixtures("instant_backoff")
def test_retryable_answers_are_retried_until_accepted(harness: Harness, answer: tuple, reason_part: str) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/busy.jpg", TARGET)
    harness.upstream.responses.append(answer)
    (message,) = _receive_all(harness)
    result = _invoke(harness, [message])
    assert result["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    job = harness.job_for("inbox/alice/busy.jpg")
    assert job.status is JobStatus.PENDING and job.attempts == 1 and job.leaseUntil is None
    assert reason_part in (job.lastError or "")
    harness.drain_submits()
    job = harness.job(job.jobId)
    assert job.status is JobStatus.SUBMITTED and job.attempts == 2
    assert len(harness.upstream.swaps) == 2


@pytest.mark.usefixtures("instant_backoff")
def test_retryable_answers_fail_the_job_after_the_last_attempt(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three: a fourth failure in a row would find the only member benched (a capacity wait, no attempt).
    attempts = 3
    monkeypatch.setenv("MAX_SUBMIT_ATTEMPTS", str(attempts))
    wiring.reset()
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/never.jpg", TARGET)
    harness.upstream.responses.extend([(503, {"description": "队列已满"})] * attempts)
    harness.drain_submits()
    job = harness.job_for("inbox/alice/never.jpg")
    assert job.status is JobStatus.FAILURE
    assert job.failReason.startswith(f"gave up after {attempts} submit attempts")
    assert "队列已满" in job.failReason
    assert len(harness.upstream.swaps) == attempts
    assert _receive_all(harness) == [], "the message must be consumed once the job has failed"
    assert [e["detail"]["status"] for e in harness.published_events()] == ["FAILURE"]


@pytest.mark.parametrize(
    ("answer", "reason_part"),
    [
        ((200, {"code": 24, "description": "可能包含敏感词", "result": None}), "可能包含敏感词"),
        ((200, {"code": 4, "description": "sourceBase64 is invalid"}), "code 4 VALIDATION_ERROR"),
        ((401, None), "HTTP 401"),
        ((403, {"description": "forbidden for this key"}), "forbidden for this key"),
        ((404, None), "HTTP 404"),
        ((400, {"description": "bad request", "type": "upstream_error", "code": 4}), "bad request"),
    ],
)
def test_final_answers_fail_at_once(harness: Harness, answer: tuple, reason_part: str) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/refused.jpg", TARGET)
    harness.upstream.responses.append(answer)
    harness.drain_submits()
    job = harness.job_for("inbox/alice/refused.jpg")
    assert job.status is JobStatus.FAILURE and job.attempts == 1
    assert reason_part in job.failReason
    assert not job.needs_attention
    assert _receive_all(harness) == []


def test_queued_answer_keeps_the_queue_position(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/queued.jpg", TARGET)
    harness.upstream.responses.append(
        (
            200,
            {
                "code": 22,
                "description": "排队中，前面还有2个任务",
                "result": "1729072764329123",
                "properties": {"numberOfQueues": 2},
            },
        )
    )
    harness.drain_submits()
    job = harness.job_for("inbox/alice/queued.jpg")
    assert (job.status, job.taskId, job.queuePosition) == (JobStatus.SUBMITTED, "1729072764329123", 2)


def _gif() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("setup", "target_key", "target", "reason_part"),
    [
        ({}, "inbox/nobody/x.jpg", TARGET, "no face named 'nobody'"),
        (
            {"faces/alice.jpg": FACE, "faces/alice.png": png((0, 0, 9))},
            "inbox/alice/x.jpg",
            TARGET,
            "face 'alice' is ambiguous: faces/alice.jpg, faces/alice.png",
        ),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.gif", _gif(), "targets must end in"),
        ({"faces/alice.jpg": FACE}, "inbox/loose.jpg", TARGET, "is not in a face folder"),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.jpg", _gif(), "is a GIF, not a JPEG, PNG or WebP image"),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.jpg", b"", "is empty (0 bytes)"),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.jpg", TARGET[:40], "header is damaged or truncated"),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.jpg", FACE, "same image as the face 'faces/alice.jpg'"),
        ({"faces/alice.jpg": FACE}, "inbox/alice/x.jpg", b"\xff\xd8\xff" + bytes(250_000), "over the limit of"),
        (
            {"faces/alice.jpg": b"not an image"},
            "inbox/alice/x.jpg",
            TARGET,
            "the face image 'faces/alice.jpg' is not an image file",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_reason_and_never_sent(
    harness: Harness, setup: dict, target_key: str, target: bytes, reason_part: str
) -> None:
    for key, data in setup.items():
        harness.put(key, data)
    harness.put(target_key, target)
    harness.drain_submits()
    job = harness.job_for(target_key)
    assert job.status is JobStatus.REJECTED
    assert reason_part in job.failReason
    assert harness.upstream.swaps == []
    assert not job.needs_attention
    events = harness.published_events()
    assert [(e["detail-type"], e["detail"]["status"], e["detail"]["failReason"]) for e in events] == [
        ("Swap Job Finished", "REJECTED", job.failReason)
    ]


def test_faces_and_results_uploads_trigger_nothing(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("results/alice/manual.png", png((5, 5, 5)))
    harness.put("elsewhere/x.jpg", TARGET)
    assert _receive_all(harness) == []
    assert harness.all_jobs() == []


def test_a_plain_s3_event_is_accepted_too(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    key = "inbox/alice/summer trip/café + friends.jpg"
    version = harness.put(key, TARGET)["VersionId"]
    _receive_all(harness)  # what SQS would have carried is dropped: this test invokes directly
    with open("events/s3-put.json", encoding="utf-8") as handle:
        event = json.load(handle)
    event["Records"][0]["s3"]["bucket"]["name"] = harness.stack.bucket
    event["Records"][0]["s3"]["object"]["versionId"] = version
    result = submit_handler.lambda_handler(event, LocalLambdaContext("SubmitFunction"))
    assert result == {"batchItemFailures": []}
    job = harness.job_for(key)
    assert job.status is JobStatus.SUBMITTED
    assert harness.upstream.swaps[0].target == TARGET


def test_a_redelivery_after_a_worker_died_between_send_and_record_submits_nothing_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/crash.jpg", TARGET)
    lost = harness.submit_then_die("inbox/alice/crash.jpg", monkeypatch)
    assert lost.status is JobStatus.PENDING and lost.taskId is None and lost.attempts == 1
    (task_id,) = harness.upstream.tasks
    # SQS redelivers once the visibility timeout (and with it the job's lease) has run out.
    harness.table().update_item(
        Key={"jobId": lost.jobId}, UpdateExpression="SET leaseUntil = :l", ExpressionAttributeValues={":l": 1}
    )
    etag = harness.s3.head_object(Bucket=lost.bucket, Key=lost.targetKey)["ETag"].strip('"')
    event_time = parse_iso(lost.targetEventTime or "").isoformat()  # as the S3 event said it
    redelivered = submission.Upload(
        lost.bucket, lost.targetKey, lost.targetSequencer, lost.targetVersionId, f"{etag}@{event_time}"
    )
    assert redelivered.job_id == lost.jobId
    result = wiring.submitter().submit(redelivered, 900)
    assert (result.outcome, result.detail) == (submission.Outcome.SUBMITTED, task_id)
    assert list(harness.upstream.tasks) == [task_id], "adopted from GET /mj/task/list, not sent again"
    job = harness.job(lost.jobId)
    assert (job.status, job.taskId, job.attempts, job.leaseUntil) == (JobStatus.SUBMITTED, task_id, 2, None)


@pytest.mark.usefixtures("instant_capacity_retry")
def test_a_long_capacity_wait_never_reaches_the_dead_letter_queue(harness: Harness) -> None:
    harness.put("faces/alice.jpg", FACE)
    harness.put("inbox/alice/waits.jpg", TARGET)
    harness.upstream.responses.append((200, {"code": 23, "description": "队列已满"}))
    receives = int(harness.stack.parameters.get("QueueMaxReceiveCount", 10))
    messages = _receive_all(harness)
    for _ in range(receives + 2):  # more waits than a message may be received
        (message,) = messages
        assert _invoke(harness, [message]) == {"batchItemFailures": []}
        messages = _receive_all(harness)
    sqs = harness.stack.client("sqs")
    assert sqs.receive_message(QueueUrl=harness.stack.dlq_url).get("Messages") is None
    job = harness.job_for("inbox/alice/waits.jpg")
    assert job.status is JobStatus.PENDING and job.attempts == 0
    assert len(harness.upstream.swaps) == 1  # the container that saw the member full asked it once
