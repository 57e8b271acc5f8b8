"""Idempotency-Key on every POST: Powertools' DynamoDB persistence layer on moto in-process (no sockets)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend
from swapdrop.jobs import JobStatus

from .api_events import IDEMPOTENCY_TABLE, Api, call, jwt
from .builders import TASK_ID, make_job
from .test_jobs_api import UPLOAD

BODY = {"face": "alice", "target": UPLOAD}


def post(body=BODY, key="key-1", **kwargs):
    return call("POST", "/jobs", body=body, headers={"Idempotency-Key": key} if key else {}, **kwargs)


def test_same_key_same_body_replays_the_first_answer_and_creates_nothing(api: Api) -> None:
    first = post()
    api.world.clock.advance(minutes=5)
    second = post()
    assert first.status == second.status == 202
    assert first.body == second.body
    assert len(api.world.jobs.items) == 1


def test_same_key_different_body_is_422(api: Api) -> None:
    post()
    reply = post({"face": "bob", "target": UPLOAD})
    assert (reply.status, reply.error["code"]) == (422, "idempotency_key_reused")
    assert len(api.world.jobs.items) == 1


def test_keys_are_per_caller_and_per_route(api: Api) -> None:
    post()
    post(authorizer=jwt("user-1"))  # another caller, same key: its own job
    assert len(api.world.jobs.items) == 2
    api.world.jobs.put(make_job(jobId="j1", status=JobStatus.SUBMITTED, taskId=TASK_ID))
    cancel = call("POST", "/jobs/j1/cancel", headers={"Idempotency-Key": "key-1"})
    assert cancel.status == 200  # same key on another route is another request
    again = call("POST", "/jobs/j1/cancel", headers={"Idempotency-Key": "key-1"})
    assert (again.status, again.body) == (200, cancel.body)  # replayed, not a 409 job_finished
    assert api.cancelled == [TASK_ID]


def test_without_a_key_every_post_creates(api: Api) -> None:
    post(key=None)
    post(key=None)
    assert len(api.world.jobs.items) == 2


def test_refusals_are_not_stored(api: Api) -> None:
    bad = post({"face": "alice", "target": {"s3Key": "inbox/x/missing.jpg"}})
    assert bad.status == 400
    api.world.media.put("inbox/x/missing.jpg", b"\xff\xd8\xff" + b"0" * 20)
    good = post({"face": "alice", "target": {"s3Key": "inbox/x/missing.jpg"}})
    assert good.status == 202


@pytest.mark.parametrize("key", ["", "a b", "k" * 256, "ключ"])
def test_malformed_keys_are_400(api: Api, key: str) -> None:
    reply = call("POST", "/jobs", body=BODY, headers={"Idempotency-Key": key})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")


def test_records_live_over_24_hours_under_a_hashed_key(api: Api) -> None:
    post()
    (item,) = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert int(item["expiration"]["N"]) - time.time() > 24 * 3600  # Powertools stamps real time
    assert item["status"]["S"] == "COMPLETED"
    assert "key-1" not in item["id"]["S"] and "arn:aws" not in str(item)  # hashed: no key or caller in clear


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB's conditional writes are atomic; moto's are not across threads: make them so."""
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "get_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def test_twenty_concurrent_posts_with_one_key_make_one_job_and_twenty_identical_answers(
    api: Api, atomic_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.posts._sleep = lambda s: threading.Event().wait(0.01)  # real short waits: other threads finish meanwhile
    api.posts._monotonic = time.monotonic
    started = threading.Barrier(20)
    slow_create = api.service.create

    def create_slowly(*args, **kwargs):
        threading.Event().wait(0.2)  # the first one is still running while the others arrive
        return slow_create(*args, **kwargs)

    monkeypatch.setattr(api.service, "create", create_slowly)

    def one(_: int):
        started.wait()
        return post()

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(one, range(20)))
    assert {r.status for r in replies} == {202}
    assert all(r.body == replies[0].body for r in replies)
    assert len(api.world.jobs.items) == 1


def test_a_duplicate_still_in_progress_after_the_wait_is_409_and_the_first_answer_stands(
    api: Api, atomic_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate waits (up to WAIT_SECONDS) for the first; a first that runs longer leaves it 409
    idempotency_in_progress, not a second job, and the key then replays the first answer."""
    api.posts._wait = 0.3
    api.posts._sleep = lambda s: threading.Event().wait(0.01)
    api.posts._monotonic = time.monotonic
    release, entered = threading.Event(), threading.Event()
    real_create = api.service.create

    def create_slowly(*args, **kwargs):
        entered.set()
        release.wait(10)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(api.service, "create", create_slowly)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post)
        assert entered.wait(10)
        duplicate = post()
        release.set()
        original = first.result(timeout=10)
    assert (duplicate.status, duplicate.error["code"]) == (409, "idempotency_in_progress")
    assert original.status == 202 and len(api.world.jobs.items) == 1
    again = post()
    assert (again.status, again.body) == (202, original.body)
