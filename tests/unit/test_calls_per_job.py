"""DynamoDB requests per use case, counted on the fakes: the floor each path is held to.

A job in hand is written with its version (the condition carries the check), never read again;
a callback reads its job once; a callback that changes nothing reads once and writes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import FakeJobStore
from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus
from swapdrop.result_download import DownloadedImage
from swapdrop.submission import Outcome
from swapdrop.upstream import Accepted

from .builders import CALLBACK_SECRET, TASK_ID, make_job, snap, snapshot_body, upload
from .conftest import World

TARGET_KEY = "inbox/alice/trip/beach.png"
IMAGE_URL = "https://cdn.example.com/attachments/1/swap.png"
NOW = datetime(2024, 10, 16, 10, 0, tzinfo=UTC)


class Counted:
    """What a store did between two points: reads, conditional replaces, items written."""

    def __init__(self, store: FakeJobStore) -> None:
        self._store = store
        self._start = (store.get_calls, store.replace_calls, len(store.writes))

    @property
    def calls(self) -> dict[str, int]:
        gets, replaces, writes = self._start
        return {
            "get": self._store.get_calls - gets,
            "replace": self._store.replace_calls - replaces,
            "written": len(self._store.writes) - writes,
        }


def callback(world: World, job_id: str, status: str, progress: str = "", **fields: Any) -> dict[str, Any]:
    body = json.dumps(snapshot_body(status, job_id, progress, **fields)).encode()
    reply = world.receiver().receive(job_id, token_for(CALLBACK_SECRET, job_id), body)
    assert reply.status_code == 200, reply.body
    return reply.body


@pytest.fixture
def seeded(world: World, images: SimpleNamespace) -> World:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(TARGET_KEY, images.png)
    world.downloader.results[IMAGE_URL] = DownloadedImage(images.png, "png", "image/png")
    return world


@pytest.fixture
def submitted(seeded: World) -> str:
    seeded.gateway.script(Accepted(TASK_ID, 0, 1, "ok"))
    result = seeded.submitter().submit(upload(TARGET_KEY), 900)
    assert result.outcome is Outcome.SUBMITTED
    return result.job_id


# --- update_job -------------------------------------------------------------------------------


def test_a_job_in_hand_is_written_with_its_version_and_not_read() -> None:
    store = FakeJobStore()
    held = store.put(make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1, version=3))
    counted = Counted(store)

    decision = update_job(store, held.jobId, lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "40%")), held=held)

    assert counted.calls == {"get": 0, "replace": 1, "written": 1}
    assert decision.job.version == 4
    assert store.get(held.jobId) == decision.job


def test_a_stale_job_in_hand_costs_one_refused_write_then_one_read_and_is_decided_again() -> None:
    store = FakeJobStore()
    held = store.put(make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1, version=3))
    store.concurrent_write(held.jobId, lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "70%")).job)
    counted = Counted(store)
    seen: list[int] = []

    def decide(job: Job) -> sm.Decision:
        seen.append(job.progress)
        return sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "40%"))

    decision = update_job(store, held.jobId, decide, held=held)

    assert seen == [0, 70], "decided on the stale copy, then on the stored job"
    assert counted.calls == {"get": 1, "replace": 1, "written": 0}
    assert decision.changed is False and decision.job.progress == 70, "progress never goes back"


def test_a_job_in_hand_for_another_id_is_a_programming_error() -> None:
    store = FakeJobStore()
    held = store.put(make_job())
    with pytest.raises(ValueError, match="is not"):
        update_job(store, "another-job", lambda j: sm.Decision(job=j, changed=False), held=held)


# --- submit -----------------------------------------------------------------------------------


def test_one_submit_reads_no_job_and_writes_three_times(seeded: World) -> None:
    counted = Counted(seeded.jobs)
    seeded.gateway.script(Accepted(TASK_ID, 0, 1, "ok"))

    result = seeded.submitter().submit(upload(TARGET_KEY), 900)

    assert result.outcome is Outcome.SUBMITTED
    # create already taken for its first attempt (conditional), note face and source, record the task: each
    # needed, none read. (Before: the create and the lease were two writes.)
    assert counted.calls == {"get": 0, "replace": 2, "written": 3}
    job = seeded.jobs.get(result.job_id)
    assert job is not None and job.attempts == 1 and job.leaseUntil is None  # taken once, and let go when sent


def test_a_redelivered_submit_reads_once_and_writes_nothing(seeded: World, submitted: str) -> None:
    counted = Counted(seeded.jobs)

    result = seeded.submitter().submit(upload(TARGET_KEY), 900)

    assert result.outcome is Outcome.DUPLICATE
    assert counted.calls == {"get": 1, "replace": 0, "written": 0}


# --- callbacks --------------------------------------------------------------------------------


def test_a_progress_callback_reads_once_and_writes_once(seeded: World, submitted: str) -> None:
    counted = Counted(seeded.jobs)

    body = callback(seeded, submitted, "IN_PROGRESS", "40%")

    assert body["changed"] is True and body["progress"] == 40
    assert counted.calls == {"get": 1, "replace": 1, "written": 1}


@pytest.mark.parametrize(
    ("status", "progress"),
    [("IN_PROGRESS", "40%"), ("IN_PROGRESS", "30%"), ("SUBMITTED", "0%"), ("NOT_START", "")],
    ids=["duplicate", "progress-lower", "status-behind", "not-started"],
)
def test_a_callback_that_changes_nothing_reads_once_and_writes_nothing(
    seeded: World, submitted: str, status: str, progress: str
) -> None:
    callback(seeded, submitted, "IN_PROGRESS", "40%")
    counted = Counted(seeded.jobs)

    body = callback(seeded, submitted, status, progress)

    assert body["changed"] is False
    assert counted.calls == {"get": 1, "replace": 0, "written": 0}


def test_a_duplicate_success_callback_reads_once_and_writes_nothing(seeded: World, submitted: str) -> None:
    callback(seeded, submitted, "SUCCESS", "100%", imageUrl=IMAGE_URL)
    counted = Counted(seeded.jobs)

    body = callback(seeded, submitted, "SUCCESS", "100%", imageUrl=IMAGE_URL)

    assert body["changed"] is False
    assert counted.calls == {"get": 1, "replace": 0, "written": 0}


def test_the_success_callback_reads_once_and_writes_the_end_the_copy_and_the_event(
    seeded: World, submitted: str
) -> None:
    counted = Counted(seeded.jobs)

    callback(seeded, submitted, "SUCCESS", "100%", imageUrl=IMAGE_URL)

    # SUCCESS with the copy claimed, then the result and the event recorded in one write.
    assert counted.calls == {"get": 1, "replace": 2, "written": 2}
    job = seeded.jobs.get(submitted)
    assert job is not None and job.status is JobStatus.SUCCESS and job.resultKey and not job.needs_attention
    assert len(seeded.events.published) == 1


def test_one_job_end_to_end_reads_once_per_callback(seeded: World) -> None:
    """The issue's count: a submit and five callbacks (two of them changing nothing)."""
    counted = Counted(seeded.jobs)
    seeded.gateway.script(Accepted(TASK_ID, 0, 1, "ok"))
    job_id = seeded.submitter().submit(upload(TARGET_KEY), 900).job_id
    for status, progress in [("IN_PROGRESS", "10%"), ("IN_PROGRESS", "50%"), ("IN_PROGRESS", "50%")]:
        callback(seeded, job_id, status, progress)
    callback(seeded, job_id, "SUCCESS", "100%", imageUrl=IMAGE_URL)
    callback(seeded, job_id, "SUCCESS", "100%", imageUrl=IMAGE_URL)

    # Before: 3 + 12 reads. Now: one read per callback, none for the submit or the finisher.
    assert counted.calls == {"get": 5, "replace": 6, "written": 7}
