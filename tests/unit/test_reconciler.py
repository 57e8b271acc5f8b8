"""reconciler: the safety net for silent jobs, run on fakes with a clock that stands still."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fakes import FakePools
from swapdrop import state_machine as sm
from swapdrop.finishing import JobFinisher
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.result_download import DownloadedImage, ResultDownloader
from swapdrop.snapshots import SnapshotApplier
from swapdrop.upstream import UpstreamError

from .builders import make_job, snap
from .conftest import World

URL = "https://cdn.example/r/{}.png"


def ago(world: World, **delta: float) -> str:
    return iso(world.clock() - timedelta(**delta))


def seed(world: World, job_id: str, status: JobStatus, quiet_for: timedelta, age: timedelta, **fields: object) -> Job:
    now = world.clock()
    return world.jobs.put(
        make_job(
            jobId=job_id,
            status=status,
            createdAt=iso(now - age),
            updatedAt=iso(now - quiet_for),
            attempts=1,
            **({"targetKey": f"inbox/alice/{job_id}.jpg"} | fields),
        )
    )


QUIET = timedelta(minutes=5)
NOISY = timedelta(seconds=30)
YOUNG = timedelta(minutes=10)
OLD = timedelta(minutes=61)


@pytest.fixture
def rich(world: World, images: SimpleNamespace) -> World:
    for name in ("a", "b", "c", "d"):
        world.downloader.results[URL.format(name)] = DownloadedImage(images.png, "png", "image/png")
    return world


def test_polls_only_quiet_jobs_with_a_task(rich: World) -> None:
    seed(rich, "quiet", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T-quiet")
    seed(rich, "noisy", JobStatus.IN_PROGRESS, NOISY, YOUNG, taskId="T-noisy", progress=50)
    seed(rich, "no-task", JobStatus.PENDING, QUIET, YOUNG)
    seed(rich, "closed", JobStatus.SUCCESS, QUIET, YOUNG, taskId="T-closed", imageUrl=URL.format("a"), resultKey="r")
    writes = len(rich.jobs.writes)

    report = rich.reconciler(quiet_seconds=120).run()

    assert rich.poller.calls == [["T-quiet"]]
    assert report.examined == 2  # quiet + no-task; the noisy one and the closed one are not looked at
    assert report.polled == 1
    assert report.updated == 0
    assert report.timed_out == 0
    assert len(rich.jobs.writes) == writes  # nothing to say, nothing written


def test_the_poll_names_the_job_each_task_belongs_to(rich: World) -> None:
    """So the client can read a listed snapshot that lost its id by the state it echoes."""
    seed(rich, "one", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T-one")
    seed(rich, "two", JobStatus.IN_PROGRESS, QUIET, YOUNG, taskId="T-two")
    rich.reconciler(quiet_seconds=120).run()
    assert sorted(rich.poller.calls[0]) == ["T-one", "T-two"]
    assert rich.poller.states == [{"one": "T-one", "two": "T-two"}]


def test_quiet_seconds_zero_sees_every_open_job(rich: World) -> None:
    seed(rich, "noisy", JobStatus.IN_PROGRESS, timedelta(0), YOUNG, taskId="T-noisy")
    rich.reconciler(quiet_seconds=0).run()
    assert rich.poller.calls == [["T-noisy"]]


def test_applies_polled_snapshots_like_a_callback(rich: World, images: SimpleNamespace) -> None:
    seed(rich, "done", JobStatus.IN_PROGRESS, QUIET, YOUNG, taskId="T1", progress=40)
    seed(rich, "moving", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T2")
    seed(rich, "failed", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T3")
    rich.poller.snapshots = {
        "T1": snap("SUCCESS", "100%", task_id="T1", imageUrl=URL.format("a"), state="done"),
        "T2": snap("IN_PROGRESS", "70%", task_id="T2"),
        "T3": snap("FAILURE", "", task_id="T3", failReason="执行超时 10 分钟"),
    }

    report = rich.reconciler().run()

    assert report.updated == 3
    done = rich.jobs.get("done")
    assert done is not None and done.status is JobStatus.SUCCESS and done.resultKey == "results/alice/done.png"
    assert [w.key for w in rich.media.writes] == ["results/alice/done.png"]
    moving = rich.jobs.get("moving")
    assert moving is not None and moving.status is JobStatus.IN_PROGRESS and moving.progress == 70
    failed = rich.jobs.get("failed")
    assert failed is not None and "执行超时 10 分钟" in (failed.failReason or "")
    assert sorted(j.jobId for j in rich.events.published) == ["done", "failed"]


def test_jobs_absent_from_the_poll_answer_stay_as_they_are(rich: World) -> None:
    before = seed(rich, "forgotten", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T-forgotten")
    report = rich.reconciler().run()
    assert rich.poller.calls == [["T-forgotten"]]
    assert report.updated == 0
    assert rich.jobs.get("forgotten") == before


@pytest.mark.parametrize(
    ("status", "fields", "where"),
    [
        (JobStatus.PENDING, {}, "(last status PENDING, no upstream task)"),
        (JobStatus.SUBMITTED, {"taskId": "T-old"}, "(last status SUBMITTED, task T-old)"),
        (JobStatus.IN_PROGRESS, {"taskId": "T-old", "progress": 90}, "(last status IN_PROGRESS, task T-old)"),
    ],
)
def test_times_out_jobs_older_than_the_job_timeout(rich: World, status: JobStatus, fields: dict, where: str) -> None:
    seed(rich, "old", status, QUIET, OLD, **fields)
    report = rich.reconciler(job_timeout_minutes=60).run()
    job = rich.jobs.get("old")
    assert job is not None
    assert job.status is JobStatus.FAILURE
    assert job.failReason == f"timed out: no result after 60 minutes {where}"
    assert job.finishedAt == iso(rich.clock())
    assert report.timed_out == 1
    # one last poll before giving up (the task may have just finished), then the timeout
    assert rich.poller.calls == ([["T-old"]] if "taskId" in fields else [])
    assert [j.jobId for j in rich.events.published] == ["old"]
    assert "openShard" not in rich.jobs.item("old")


def test_an_overdue_job_whose_task_just_finished_succeeds_instead(rich: World) -> None:
    seed(rich, "late", JobStatus.IN_PROGRESS, QUIET, OLD, taskId="T-late", progress=90)
    rich.poller.snapshots["T-late"] = snap("SUCCESS", "100%", task_id="T-late", imageUrl=URL.format("a"), state="late")
    report = rich.reconciler(job_timeout_minutes=60).run()
    job = rich.jobs.get("late")
    assert job is not None and job.status is JobStatus.SUCCESS and job.failReason is None
    assert report.timed_out == 0 and report.updated == 1


def test_one_broken_job_does_not_stop_the_run(rich: World) -> None:
    seed(rich, "broken", JobStatus.SUCCESS, QUIET, YOUNG, taskId="T-b", imageUrl=URL.format("zzz-unknown"))
    seed(rich, "fine", JobStatus.SUCCESS, QUIET, YOUNG, taskId="T-f", imageUrl=URL.format("a"))
    rich.downloader.results[URL.format("zzz-unknown")] = RuntimeError("a bug")
    report = rich.reconciler().run()
    fine = rich.jobs.get("fine")
    assert fine is not None and fine.resultKey is not None
    assert report.errors == 1 and report.finished == 1


def test_the_timeout_boundary(rich: World) -> None:
    seed(rich, "exactly", JobStatus.PENDING, QUIET, timedelta(minutes=60))
    seed(rich, "almost", JobStatus.PENDING, QUIET, timedelta(minutes=59, seconds=59))
    report = rich.reconciler(job_timeout_minutes=60).run()
    assert report.timed_out == 1
    exactly, almost = rich.jobs.get("exactly"), rich.jobs.get("almost")
    assert exactly is not None and exactly.status is JobStatus.FAILURE
    assert almost is not None and almost.status is JobStatus.PENDING


def test_retries_result_copies_and_unpublished_events(rich: World) -> None:
    seed(
        rich,
        "uncopied",
        JobStatus.SUCCESS,
        QUIET,
        OLD,
        taskId="T1",
        imageUrl=URL.format("b"),
        progress=100,
        resultCopyAttempts=1,
    )
    seed(rich, "unannounced", JobStatus.FAILURE, QUIET, OLD, taskId="T2", failReason="x", eventPending=True)
    seed(
        rich,
        "copied-not-announced",
        JobStatus.SUCCESS,
        QUIET,
        YOUNG,
        taskId="T3",
        imageUrl=URL.format("c"),
        resultKey="results/alice/c.png",
        eventPending=True,
    )

    report = rich.reconciler().run()

    assert report.finished == 3
    assert report.timed_out == 0  # terminal jobs are finished, never timed out
    assert rich.poller.calls == []
    uncopied = rich.jobs.get("uncopied")
    assert uncopied is not None and uncopied.resultKey == "results/alice/uncopied.png"
    assert uncopied.resultCopyAttempts == 2
    assert rich.downloader.calls == [URL.format("b")]
    assert sorted(j.jobId for j in rich.events.published) == ["copied-not-announced", "unannounced"]
    for job_id in ("uncopied", "unannounced", "copied-not-announced"):
        assert "openShard" not in rich.jobs.item(job_id)
    assert list(rich.jobs.open_jobs(updated_before=iso(rich.clock() + timedelta(days=1)))) == []


def test_a_poll_failure_is_reported_and_the_rest_still_happens(rich: World) -> None:
    waiting = seed(rich, "waiting", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T1")
    seed(rich, "old", JobStatus.PENDING, QUIET, OLD)
    rich.poller.error = UpstreamError("POST /mj/task/list-by-condition answered HTTP 502")

    report = rich.reconciler().run()

    assert report.poll_error == "POST /mj/task/list-by-condition answered HTTP 502"
    assert report.polled == 0
    assert report.timed_out == 1
    assert rich.jobs.get("waiting") == waiting


def test_max_jobs_bounds_one_run(rich: World) -> None:
    for i in range(5):
        seed(rich, f"j{i}", JobStatus.SUBMITTED, QUIET + timedelta(seconds=i), YOUNG, taskId=f"T{i}")
    report = rich.reconciler().run(max_jobs=3)
    assert report.examined == 3
    assert [len(call) for call in rich.poller.calls] == [3]


def test_a_second_run_after_a_complete_one_has_nothing_to_do(rich: World) -> None:
    seed(rich, "done", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T1")
    rich.poller.snapshots = {"T1": snap("SUCCESS", "100%", task_id="T1", imageUrl=URL.format("d"))}
    reconciler = rich.reconciler()
    reconciler.run()
    rich.clock.advance(minutes=10)
    second = reconciler.run()
    assert second.examined == 0
    assert len(rich.events.published) == 1


def test_an_unfetchable_result_url_does_not_wedge_the_reconciler(world: World) -> None:
    """A SUCCESS snapshot can carry any imageUrl. A malformed one must be recorded as a failed
    copy (and given up after MAX_RESULT_COPY_ATTEMPTS), not crash every run: the broken job is
    the oldest in the index, so a crash on it starves every job behind it, forever."""
    adapter = FakePools([])
    downloader = ResultDownloader(max_bytes=10_000, pools=adapter, resolver=lambda host: ["93.184.215.14"])
    finisher = JobFinisher(world.jobs, world.media, downloader, world.events, clock=world.clock)
    reconciler = world.reconciler(
        max_queue_wait_hours=24, applier=SnapshotApplier(world.jobs, finisher, clock=world.clock), finisher=finisher
    )
    seed(
        world,
        "broken",
        JobStatus.SUCCESS,
        timedelta(minutes=50),
        YOUNG,
        taskId="T0",
        imageUrl="http://[::1/r.png",
        progress=100,
    )
    seed(world, "waiting", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T1")

    report = reconciler.run()

    assert world.poller.calls == [["T1"]]
    assert report.finished == 1
    broken = world.jobs.get("broken")
    assert broken is not None and broken.resultCopyAttempts == 1


def test_every_run_reports_how_many_open_jobs_it_examined(rich: World) -> None:
    from swapdrop.observability import metrics

    seed(rich, "a", JobStatus.PENDING, QUIET, YOUNG)
    seed(rich, "b", JobStatus.SUBMITTED, QUIET, YOUNG, taskId="T-b")
    rich.reconciler().run()
    assert metrics.metric_set["OpenJobsExamined"]["Value"] == [2.0]


def test_a_stale_index_entry_is_not_finished_twice(rich: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GSI lags the table: a job whose event was just published may still be listed."""
    from swapdrop import state_machine as sm
    from swapdrop.job_updates import update_job

    seed(
        rich,
        "done",
        JobStatus.SUCCESS,
        QUIET,
        YOUNG,
        taskId="T-d",
        imageUrl=URL.format("a"),
        resultKey="r",
        eventPending=True,
    )
    stale = list(rich.jobs.open_jobs(updated_before=iso(rich.clock())))
    update_job(rich.jobs, "done", lambda j: sm.record_event_published(j, rich.clock()))
    monkeypatch.setattr(rich.jobs, "open_jobs", lambda updated_before: iter(stale))
    report = rich.reconciler().run()
    assert rich.events.published == []
    assert report.examined == 1 and report.finished == 0


# --- a submit whose answer was lost (issue 6, item 1) -------------------------------------------


def test_an_overdue_pending_job_adopts_the_task_its_lost_submit_created(rich: World) -> None:
    lost = seed(rich, "lost", JobStatus.PENDING, QUIET, OLD, leaseUntil=rich.clock.epoch - 60)
    other = seed(rich, "other", JobStatus.PENDING, QUIET, OLD, leaseUntil=rich.clock.epoch - 60)
    rich.poller.recent = [snap("SUCCESS", "100%", task_id="T-lost", state=lost.jobId, imageUrl=URL.format("a"))]

    report = rich.reconciler().run()

    assert rich.poller.recent_calls == 1, "one task listing per run, shared by every job"
    done = rich.jobs.get(lost.jobId)
    assert done is not None
    assert (done.status, done.taskId, done.failReason) == (JobStatus.SUCCESS, "T-lost", None)
    assert done.resultKey == "results/alice/lost.png" and not done.needs_attention
    assert [(t.to, t.via) for t in done.history] == [("SUCCESS", "reconciler")]
    assert [e.jobId for e in rich.events.published] == ["lost", "other"]
    failed = rich.jobs.get(other.jobId)
    assert failed is not None and failed.status is JobStatus.FAILURE
    assert failed.failReason is not None and failed.failReason.endswith(sm.TASK_MAY_EXIST)
    assert report.timed_out == 1 and report.updated == 1


@pytest.mark.parametrize("listing", [None, UpstreamError("HTTP 502 from GET /mj/task/list")])
def test_without_a_task_list_the_reason_says_a_task_may_exist(rich: World, listing: object) -> None:
    seed(rich, "lost", JobStatus.PENDING, QUIET, OLD, submitInDoubt=True)
    if isinstance(listing, BaseException):
        rich.poller.error = listing
    rich.reconciler().run()
    job = rich.jobs.get("lost")
    assert job is not None and job.status is JobStatus.FAILURE
    assert job.failReason == (
        "timed out: no result after 60 minutes (last status PENDING, no upstream task); "
        "a submit was sent and its answer was lost; a task may exist upstream"
    )


def test_a_pending_job_whose_attempts_all_ended_cleanly_is_timed_out_plainly(rich: World) -> None:
    seed(rich, "clean", JobStatus.PENDING, QUIET, OLD, lastError="HTTP 502")
    rich.poller.recent = []
    rich.reconciler().run()
    job = rich.jobs.get("clean")
    assert job is not None
    assert job.failReason == "timed out: no result after 60 minutes (last status PENDING, no upstream task)"


# --- the outbox: claims make racing finishers do the work once (issue 6, item 6) -------------------


class Interleaving:
    """A downloader that lets a second finisher run while the first one is copying."""

    def __init__(self, inner: object, meanwhile: list) -> None:
        self._inner = inner
        self.meanwhile = meanwhile

    def download(self, url: str) -> DownloadedImage:
        while self.meanwhile:
            self.meanwhile.pop(0)()
        return self._inner.download(url)  # type: ignore[attr-defined]


def test_a_callback_and_the_reconciler_finishing_one_job_copy_and_publish_once(rich: World) -> None:
    seed(rich, "race", JobStatus.IN_PROGRESS, QUIET, YOUNG, taskId="T-race", progress=50)
    success = snap("SUCCESS", "100%", task_id="T-race", imageUrl=URL.format("a"))
    rich.poller.snapshots["T-race"] = success
    meanwhile: list = []
    rich.downloader = Interleaving(rich.downloader, meanwhile)  # type: ignore[assignment]
    # The callback wins the terminal transition; while it copies, the reconciler polls the same task.
    meanwhile.append(lambda: rich.reconciler(quiet_seconds=0).run())
    rich.applier().apply("race", success, via="callback")
    assert len(rich.media.writes) == 1
    assert len(rich.events.published) == 1
    job = rich.jobs.get("race")
    assert job is not None and not job.needs_attention and job.resultVersionId == "v1"
    assert [(t.to, t.via) for t in job.history] == [("SUCCESS", "callback")]


def test_a_stale_finisher_finds_the_entry_claimed_and_leaves_it(rich: World) -> None:
    seed(rich, "stale", JobStatus.SUCCESS, QUIET, YOUNG, taskId="T", imageUrl=URL.format("b"), eventPending=True)
    stale = rich.jobs.get("stale")
    assert stale is not None and stale.needs_result_copy
    meanwhile: list = []
    rich.downloader = Interleaving(rich.downloader, meanwhile)  # type: ignore[assignment]
    meanwhile.append(lambda: rich.finisher.finish(stale))  # read before the claim, runs after it
    rich.finisher.finish(stale)
    assert len(rich.media.writes) == 1 and len(rich.events.published) == 1
    assert len(rich.downloader.meanwhile) == 0


def test_a_crashed_claim_is_taken_over_once_its_lease_runs_out(rich: World) -> None:
    seed(rich, "crashed", JobStatus.SUCCESS, QUIET, YOUNG, taskId="T", imageUrl=URL.format("c"), eventPending=True)
    claim = sm.claim_delivery(rich.jobs.get("crashed"), rich.clock(), "copy")  # type: ignore[arg-type]
    rich.jobs.put(dataclasses.replace(claim.job, updatedAt=ago(rich, minutes=5)))  # and then the holder died
    rich.reconciler().run()
    assert rich.media.writes == [], "the claim is still held"
    rich.clock.advance(seconds=sm.DELIVERY_LEASE_SECONDS)
    rich.reconciler(quiet_seconds=0).run()
    job = rich.jobs.get("crashed")
    assert job is not None and job.resultKey and not job.needs_attention
    assert job.resultCopyAttempts == 2 and len(rich.events.published) == 1


# --- re-uploads of one target: an older result never replaces a newer one (issue 6, item 7) ---------


def test_an_older_upload_finishing_last_does_not_replace_the_newer_result(rich: World, images: SimpleNamespace) -> None:
    key = "inbox/alice/same.jpg"
    for name, sequencer in (("older", "0A"), ("newer", "0B")):
        seed(
            rich,
            name,
            JobStatus.IN_PROGRESS,
            QUIET,
            YOUNG,
            taskId=f"T-{name}",
            targetKey=key,
            targetSequencer=sequencer,
        )
    rich.downloader.results[URL.format("newer")] = DownloadedImage(images.webp, "png", "image/png")
    rich.applier().apply("newer", snap("SUCCESS", "100%", task_id="T-newer", imageUrl=URL.format("newer")), "poll")
    rich.applier().apply("older", snap("SUCCESS", "100%", task_id="T-older", imageUrl=URL.format("a")), "poll")
    assert rich.media.objects["results/alice/same.png"] == images.webp
    older, newer = rich.jobs.get("older"), rich.jobs.get("newer")
    assert newer is not None and newer.resultKey == "results/alice/same.png" and newer.resultVersionId == "v1"
    assert older is not None and older.status is JobStatus.SUCCESS
    assert older.resultKey is None and older.resultVersionId is None and not older.needs_attention
    assert (
        older.resultCopyError is not None and "superseded by a newer upload of the same target" in older.resultCopyError
    )
    assert sorted(e.jobId for e in rich.events.published) == ["newer", "older"]


def test_a_newer_upload_finishing_last_replaces_the_older_result(rich: World, images: SimpleNamespace) -> None:
    key = "inbox/alice/same.jpg"
    for name, at in (("older", "2024-10-16T09:00:00Z"), ("newer", "2024-10-16T09:00:05Z")):
        seed(rich, name, JobStatus.IN_PROGRESS, QUIET, YOUNG, taskId=f"T-{name}", targetKey=key, targetEventTime=at)
    rich.downloader.results[URL.format("newer")] = DownloadedImage(images.webp, "png", "image/png")
    rich.applier().apply("older", snap("SUCCESS", "100%", task_id="T-older", imageUrl=URL.format("a")), "poll")
    rich.applier().apply("newer", snap("SUCCESS", "100%", task_id="T-newer", imageUrl=URL.format("newer")), "poll")
    assert rich.media.objects["results/alice/same.png"] == images.webp
    assert rich.jobs.get("newer").resultVersionId == "v2"  # type: ignore[union-attr]


# --- jobs-API jobs whose upload never came (issue 7) ------------------------------------------------


def awaiting(world: World, job_id: str, expired_for: timedelta, age: timedelta = YOUNG) -> Job:
    """An AWAITING_UPLOAD job whose upload form expired `expired_for` ago (negative: not yet)."""
    now = world.clock()
    return world.jobs.put(
        make_job(
            jobId=job_id,
            status=JobStatus.AWAITING_UPLOAD,
            targetKey=f"uploads/{job_id}/target.png",
            origin="api",
            createdAt=iso(now - age),
            updatedAt=iso(now - age),
            uploadExpiresAt=iso(now - expired_for),
        )
    )


def test_a_job_whose_upload_never_came_ends_once_the_form_and_its_grace_are_over(world: World) -> None:
    from swapdrop.observability import metrics

    gone = awaiting(world, "gone", timedelta(seconds=301))
    awaiting(world, "at-the-limit", timedelta(seconds=300))
    awaiting(world, "in-grace", timedelta(seconds=10))
    awaiting(world, "form-open", timedelta(seconds=-600))

    report = world.reconciler().run()

    assert (report.examined, report.expired, report.timed_out) == (4, 1, 0)
    job = world.jobs.get("gone")
    assert job is not None and job.status is JobStatus.FAILURE
    assert job.failReason == f"target never uploaded: the upload form expired at {gone.uploadExpiresAt}"
    assert [(t.from_, t.to, t.via) for t in job.history] == [("AWAITING_UPLOAD", "FAILURE", "reconciler")]
    assert [j.jobId for j in world.events.published] == ["gone"]  # the outbox ran: the event is out
    assert "openShard" not in world.jobs.item("gone")
    for job_id in ("at-the-limit", "in-grace", "form-open"):
        other = world.jobs.get(job_id)
        assert other is not None and other.status is JobStatus.AWAITING_UPLOAD
    assert metrics.metric_set["UploadsExpired"]["Value"] == [1.0]


def test_the_upload_grace_is_the_reconcilers_parameter(world: World) -> None:
    awaiting(world, "a", timedelta(seconds=61))
    strict = world.reconciler(max_queue_wait_hours=24, upload_grace_seconds=60)
    assert world.reconciler().run().expired == 0  # the default grace (300 s) still runs
    assert strict.run().expired == 1


def test_an_awaiting_job_older_than_the_job_timeout_waits_for_its_form_not_the_timeout(world: World) -> None:
    """A long upload form (UploadUrlSeconds over the job timeout) is honoured, not cut short."""
    awaiting(world, "slow", timedelta(minutes=-30), age=OLD)
    report = world.reconciler().run()
    assert (report.timed_out, report.expired) == (0, 0)
    job = world.jobs.get("slow")
    assert job is not None and job.status is JobStatus.AWAITING_UPLOAD


def test_an_upload_that_lands_as_the_reconciler_expires_the_job_wins(world: World) -> None:
    awaiting(world, "raced", timedelta(seconds=400))
    world.jobs.before_next_replace(
        lambda store: store.concurrent_write(
            "raced", lambda j: sm.bind_upload(j, world.clock(), "v1", "0001", iso(world.clock())).job
        )
    )
    report = world.reconciler().run()
    assert report.expired == 0
    job = world.jobs.get("raced")
    assert job is not None and job.status is JobStatus.PENDING and job.targetVersionId == "v1"
    assert world.events.published == []
