"""The metrics a job's end records (job_metrics), once per job, whichever door it leaves by; and
UpstreamSubmitLatency around the submit call. Fakes only; EMF lines read from stdout."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fakes import FakeLambdaContext
from swapdrop import state_machine as sm
from swapdrop.job_updates import update_job
from swapdrop.jobs import JobStatus, Transition, iso
from swapdrop.observability import metrics
from swapdrop.result_download import DownloadedImage
from swapdrop.submission import Submitter
from swapdrop.upstream import Accepted, Rejected, Retryable

from .builders import TASK_ID, make_job, snap, upload
from .conftest import World

URL = "https://cdn.example/r/done.png"
FINISHING = (
    "JobsSuccess",
    "JobsFailure",
    "JobsRejected",
    "JobsCancelled",
    "JobsFinishedByCallback",
    "JobsFinishedByPoll",
)


def counted() -> dict[str, float]:
    """Total of each finishing metric in the invocation's buffer (absent: 0)."""
    return {name: sum(metrics.metric_set.get(name, {}).get("Value", [])) for name in FINISHING}


def durations(capsys: pytest.CaptureFixture[str]) -> list[tuple[float, dict[str, str], list[str]]]:
    """(value, dimension values, dimension names) of every JobDuration EMF line printed so far."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            (directive,) = blob["_aws"]["CloudWatchMetrics"]
            if [m["Name"] for m in directive["Metrics"]] == ["JobDuration"]:
                assert directive["Metrics"][0]["Unit"] == "Seconds"
                assert directive["Namespace"] == "Swapdrop"
                (names,) = directive["Dimensions"]
                found.append((blob["JobDuration"][0], {n: blob[n] for n in names}, sorted(names)))
    return found


def seed_submitted(world: World, job_id: str = "job-1", age: timedelta = timedelta(seconds=95)) -> None:
    created = iso(world.clock() - age)
    world.jobs.put(
        make_job(jobId=job_id, status=JobStatus.SUBMITTED, taskId=TASK_ID, createdAt=created, updatedAt=created)
    )


def test_a_callback_that_ends_a_job_counts_it_once_with_its_duration(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_submitted(world, age=timedelta(seconds=95, milliseconds=500))
    applier = world.applier()

    applier.apply("job-1", snap("FAILURE", failReason="no face found", state="job-1"), via="callback")
    applier.apply("job-1", snap("FAILURE", failReason="no face found", state="job-1"), via="callback")  # a repeat
    applier.apply("job-1", snap("FAILURE", failReason="no face found", state="job-1"), via="poll")  # and a poll

    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsFailure": 1, "JobsFinishedByCallback": 1}
    assert durations(capsys) == [(95.5, {"Status": "FAILURE", "service": "swapdrop"}, ["Status", "service"])]


def test_a_poll_that_ends_a_job_counts_as_a_poll(world: World, images: SimpleNamespace, capsys) -> None:
    world.downloader.results[URL] = DownloadedImage(images.png, "png", "image/png")
    created = iso(world.clock() - timedelta(minutes=4))
    world.jobs.put(
        make_job(jobId="done", status=JobStatus.SUBMITTED, taskId="T1", createdAt=created, updatedAt=created)
    )
    world.poller.snapshots = {"T1": snap("SUCCESS", "100%", task_id="T1", imageUrl=URL, state="done")}

    world.reconciler().run()

    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsSuccess": 1, "JobsFinishedByPoll": 1}
    assert durations(capsys) == [(240.0, {"Status": "SUCCESS", "service": "swapdrop"}, ["Status", "service"])]


def test_a_timed_out_job_is_a_failure_that_came_by_neither_door(world: World, capsys) -> None:
    created = iso(world.clock() - timedelta(minutes=61))
    world.jobs.put(make_job(jobId="old", status=JobStatus.PENDING, createdAt=created, updatedAt=created, attempts=1))

    world.reconciler(job_timeout_minutes=60).run()

    assert world.jobs.get("old").status is JobStatus.FAILURE
    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsFailure": 1}
    assert durations(capsys) == [(3660.0, {"Status": "FAILURE", "service": "swapdrop"}, ["Status", "service"])]


def test_an_api_jobs_clock_starts_when_its_target_was_uploaded(world: World, capsys) -> None:
    created = world.clock() - timedelta(minutes=10)
    uploaded = Transition(from_="AWAITING_UPLOAD", to="PENDING", at=iso(created + timedelta(minutes=8)), via="upload")
    world.jobs.put(
        make_job(jobId="api-1", status=JobStatus.PENDING, origin="api", createdAt=iso(created),
                 updatedAt=uploaded.at, history=(uploaded,))
    )  # fmt: skip

    update_job(world.jobs, "api-1", lambda j: sm.cancel(j, world.clock(), "cancelled by request"))

    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsCancelled": 1}
    assert durations(capsys) == [(120.0, {"Status": "CANCELLED", "service": "swapdrop"}, ["Status", "service"])]


def test_a_write_that_changes_nothing_or_keeps_the_job_open_records_nothing(world: World, capsys) -> None:
    seed_submitted(world)
    update_job(world.jobs, "job-1", lambda j: sm.apply_snapshot(j, world.clock(), snap("IN_PROGRESS", "40%"), "poll"))
    update_job(world.jobs, "job-1", lambda j: sm.cancel(j, world.clock(), "stop"))
    update_job(world.jobs, "job-1", lambda j: sm.cancel(j, world.clock(), "stop again"))  # refused: already ended
    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsCancelled": 1}
    assert len(durations(capsys)) == 1


# --- the submitter's doors ---------------------------------------------------------------------


class Ticks:
    """A monotonic clock that moves `step` seconds on every read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def submitter(world: World, ticks: Ticks) -> Submitter:
    return world.submitter(monotonic=ticks)


@pytest.fixture
def seeded(world: World, images: SimpleNamespace) -> World:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put("inbox/alice/a.png", images.png)
    return world


def latencies() -> list[float]:
    entry = metrics.metric_set.get("UpstreamSubmitLatency", {})
    assert entry.get("Unit", "Milliseconds") == "Milliseconds"
    return list(entry.get("Value", []))


def test_every_submit_records_how_long_the_swap_api_took(seeded: World) -> None:
    seeded.gateway.script(Retryable("busy"), Accepted(TASK_ID, None, 1, ""))
    item = upload("inbox/alice/a.png")
    submit = submitter(seeded, Ticks(0.25))

    submit.submit(item, 900)
    seeded.clock.advance(minutes=1)
    submit.submit(item, 900)

    assert latencies() == [250.0, 250.0]  # a retryable answer is timed too
    assert counted() == dict.fromkeys(FINISHING, 0)  # submitted: not finished


def test_a_refused_submit_is_a_failure_once(seeded: World) -> None:
    seeded.gateway.script(Rejected("bad request: no face"))
    submitter(seeded, Ticks(0.1)).submit(upload("inbox/alice/a.png"), 900)
    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsFailure": 1}
    assert latencies() == [pytest.approx(100.0)]


def test_a_rejected_upload_counts_jobs_rejected_once_and_never_reaches_the_api(seeded: World) -> None:
    seeded.media.put("inbox/nobody/a.png", b"not an image")
    submitter(seeded, Ticks(0.1)).submit(upload("inbox/nobody/a.png"), 900)
    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsRejected": 1}
    assert latencies() == []


def test_a_swap_request_born_rejected_is_counted_once(api, images: SimpleNamespace, capsys) -> None:
    """The event entrance creates a REJECTED job directly (no transition through update_job)."""
    from swapdrop.swap_requests import SwapRequests

    from .test_swap_requests import FakeRejections, event, request

    api.world.media.put("faces/alice.jpg", images.jpeg)
    requests = SwapRequests(api.service, api.posts, FakeRejections())
    requests.register(FakeLambdaContext())

    requests.handle(event(request(target={"s3Key": "photos/missing.png"})))

    (job,) = api.world.jobs.items.values()
    assert job["status"] == "REJECTED"
    assert counted() == {**dict.fromkeys(FINISHING, 0), "JobsRejected": 1}
    assert durations(capsys) == [(0.0, {"Status": "REJECTED", "service": "swapdrop"}, ["Status", "service"])]
