"""snapshots: the callback door (CallbackReceiver) and what applying a snapshot sets off
(result copy and the job's event, through the finisher)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.jobs import Job, JobStatus
from swapdrop.result_download import DownloadedImage, DownloadRefused
from swapdrop.snapshots import MAX_CALLBACK_BYTES

from .builders import CALLBACK_SECRET, TASK_ID, make_job, snapshot_body
from .conftest import World

JOB_ID = "5d41402abc4b2a76b9719d911017c592"
TARGET = "inbox/alice/summer trip/café + friends.jpg"
RESULT = "results/alice/summer trip/café + friends.png"
IMAGE_URL = "https://cdn.example.com/attachments/1729072764329123/swap.png"
TOKEN = token_for(CALLBACK_SECRET, JOB_ID)
EVENTS = Path(__file__).resolve().parents[2] / "events"


def as_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


@pytest.fixture
def live(world: World, images: SimpleNamespace) -> World:
    """A job the upstream accepted: SUBMITTED with its task id; the result URL serves a PNG."""
    world.jobs.put(
        make_job(
            jobId=JOB_ID,
            status=JobStatus.SUBMITTED,
            taskId=TASK_ID,
            targetKey=TARGET,
            sourceKey="faces/alice.jpg",
            attempts=1,
        )
    )
    world.downloader.results[IMAGE_URL] = DownloadedImage(images.png, "png", "image/png")
    return world


def stored(world: World) -> Job:
    job = world.jobs.get(JOB_ID)
    assert job is not None
    return job


def success_body(**fields: Any) -> bytes:
    return as_bytes(snapshot_body("SUCCESS", JOB_ID, "100%", imageUrl=IMAGE_URL, **fields))


# --- who may call ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong", TOKEN[:-1], token_for(CALLBACK_SECRET, "another-job"), token_for("old-secret", JOB_ID)],
)
def test_a_missing_or_wrong_token_is_forbidden_and_changes_nothing(live: World, token: str | None) -> None:
    writes = len(live.jobs.writes)
    reply = live.receiver().receive(JOB_ID, token, success_body())
    assert reply.status_code == 403
    assert reply.body == {"message": "invalid or missing token"}
    assert len(live.jobs.writes) == writes
    assert live.downloader.calls == []
    assert live.events.published == []


def test_an_unknown_job_with_a_valid_token_gets_the_same_answer(live: World) -> None:
    bad_token = live.receiver().receive(JOB_ID, "wrong", success_body())
    unknown = live.receiver().receive("no-such-job", token_for(CALLBACK_SECRET, "no-such-job"), success_body())
    assert bad_token.status_code == unknown.status_code == 403
    assert unknown.body == bad_token.body
    assert live.jobs.get("no-such-job") is None


def test_an_oversized_body_is_refused_before_anything_else(live: World) -> None:
    huge = b" " * (MAX_CALLBACK_BYTES + 1)
    reply = live.receiver().receive(JOB_ID, None, huge)
    assert reply.status_code == 413
    assert str(MAX_CALLBACK_BYTES) in reply.body["message"]
    assert live.secret_reads == 0  # not even the token was looked at


def test_a_body_of_exactly_the_limit_is_accepted(live: World) -> None:
    body = as_bytes(snapshot_body("IN_PROGRESS", JOB_ID, "20%"))
    padded = body[:-1] + b" " * (MAX_CALLBACK_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_CALLBACK_BYTES
    assert live.receiver().receive(JOB_ID, TOKEN, padded).status_code == 200


# --- what may be said ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json at all", "body is not valid JSON (Expecting value at line 1 column 1)"),
        (b"\xff\xfe\x00garbage", "body is not valid JSON (not UTF-8 text at byte 0)"),
        (b"", "body is not valid JSON (Expecting value at line 1 column 1)"),
        (b'{"id": "1", "status": "SUCCESS"', "body is not valid JSON (Expecting ',' delimiter at line 1 column 32)"),
        (b"[" * 10_000 + b"]" * 10_000, "body nests deeper than 64 levels, far more than a task snapshot needs"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "body nests deeper than 64 levels"),
        (b"[" * 10_000, "body nests deeper than 64 levels"),
        (as_bytes({"id": TASK_ID, "progress": "10%"}), "not a task snapshot: status: Field required"),
        (as_bytes({"id": TASK_ID, "status": "EXPLODED"}), "not a task snapshot: status: Input should be"),
        (as_bytes({"status": "SUCCESS"}), "not a task snapshot: id: Field required"),
        (as_bytes({"id": 1.5, "status": "SUCCESS"}), "not a task snapshot: id: Value error, id must be text"),
        (b'{"id": Infinity, "status": "SUCCESS"}', "not a task snapshot: id: Value error, id must be text"),
        (as_bytes(["a", "list"]), "a task snapshot is a JSON object, not a list"),
        (b"1e400", "a task snapshot is a JSON object, not a number"),
        (b"NaN", "a task snapshot is a JSON object, not a number"),
        (b"null", "a task snapshot is a JSON object, not null"),
    ],
)
def test_a_malformed_body_is_a_400_with_a_specific_message_and_no_write(live: World, raw: bytes, message: str) -> None:
    writes = len(live.jobs.writes)
    reply = live.receiver().receive(JOB_ID, TOKEN, raw)
    assert reply.status_code == 400
    assert reply.body["message"].startswith(message), reply.body["message"]
    assert reply.body["errors"]
    assert len(live.jobs.writes) == writes
    assert stored(live).status is JobStatus.SUBMITTED
    assert live.downloader.calls == []


@pytest.mark.parametrize("progress", [b"1e400", b"Infinity", b"-Infinity", b"NaN", b"-1e400", b'"abc"', b"true"])
def test_an_unreadable_progress_is_ignored_and_the_snapshot_still_applies(live: World, progress: bytes) -> None:
    """The reported failure: OverflowError out of task_snapshot._progress for 1e400 and Infinity."""
    raw = b'{"id": "%s", "status": "IN_PROGRESS", "state": "%s", "progress": %s}' % (
        TASK_ID.encode(),
        JOB_ID.encode(),
        progress,
    )
    reply = live.receiver().receive(JOB_ID, TOKEN, raw)
    assert reply.status_code == 200
    assert reply.body == {"jobId": JOB_ID, "status": "IN_PROGRESS", "progress": 0, "changed": True}


@pytest.mark.parametrize(("progress", "expected"), [("150%", 100), (-7, 0), (10**500, 100)])
def test_an_out_of_range_progress_is_clamped(live: World, progress: object, expected: int) -> None:
    reply = live.receiver().receive(JOB_ID, TOKEN, as_bytes(snapshot_body("IN_PROGRESS", JOB_ID, progress)))
    assert reply.status_code == 200 and reply.body["progress"] == expected


def test_an_infinite_progress_on_success_still_copies_the_result(live: World) -> None:
    raw = success_body()[:-1] + b', "progress": 1e400}'
    reply = live.receiver().receive(JOB_ID, TOKEN, raw)
    assert reply.status_code == 200 and reply.body["status"] == "SUCCESS" and reply.body["progress"] == 100
    assert stored(live).resultKey == RESULT


def test_a_megabyte_fail_reason_is_truncated_not_refused_once_under_the_body_limit(live: World) -> None:
    reason = "x" * (MAX_CALLBACK_BYTES - 1000)
    reply = live.receiver().receive(JOB_ID, TOKEN, as_bytes(snapshot_body("FAILURE", JOB_ID, "", failReason=reason)))
    assert reply.status_code == 200 and reply.body["status"] == "FAILURE"
    job = stored(live)
    assert job.failReason is not None and len(job.failReason) < 4200


def test_a_snapshot_of_another_task_is_a_409(live: World) -> None:
    reply = live.receiver().receive(JOB_ID, TOKEN, success_body(id="9999999999999999"))
    assert reply.status_code == 409
    assert "9999999999999999" in reply.body["message"] and TASK_ID in reply.body["message"]
    assert stored(live).status is JobStatus.SUBMITTED
    assert live.downloader.calls == []


def test_a_snapshot_naming_another_job_in_state_is_a_409(live: World) -> None:
    reply = live.receiver().receive(JOB_ID, TOKEN, success_body(state="someone-else"))
    assert reply.status_code == 409
    assert stored(live).status is JobStatus.SUBMITTED


def test_progress_callback_is_applied(live: World) -> None:
    reply = live.receiver().receive(JOB_ID, TOKEN, as_bytes(snapshot_body("IN_PROGRESS", JOB_ID, "45%")))
    assert reply.status_code == 200
    assert reply.body == {"jobId": JOB_ID, "status": "IN_PROGRESS", "progress": 45, "changed": True}
    assert stored(live).progress == 45
    again = live.receiver().receive(JOB_ID, TOKEN, as_bytes(snapshot_body("IN_PROGRESS", JOB_ID, "45%")))
    assert again.status_code == 200 and again.body["changed"] is False


# --- success: copy the result, announce the end ---------------------------------------------------


def test_success_copies_the_result_and_publishes_one_event(live: World, images: SimpleNamespace) -> None:
    reply = live.receiver().receive(JOB_ID, TOKEN, success_body())
    assert reply.status_code == 200
    assert reply.body["status"] == "SUCCESS" and reply.body["progress"] == 100
    (written,) = live.media.writes
    assert written.key == RESULT
    assert written.data == images.png
    assert written.content_type == "image/png"
    assert written.metadata == {"job-id": JOB_ID, "task-id": TASK_ID}
    job = stored(live)
    assert job.status is JobStatus.SUCCESS
    assert job.resultKey == RESULT
    assert job.imageUrl == IMAGE_URL
    assert job.eventPending is False
    assert "openShard" not in live.jobs.item(JOB_ID)
    (event,) = live.events.published
    assert event.jobId == JOB_ID and event.status is JobStatus.SUCCESS and event.resultKey == RESULT


def test_a_repeated_success_callback_copies_and_publishes_nothing_more(live: World) -> None:
    receiver = live.receiver()
    receiver.receive(JOB_ID, TOKEN, success_body())
    again = receiver.receive(JOB_ID, TOKEN, success_body())
    assert again.status_code == 200
    assert again.body["changed"] is False
    assert len(live.events.published) == 1
    assert len(live.media.writes) == 1
    assert live.downloader.calls == [IMAGE_URL]


def test_a_late_failure_callback_after_success_changes_nothing(live: World) -> None:
    receiver = live.receiver()
    receiver.receive(JOB_ID, TOKEN, success_body())
    late = receiver.receive(
        JOB_ID, TOKEN, as_bytes(snapshot_body("FAILURE", JOB_ID, "", failReason="执行超时 10 分钟"))
    )
    assert late.status_code == 200 and late.body["status"] == "SUCCESS" and late.body["changed"] is False
    assert stored(live).failReason is None
    assert len(live.events.published) == 1


def test_a_failed_copy_keeps_success_open_and_holds_the_event(live: World) -> None:
    live.downloader.results[IMAGE_URL] = DownloadRefused("the result URL answered HTTP 403")
    reply = live.receiver().receive(JOB_ID, TOKEN, success_body())
    assert reply.status_code == 200 and reply.body["status"] == "SUCCESS"
    job = stored(live)
    assert job.status is JobStatus.SUCCESS
    assert job.imageUrl == IMAGE_URL
    assert job.resultKey is None
    assert job.needs_result_copy
    assert job.resultCopyAttempts == 1
    assert job.lastError == "result copy failed: the result URL answered HTTP 403"
    assert "openShard" in live.jobs.item(JOB_ID)
    assert live.events.published == []
    assert live.media.writes == []


def test_the_copy_is_given_up_after_the_last_attempt_and_the_event_says_why(live: World) -> None:
    live.downloader.results[IMAGE_URL] = DownloadRefused("the result URL answered HTTP 403")
    live.receiver().receive(JOB_ID, TOKEN, success_body())
    finisher = live.finisher
    for _ in range(sm.MAX_RESULT_COPY_ATTEMPTS - 2):
        finisher.finish(stored(live))
        assert live.events.published == []
    finisher.finish(stored(live))
    assert len(live.downloader.calls) == sm.MAX_RESULT_COPY_ATTEMPTS
    (event,) = live.events.published
    assert event.resultCopyError == (
        f"result image not copied after {sm.MAX_RESULT_COPY_ATTEMPTS} attempts: the result URL answered HTTP 403"
    )
    job = stored(live)
    assert job.status is JobStatus.SUCCESS and job.resultKey is None
    assert "openShard" not in live.jobs.item(JOB_ID)
    finisher.finish(job)  # nothing left to do
    assert len(live.downloader.calls) == sm.MAX_RESULT_COPY_ATTEMPTS
    assert len(live.events.published) == 1


def test_a_copy_that_works_on_retry_completes_the_job(live: World, images: SimpleNamespace) -> None:
    live.downloader.results[IMAGE_URL] = DownloadRefused("could not fetch the result image (ReadTimeout)")
    live.receiver().receive(JOB_ID, TOKEN, success_body())
    live.downloader.results[IMAGE_URL] = DownloadedImage(images.png, "png", "image/png")
    live.finisher.finish(stored(live))
    job = stored(live)
    assert job.resultKey == RESULT and job.resultCopyAttempts == 2
    assert len(live.events.published) == 1


def test_an_s3_write_error_is_a_failed_copy(live: World) -> None:
    live.media.fail_writes_with = ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")
    live.receiver().receive(JOB_ID, TOKEN, success_body())
    job = stored(live)
    assert job.lastError == "result copy failed: could not write the result to S3 (SlowDown)"
    assert job.needs_result_copy
    assert live.events.published == []


def test_an_event_that_cannot_be_published_stays_in_the_outbox(live: World) -> None:
    live.events.fail_with = RuntimeError("EventBridge down")
    reply = live.receiver().receive(JOB_ID, TOKEN, success_body())
    assert reply.status_code == 200
    job = stored(live)
    assert job.resultKey == RESULT and job.eventPending is True
    assert "openShard" in live.jobs.item(JOB_ID)
    live.events.fail_with = None
    live.finisher.finish(job)
    assert len(live.events.published) == 1
    assert stored(live).eventPending is False


def test_failure_callback_keeps_the_reason_and_publishes(live: World) -> None:
    body = as_bytes(snapshot_body("FAILURE", JOB_ID, "", failReason="执行超时 10 分钟"))
    reply = live.receiver().receive(JOB_ID, TOKEN, body)
    assert reply.status_code == 200 and reply.body["status"] == "FAILURE"
    job = stored(live)
    assert job.failReason is not None and "执行超时 10 分钟" in job.failReason
    assert live.downloader.calls == []
    assert [e.failReason for e in live.events.published] == [job.failReason]


def test_a_callback_that_beats_the_submitters_record_adopts_the_task(world: World) -> None:
    world.jobs.put(make_job(jobId=JOB_ID, targetKey=TARGET, attempts=1, leaseUntil=world.clock.epoch + 300))
    reply = world.receiver().receive(JOB_ID, TOKEN, as_bytes(snapshot_body("SUBMITTED", JOB_ID, "0%")))
    assert reply.status_code == 200 and reply.body["status"] == "SUBMITTED"
    job = stored(world)
    assert job.taskId == TASK_ID and job.leaseUntil is None


def test_the_recorded_callbacks_in_events_drive_a_job_to_its_result(live: World) -> None:
    receiver = live.receiver()
    seen = []
    for name in ("callback-submitted", "callback-in-progress", "callback-success"):
        event = json.loads((EVENTS / f"{name}.json").read_text())
        reply = receiver.receive(event["pathParameters"]["jobId"], TOKEN, event["body"].encode())
        seen.append((reply.status_code, reply.body["status"], reply.body["progress"]))
    assert seen == [(200, "SUBMITTED", 0), (200, "IN_PROGRESS", 45), (200, "SUCCESS", 100)]
    assert stored(live).resultKey == RESULT
    assert len(live.events.published) == 1
