"""The result copy and the job event are recorded in one write (finishing.JobFinisher).

The event goes out after the result is in S3 and before the one write that records both; a failed
event is recorded with the copy and given back; a crash before the write redoes both (the event at
least once, as before); a job whose copy someone else recorded meanwhile keeps their event claim.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fakes import FakeJobStore
from swapdrop.callback_token import token_for
from swapdrop.jobs import COPY, EVENT, DeliveryState, JobStatus
from swapdrop.result_download import DownloadedImage
from swapdrop.submission import Outcome
from swapdrop.upstream import Accepted

from .builders import CALLBACK_SECRET, TASK_ID, snapshot_body, upload
from .conftest import World

TARGET_KEY = "inbox/alice/trip/beach.png"
IMAGE_URL = "https://cdn.example.com/attachments/1/swap.png"


@pytest.fixture
def submitted(world: World, images: SimpleNamespace) -> str:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(TARGET_KEY, images.png)
    world.downloader.results[IMAGE_URL] = DownloadedImage(images.png, "png", "image/png")
    world.gateway.script(Accepted(TASK_ID, 0, 1, "ok"))
    result = world.submitter().submit(upload(TARGET_KEY), 900)
    assert result.outcome is Outcome.SUBMITTED
    return result.job_id


def succeed(world: World, job_id: str) -> None:
    body = json.dumps(snapshot_body("SUCCESS", job_id, "100%", imageUrl=IMAGE_URL)).encode()
    reply = world.receiver().receive(job_id, token_for(CALLBACK_SECRET, job_id), body)
    assert reply.status_code == 200, reply.body


def writes(store: FakeJobStore) -> int:
    return len(store.writes)


def test_the_copy_and_the_event_are_recorded_in_one_write(world: World, submitted: str) -> None:
    before = writes(world.jobs)

    succeed(world, submitted)

    assert writes(world.jobs) - before == 2, "SUCCESS (copy claimed), then copy and event together"
    job = world.jobs.get(submitted)
    assert job is not None and job.status is JobStatus.SUCCESS and not job.needs_attention
    assert job.deliveries[COPY].state is DeliveryState.DONE and job.deliveries[EVENT].state is DeliveryState.DONE
    (announced,) = world.events.published
    assert announced.resultKey == job.resultKey is not None, "the event names the result already in S3"
    assert len(world.media.writes) == 1


def test_a_failed_event_is_recorded_with_the_copy_and_given_back_for_the_reconciler(
    world: World, submitted: str
) -> None:
    world.events.fail_with = RuntimeError("EventBridge is down")
    before = writes(world.jobs)

    succeed(world, submitted)

    assert writes(world.jobs) - before == 2
    assert world.events.attempts == 1, "given back, not retried at once"
    job = world.jobs.get(submitted)
    assert job is not None and job.deliveries[COPY].state is DeliveryState.DONE
    event = job.deliveries[EVENT]
    assert event.state is DeliveryState.PENDING and event.claimUntil is None
    assert "RuntimeError" in (event.lastError or "")
    assert job.needs_attention

    world.events.fail_with = None
    world.finisher.finish(job)  # the reconciler's turn

    settled = world.jobs.get(submitted)
    assert settled is not None and settled.deliveries[EVENT].state is DeliveryState.DONE
    assert len(world.events.published) == 1 and len(world.media.writes) == 1, "the copy is not redone"


def test_a_crash_before_the_one_write_redoes_the_copy_and_the_event(world: World, submitted: str) -> None:
    def crash(_store: FakeJobStore) -> None:
        raise ConnectionError("the container died")

    world.jobs.before_next_replace(lambda _store: None)  # the SUCCESS write goes through
    world.jobs.before_next_replace(crash)  # the copy and event record does not
    with pytest.raises(ConnectionError):
        succeed(world, submitted)
    job = world.jobs.get(submitted)
    assert job is not None and job.deliveries[COPY].state is DeliveryState.PENDING
    assert len(world.events.published) == 1 and len(world.media.writes) == 1

    world.clock.advance(minutes=2)  # the copy's claim runs out
    world.finisher.finish(job)

    settled = world.jobs.get(submitted)
    assert settled is not None and not settled.needs_attention
    assert settled.deliveries[COPY].state is DeliveryState.DONE
    assert settled.deliveries[EVENT].state is DeliveryState.DONE
    assert len(world.events.published) == 2, "at least once: the event went out again"
    assert len(world.media.writes) == 2


def test_a_copy_recorded_by_another_finisher_meanwhile_leaves_them_the_event(world: World, submitted: str) -> None:
    from swapdrop import state_machine as sm

    other_holds_event = {}

    def another_finisher_records_the_copy(store: FakeJobStore) -> None:
        def record(job):  # type: ignore[no-untyped-def]
            decision = sm.record_result_copied(job, world.clock(), "results/alice/trip/beach.png")
            other_holds_event["claimed"] = decision.claimed
            return decision.job

        store.concurrent_write(submitted, record)

    world.jobs.before_next_replace(lambda _store: None)  # the SUCCESS write
    world.jobs.before_next_replace(another_finisher_records_the_copy)

    succeed(world, submitted)

    assert other_holds_event["claimed"] == EVENT
    job = world.jobs.get(submitted)
    assert job is not None and job.deliveries[COPY].state is DeliveryState.DONE
    event = job.deliveries[EVENT]
    assert event.state is DeliveryState.PENDING and event.claimUntil is not None, "still theirs to record"
