"""reconciler with an upstream pool: each job polled on its own member, lost submits looked for where they
went, and the two clocks (MaxQueueWaitHours for a job still waiting for capacity, the job timeout from its
submit). On fakes, with a clock that stands still."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fakes import FakeMemberPool, FakePoller
from swapdrop import state_machine as sm
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.observability import metrics
from swapdrop.reconciler import Reconciler
from swapdrop.result_download import DownloadedImage
from swapdrop.upstream import UpstreamError

from .builders import make_job, snap
from .conftest import World

URL = "https://cdn.example/r/{}.png"
QUIET = timedelta(minutes=5)
YOUNG = timedelta(minutes=10)


@pytest.fixture
def pool(world: World, images: SimpleNamespace) -> FakeMemberPool:
    for name in ("a", "b", "c", "d"):
        world.downloader.results[URL.format(name)] = DownloadedImage(images.png, "png", "image/png")
    return FakeMemberPool({"relay-a": FakePoller(), "relay-b": FakePoller(), "relay-c": FakePoller()})


def reconciler(world: World, pool: FakeMemberPool, job_timeout_minutes: int = 60, queue_hours: int = 24) -> Reconciler:
    return world.reconciler(job_timeout_minutes, max_queue_wait_hours=queue_hours, upstream=pool)


def seed(world: World, job_id: str, status: JobStatus, age: timedelta, **fields: object) -> Job:
    now = world.clock()
    return world.jobs.put(
        make_job(
            jobId=job_id,
            status=status,
            createdAt=iso(now - age),
            updatedAt=iso(now - QUIET),
            attempts=1,
            targetKey=f"inbox/alice/{job_id}.jpg",
            **fields,
        )
    )


def calls(pool: FakeMemberPool) -> dict[str, list[list[str]]]:
    return {name: poller.calls for name, poller in pool.pollers.items()}


# --- polling: each job on its own member -----------------------------------------------------------


def test_each_member_is_asked_only_for_its_own_tasks(world: World, pool: FakeMemberPool) -> None:
    seed(world, "a1", JobStatus.SUBMITTED, YOUNG, taskId="T-a1", upstreamMember="relay-a")
    seed(world, "b1", JobStatus.IN_PROGRESS, YOUNG, taskId="T-b1", upstreamMember="relay-b")
    seed(world, "a2", JobStatus.SUBMITTED, YOUNG, taskId="T-a2", upstreamMember="relay-a")
    pool.pollers["relay-b"].snapshots["T-b1"] = snap("IN_PROGRESS", "70%", task_id="T-b1")
    pool.pollers["relay-a"].snapshots["T-a2"] = snap("SUCCESS", "100%", task_id="T-a2", imageUrl=URL.format("a"))

    report = reconciler(world, pool).run()

    assert {name: [sorted(c) for c in made] for name, made in calls(pool).items()} == {
        "relay-a": [["T-a1", "T-a2"]],
        "relay-b": [["T-b1"]],
        "relay-c": [],
    }
    assert pool.pollers["relay-a"].states == [{"a1": "T-a1", "a2": "T-a2"}]
    assert (report.polled, report.updated, report.poll_error) == (3, 2, None)
    assert world.jobs.get("b1").progress == 70  # type: ignore[union-attr]
    assert world.jobs.get("a2").status is JobStatus.SUCCESS  # type: ignore[union-attr]


def test_jobs_with_no_member_or_a_member_since_removed_are_polled_on_the_first_member(
    world: World, pool: FakeMemberPool
) -> None:
    """Jobs submitted before the pool carry no member: their task is on the one upstream there was."""
    seed(world, "old", JobStatus.SUBMITTED, YOUNG, taskId="T-old")
    seed(world, "gone", JobStatus.SUBMITTED, YOUNG, taskId="T-gone", upstreamMember="relay-retired")
    seed(world, "c1", JobStatus.SUBMITTED, YOUNG, taskId="T-c1", upstreamMember="relay-c")

    reconciler(world, pool).run()

    assert sorted(calls(pool)["relay-a"][0]) == ["T-gone", "T-old"]
    assert calls(pool)["relay-b"] == [] and calls(pool)["relay-c"] == [["T-c1"]]


def test_a_member_whose_poll_fails_does_not_stop_the_others(
    world: World, pool: FakeMemberPool, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = seed(world, "a1", JobStatus.SUBMITTED, YOUNG, taskId="T-a1", upstreamMember="relay-a")
    seed(world, "b1", JobStatus.SUBMITTED, YOUNG, taskId="T-b1", upstreamMember="relay-b")
    seed(world, "c1", JobStatus.SUBMITTED, YOUNG, taskId="T-c1", upstreamMember="relay-c")
    pool.pollers["relay-a"].error = UpstreamError("POST /mj/task/list-by-condition answered HTTP 502")
    pool.pollers["relay-b"].error = UpstreamError("timed out")
    pool.pollers["relay-c"].snapshots["T-c1"] = snap("IN_PROGRESS", "40%", task_id="T-c1")

    report = reconciler(world, pool).run()

    assert report.poll_error == "relay-a: POST /mj/task/list-by-condition answered HTTP 502; relay-b: timed out"
    assert (report.polled, report.updated, report.errors) == (1, 1, 0)
    assert metrics.metric_set["PollFailures"]["Value"] == [1.0, 1.0]  # one per failing member
    by_member = [
        (blob["PollFailures"], blob["Member"])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"') and "PollFailures" in (blob := json.loads(line)) and "Member" in blob
    ]
    assert sorted(by_member) == [([1.0], "relay-a"), ([1.0], "relay-b")]  # and which members, apart
    assert world.jobs.get("a1") == waiting
    assert world.jobs.get("c1").progress == 40  # type: ignore[union-attr]


def test_an_overdue_job_on_a_failing_member_is_still_timed_out(world: World, pool: FakeMemberPool) -> None:
    seed(world, "late", JobStatus.SUBMITTED, timedelta(hours=2), taskId="T", upstreamMember="relay-b")
    pool.pollers["relay-b"].error = UpstreamError("HTTP 503")
    report = reconciler(world, pool).run()
    assert report.timed_out == 1
    assert world.jobs.get("late").status is JobStatus.FAILURE  # type: ignore[union-attr]


# --- adoption of a lost submit: on its member, or on every member ----------------------------------


def lost(world: World, job_id: str, age: timedelta = timedelta(hours=25), **fields: object) -> Job:
    return seed(world, job_id, JobStatus.PENDING, age, leaseUntil=world.clock.epoch - 60, **fields)


def test_a_lost_submit_is_looked_for_on_its_recorded_member_only(world: World, pool: FakeMemberPool) -> None:
    job = lost(world, "lost", upstreamMember="relay-b")
    found = snap("SUCCESS", "100%", task_id="T-lost", state=job.jobId, imageUrl=URL.format("a"))
    pool.pollers["relay-a"].recent = [snap("SUCCESS", "100%", task_id="T-decoy", state=job.jobId)]
    pool.pollers["relay-b"].recent = [found]

    report = reconciler(world, pool).run()

    assert [p.recent_calls for p in pool.pollers.values()] == [0, 1, 0]
    done = world.jobs.get("lost")
    assert done is not None and (done.status, done.taskId) == (JobStatus.SUCCESS, "T-lost")
    assert report.updated == 1 and report.timed_out == 0


def test_a_lost_submit_with_no_member_is_looked_for_on_every_member_each_listed_once(
    world: World, pool: FakeMemberPool
) -> None:
    first, second = lost(world, "first"), lost(world, "second", upstreamMember="relay-retired")
    pool.pollers["relay-a"].error = UpstreamError("HTTP 502 from GET /mj/task/list")  # skipped, not fatal
    pool.pollers["relay-b"].recent = []
    pool.pollers["relay-c"].recent = [
        snap("SUCCESS", "100%", task_id="T-2", state=second.jobId, imageUrl=URL.format("b")),
        snap("SUCCESS", "100%", task_id="T-1", state=first.jobId, imageUrl=URL.format("a")),
    ]

    report = reconciler(world, pool).run()

    assert [p.recent_calls for p in pool.pollers.values()] == [1, 1, 1], "one listing per member and run"
    assert world.jobs.get("first").taskId == "T-1"  # type: ignore[union-attr]
    assert world.jobs.get("second").taskId == "T-2"  # type: ignore[union-attr]
    assert report.updated == 2 and report.timed_out == 0


def test_a_lost_submit_found_nowhere_times_out_saying_a_task_may_exist(world: World, pool: FakeMemberPool) -> None:
    lost(world, "lost", upstreamMember="relay-c")
    pool.pollers["relay-c"].recent = []
    reconciler(world, pool).run()
    job = world.jobs.get("lost")
    assert job is not None and job.status is JobStatus.FAILURE
    assert job.failReason == (
        "timed out: no result after 24 hours (last status PENDING, no upstream task); " + sm.TASK_MAY_EXIST
    )


def test_a_running_task_adopted_after_the_queue_wait_gets_the_job_timeout_from_its_adoption(
    world: World, pool: FakeMemberPool
) -> None:
    job = lost(world, "lost", upstreamMember="relay-a")
    pool.pollers["relay-a"].recent = [snap("IN_PROGRESS", "10%", task_id="T-late", state=job.jobId)]
    report = reconciler(world, pool).run()
    adopted = world.jobs.get("lost")
    assert adopted is not None and (adopted.status, adopted.taskId) == (JobStatus.IN_PROGRESS, "T-late")
    assert adopted.submittedAt == iso(world.clock()) and (report.updated, report.timed_out) == (1, 0)

    world.clock.advance(minutes=59)
    assert reconciler(world, pool).run().timed_out == 0
    world.clock.advance(minutes=1)
    assert reconciler(world, pool).run().timed_out == 1
    done = world.jobs.get("lost")
    assert done is not None
    assert done.failReason == "timed out: no result after 60 minutes (last status IN_PROGRESS, task T-late)"


def quiet_for(world: World, job_id: str, quiet: timedelta, **fields: object) -> Job:
    """A PENDING job (created 5 hours ago: within the queue wait) with no news for `quiet`."""
    now = world.clock()
    return world.jobs.put(
        make_job(
            jobId=job_id,
            status=JobStatus.PENDING,
            createdAt=iso(now - timedelta(hours=5)),
            updatedAt=iso(now - quiet),
            attempts=1,
            targetKey=f"inbox/alice/{job_id}.jpg",
            **fields,
        )
    )


def test_a_lost_submit_is_looked_for_once_it_has_had_no_news_for_the_job_timeout(
    world: World, pool: FakeMemberPool
) -> None:
    """Not only after MaxQueueWaitHours: a member's task list holds only its latest tasks."""
    doubt = {"submitInDoubt": True, "upstreamMember": "relay-b"}
    quiet_for(world, "found", timedelta(minutes=60), **doubt)
    quiet_for(world, "not-yet", timedelta(minutes=59, seconds=59), **doubt)
    quiet_for(world, "gone", timedelta(hours=2), **doubt)
    pool.pollers["relay-b"].recent = [
        snap("SUCCESS", "100%", task_id="T-found", state="found", imageUrl=URL.format("a")),
        snap("IN_PROGRESS", "100%", task_id="T-not-yet", state="not-yet"),
    ]

    report = reconciler(world, pool, job_timeout_minutes=60, queue_hours=24).run()

    assert [p.recent_calls for p in pool.pollers.values()] == [0, 1, 0]
    assert world.jobs.get("found").status is JobStatus.SUCCESS  # type: ignore[union-attr]
    assert world.jobs.get("not-yet").taskId is None  # type: ignore[union-attr]
    gone = world.jobs.get("gone")
    assert gone is not None and gone.status is JobStatus.PENDING, "not found: it waits out the queue wait"
    assert (report.updated, report.timed_out) == (1, 0)


def test_a_quiet_pending_job_that_sent_nothing_is_not_looked_for(world: World, pool: FakeMemberPool) -> None:
    quiet_for(world, "clean", timedelta(hours=2), lastError="HTTP 502")  # every attempt ended cleanly
    reconciler(world, pool).run()
    assert [p.recent_calls for p in pool.pollers.values()] == [0, 0, 0]


# --- the two clocks ------------------------------------------------------------------------------


def test_a_pending_job_waits_for_capacity_until_max_queue_wait_hours_after_creation(
    world: World, pool: FakeMemberPool
) -> None:
    """Past the job timeout, yet within the queue wait: waiting for capacity is not a hung job."""
    seed(world, "past-job-timeout", JobStatus.PENDING, timedelta(hours=5), lastError="every upstream member is full")
    seed(world, "almost", JobStatus.PENDING, timedelta(hours=24) - timedelta(seconds=1))
    seed(world, "exactly", JobStatus.PENDING, timedelta(hours=24))

    report = reconciler(world, pool, job_timeout_minutes=60, queue_hours=24).run()

    assert report.timed_out == 1
    assert world.jobs.get("past-job-timeout").status is JobStatus.PENDING  # type: ignore[union-attr]
    assert world.jobs.get("almost").status is JobStatus.PENDING  # type: ignore[union-attr]
    exactly = world.jobs.get("exactly")
    assert exactly is not None and exactly.status is JobStatus.FAILURE
    assert exactly.failReason == "timed out: no result after 24 hours (last status PENDING, no upstream task)"


def test_the_queue_wait_is_the_reconcilers_parameter(world: World, pool: FakeMemberPool) -> None:
    seed(world, "p", JobStatus.PENDING, timedelta(hours=3))
    assert reconciler(world, pool, queue_hours=4).run().timed_out == 0
    assert reconciler(world, pool, queue_hours=3).run().timed_out == 1


@pytest.mark.parametrize("status", [JobStatus.SUBMITTED, JobStatus.IN_PROGRESS])
def test_a_job_with_a_task_is_overdue_the_job_timeout_after_its_submit(
    world: World, pool: FakeMemberPool, status: JobStatus
) -> None:
    """Created long ago (it waited for capacity), submitted recently: the job timeout runs from the submit."""
    now = world.clock()
    for job_id, submitted_ago in (("almost", timedelta(minutes=59, seconds=59)), ("exactly", timedelta(minutes=60))):
        seed(
            world,
            job_id,
            status,
            timedelta(hours=20),
            taskId=f"T-{job_id}",
            upstreamMember="relay-b",
            submittedAt=iso(now - submitted_ago),
        )

    report = reconciler(world, pool, job_timeout_minutes=60, queue_hours=24).run()

    assert sorted(calls(pool)["relay-b"][0]) == ["T-almost", "T-exactly"]  # one last poll first
    assert report.timed_out == 1
    assert world.jobs.get("almost").status is status  # type: ignore[union-attr]
    exactly = world.jobs.get("exactly")
    assert exactly is not None and exactly.status is JobStatus.FAILURE
    assert exactly.failReason == f"timed out: no result after 60 minutes (last status {status.value}, task T-exactly)"


def test_a_job_with_a_task_but_no_submitted_at_is_timed_from_its_creation(world: World, pool: FakeMemberPool) -> None:
    """Recorded before submittedAt existed: createdAt is the best start there is."""
    seed(world, "almost", JobStatus.SUBMITTED, timedelta(minutes=59, seconds=59), taskId="T-almost")
    seed(world, "exactly", JobStatus.SUBMITTED, timedelta(minutes=60), taskId="T-exactly")
    report = reconciler(world, pool, job_timeout_minutes=60, queue_hours=24).run()
    assert report.timed_out == 1
    assert world.jobs.get("almost").status is JobStatus.SUBMITTED  # type: ignore[union-attr]
    assert world.jobs.get("exactly").status is JobStatus.FAILURE  # type: ignore[union-attr]


def test_the_index_carries_what_the_two_clocks_and_the_member_need(world: World) -> None:
    """The reconciler decides on the projection alone (OpenJob): the member and submittedAt are in it."""
    seed(
        world,
        "j",
        JobStatus.SUBMITTED,
        YOUNG,
        taskId="T",
        upstreamMember="relay-b",
        submittedAt="2024-10-16T09:00:00.000Z",
    )
    (listed,) = world.jobs.open_jobs(updated_before=iso(world.clock()))
    assert (listed.upstreamMember, listed.submittedAt) == ("relay-b", "2024-10-16T09:00:00.000Z")
