"""job_updates.update_job: optimistic concurrency, decided again on the fresh job."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from fakes import FakeJobStore
from swapdrop import state_machine as sm
from swapdrop.job_store import VersionConflict
from swapdrop.job_updates import MAX_CONFLICT_RETRIES, JobNotFound, update_job
from swapdrop.jobs import Job, JobStatus

from .builders import TASK_ID, make_job, snap

NOW = datetime(2024, 10, 16, 10, 0, tzinfo=UTC)


@pytest.fixture
def store() -> FakeJobStore:
    store = FakeJobStore()
    store.put(make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1, version=3))
    return store


def test_a_change_is_written_with_the_next_version(store: FakeJobStore) -> None:
    decision = update_job(store, "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "40%")))
    assert decision.changed
    assert decision.job.version == 4
    stored = store.get("job-0001")
    assert stored == decision.job
    assert stored is not None and stored.progress == 40


def test_a_no_op_writes_nothing(store: FakeJobStore) -> None:
    writes = len(store.writes)
    decision = update_job(store, "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("SUBMITTED", "0%")))
    assert decision.changed is False
    assert store.replace_calls == 0
    assert len(store.writes) == writes


def test_a_concurrent_write_makes_it_decide_again_on_the_fresh_job(store: FakeJobStore) -> None:
    def callback_finishes_first(s: FakeJobStore) -> None:
        s.concurrent_write(
            "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("SUCCESS", "100%", imageUrl="https://cdn/r.png")).job
        )

    store.before_next_replace(callback_finishes_first)
    seen: list[Job] = []

    def decide(job: Job) -> sm.Decision:
        seen.append(job)
        return sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "70%"))

    decision = update_job(store, "job-0001", decide)
    assert len(seen) == 2, "decided once on the stale job, once on the fresh one"
    assert seen[0].status is JobStatus.SUBMITTED
    assert seen[1].status is JobStatus.SUCCESS
    assert decision.changed is False  # the late progress snapshot is a no-op on a terminal job
    stored = store.get("job-0001")
    assert stored is not None
    assert stored.status is JobStatus.SUCCESS
    assert stored.progress == 100
    assert stored.version == 4  # only the concurrent writer's version bump


def test_the_retry_keeps_the_concurrent_writers_facts(store: FakeJobStore) -> None:
    store.before_next_replace(lambda s: s.concurrent_write("job-0001", lambda j: dataclasses.replace(j, progress=80)))
    decision = update_job(store, "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "50%")))
    stored = store.get("job-0001")
    assert stored is not None
    assert stored.status is JobStatus.IN_PROGRESS  # our fact
    assert stored.progress == 80  # theirs, not overwritten by our lower 50
    assert decision.job == stored
    assert stored.version == 5


def test_gives_up_after_max_conflict_retries(store: FakeJobStore) -> None:
    for i in range(MAX_CONFLICT_RETRIES):
        store.before_next_replace(
            lambda s, i=i: s.concurrent_write("job-0001", lambda j: dataclasses.replace(j, lastError=f"writer {i}"))
        )
    with pytest.raises(VersionConflict) as raised:
        update_job(store, "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "50%")))
    assert store.replace_calls == MAX_CONFLICT_RETRIES
    assert f"gave up after {MAX_CONFLICT_RETRIES}" in str(raised.value)
    stored = store.get("job-0001")
    assert stored is not None and stored.progress == 0


def test_succeeds_on_the_last_allowed_try(store: FakeJobStore) -> None:
    for _ in range(MAX_CONFLICT_RETRIES - 1):
        store.before_next_replace(lambda s: s.concurrent_write("job-0001", lambda j: j))
    decision = update_job(store, "job-0001", lambda j: sm.apply_snapshot(j, NOW, snap("IN_PROGRESS", "50%")))
    assert decision.changed and decision.job.progress == 50
    assert store.replace_calls == MAX_CONFLICT_RETRIES


def test_missing_job_raises_job_not_found() -> None:
    with pytest.raises(JobNotFound):
        update_job(FakeJobStore(), "nope", lambda j: sm.time_out(j, NOW, 60))
