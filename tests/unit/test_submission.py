"""submission.Submitter on fakes: claim, lease, checks, submit, and every outcome."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from swapdrop import state_machine as sm
from swapdrop.callback_token import token_for
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.submission import BACKOFF_MAX_SECONDS, Outcome, Upload, backoff_seconds
from swapdrop.upstream import Accepted, Rejected, Retryable, SwapImage

from .builders import BUCKET, CALLBACK_BASE, CALLBACK_SECRET, TASK_ID, snap, upload
from .conftest import World

TARGET_KEY = "inbox/alice/summer trip/café + friends.png"
LEASE = 900


@pytest.fixture
def seeded(world: World, images: SimpleNamespace) -> World:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put("faces/alice.backup.jpg", images.jpeg_other)  # not alice's face: ignored
    world.media.put(TARGET_KEY, images.png)
    return world


def the_upload() -> Upload:
    return upload(TARGET_KEY)


# --- the happy path ----------------------------------------------------------------------------


def test_happy_path_submits_once_with_hook_state_and_images(seeded: World, images: SimpleNamespace) -> None:
    seeded.policy = dataclasses.replace(seeded.policy, instance_id="1286541563528380416")
    seeded.gateway.script(Accepted(TASK_ID, 2, 22, "排队中，前面还有2个任务"))
    item = the_upload()

    result = seeded.submitter().submit(item, LEASE)

    assert result.outcome is Outcome.SUBMITTED
    assert result.job_id == item.job_id
    assert result.detail == TASK_ID
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.SUBMITTED
    assert job.taskId == TASK_ID
    assert job.queuePosition == 2
    assert job.attempts == 1
    assert job.leaseUntil is None
    assert job.face == "alice"
    assert job.sourceKey == "faces/alice.jpg"
    assert job.targetKey == TARGET_KEY
    assert job.bucket == BUCKET
    (request,) = seeded.gateway.requests
    assert request.notify_hook == f"{CALLBACK_BASE}/{item.job_id}?token={token_for(CALLBACK_SECRET, item.job_id)}"
    assert request.state == item.job_id
    assert request.source == SwapImage(images.jpeg, "image/jpeg")
    assert request.target == SwapImage(images.png, "image/png")
    assert request.instance_id == "1286541563528380416"
    assert seeded.events.published == []  # nothing finished yet


def test_mime_types_come_from_content_not_names(world: World, images: SimpleNamespace) -> None:
    world.media.put("faces/bob.png", images.webp)  # a WebP named .png
    world.media.put("inbox/bob/x.jpg", images.png)  # a PNG named .jpg
    world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    world.submitter().submit(upload("inbox/bob/x.jpg"), LEASE)
    (request,) = world.gateway.requests
    assert request.source.mime_type == "image/webp"
    assert request.target.mime_type == "image/png"


def test_the_same_upload_twice_is_submitted_once(seeded: World) -> None:
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    submitter = seeded.submitter()
    first = submitter.submit(the_upload(), LEASE)
    second = submitter.submit(the_upload(), LEASE)
    assert first.outcome is Outcome.SUBMITTED
    assert second.outcome is Outcome.DUPLICATE
    assert second.detail == "job is already SUBMITTED"
    assert len(seeded.gateway.requests) == 1
    assert len(seeded.jobs.items) == 1


def test_a_re_upload_is_a_new_job(seeded: World) -> None:
    seeded.gateway.script(Accepted("1", None, 1, ""), Accepted("2", None, 1, ""))
    submitter = seeded.submitter()
    first = submitter.submit(upload(TARGET_KEY, sequencer="0001"), LEASE)
    second = submitter.submit(upload(TARGET_KEY, sequencer="0002"), LEASE)
    assert first.job_id != second.job_id
    assert second.outcome is Outcome.SUBMITTED


def test_version_id_names_the_job_when_present() -> None:
    a = upload(TARGET_KEY, sequencer="0001", version_id="v1")
    b = upload(TARGET_KEY, sequencer="0002", version_id="v1")
    assert a.job_id == b.job_id
    assert a.job_id != upload(TARGET_KEY, sequencer="0001", version_id="v2").job_id


def test_a_concurrent_holder_keeps_the_job(seeded: World) -> None:
    item = the_upload()
    submitter = seeded.submitter()
    # another submitter claimed and took the job a moment ago; its lease still runs
    seeded.jobs.create(dataclasses.replace(_pending(seeded, item), attempts=1, leaseUntil=seeded.clock.epoch + 60))
    result = submitter.submit(item, LEASE)
    # kept (not dropped as a duplicate) until the holder's lease ends: if the holder died, this
    # delivery is what brings the job back
    assert (result.outcome, result.retry_after_seconds) == (Outcome.RETRY_LATER, 61)
    assert result.detail == "another submitter holds the job"
    assert seeded.gateway.requests == []
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.attempts == 1 and job.status is JobStatus.PENDING


def test_a_delivery_held_back_by_a_dead_holders_lease_takes_the_job_when_it_ends(seeded: World) -> None:
    """The local stack's crash case: the holder was killed after sending; its lease outlives the
    visibility timeout, so the redelivery must wait for the lease, then adopt the holder's task."""
    item = the_upload()
    submitter = seeded.submitter()
    seeded.jobs.create(dataclasses.replace(_pending(seeded, item), attempts=1, leaseUntil=seeded.clock.epoch + 60))
    seeded.gateway.recent = [snap("IN_PROGRESS", "30%", state=item.job_id)]
    assert submitter.submit(item, LEASE).outcome is Outcome.RETRY_LATER
    seeded.clock.advance(seconds=61)
    result = submitter.submit(item, LEASE)
    assert result.outcome is Outcome.SUBMITTED
    assert seeded.gateway.requests == []  # adopted, never sent twice
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.IN_PROGRESS and job.taskId == TASK_ID


def test_an_expired_lease_is_taken_over(seeded: World) -> None:
    item = the_upload()
    seeded.jobs.create(dataclasses.replace(_pending(seeded, item), attempts=1, leaseUntil=seeded.clock.epoch - 1))
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.SUBMITTED
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.attempts == 2


def _pending(world: World, item: Upload) -> Job:
    stamp = iso(world.clock())
    return Job(
        jobId=item.job_id,
        status=JobStatus.PENDING,
        bucket=item.bucket,
        targetKey=item.key,
        face="alice",
        createdAt=stamp,
        updatedAt=stamp,
    )


# --- rejections --------------------------------------------------------------------------------


def _wrong_bucket(w: World, i: SimpleNamespace) -> Upload:
    return upload(TARGET_KEY, bucket="someone-elses-bucket")


def _bad_layout(w: World, i: SimpleNamespace) -> Upload:
    w.media.put("inbox/loose.jpg", i.png)
    return upload("inbox/loose.jpg")


def _missing_face(w: World, i: SimpleNamespace) -> Upload:
    del w.media.objects["faces/alice.jpg"]
    return the_upload()


def _ambiguous_face(w: World, i: SimpleNamespace) -> Upload:
    w.media.put("faces/alice.png", i.png)
    return the_upload()


def _face_too_big(w: World, i: SimpleNamespace) -> Upload:
    w.media.put("faces/alice.jpg", i.jpeg + b"\x00" * (w.policy.max_image_bytes + 1 - len(i.jpeg)))
    return the_upload()


def _target_too_big(w: World, i: SimpleNamespace) -> Upload:
    w.media.put(TARGET_KEY, i.png + b"\x00" * (w.policy.max_image_bytes + 5000))
    return the_upload()


def _missing_target(w: World, i: SimpleNamespace) -> Upload:
    del w.media.objects[TARGET_KEY]
    return the_upload()


def _pdf_target(w: World, i: SimpleNamespace) -> Upload:
    w.media.put(TARGET_KEY, i.pdf)
    return the_upload()


def _gif_target(w: World, i: SimpleNamespace) -> Upload:
    w.media.put(TARGET_KEY, i.gif)
    return the_upload()


def _truncated_source(w: World, i: SimpleNamespace) -> Upload:
    w.media.put("faces/alice.jpg", i.truncated_jpeg)
    return the_upload()


def _bomb_target(w: World, i: SimpleNamespace) -> Upload:
    w.media.put(TARGET_KEY, i.bomb_png)
    return the_upload()


def _same_image(w: World, i: SimpleNamespace) -> Upload:
    w.media.put(TARGET_KEY, i.jpeg)
    return the_upload()


@pytest.mark.parametrize(
    ("arrange", "reason", "source_key"),
    [
        (_wrong_bucket, "bucket 'someone-elses-bucket' is not this Swapdrop's bucket 'bkt'", None),
        (_bad_layout, "'inbox/loose.jpg' is not in a face folder", None),
        (_missing_face, "no face named 'alice': upload faces/alice.jpg (or .jpeg, .png, .webp) first", None),
        (_ambiguous_face, "face 'alice' is ambiguous: faces/alice.jpg, faces/alice.png all exist; keep only one", None),
        (
            _face_too_big,
            "the face image 'faces/alice.jpg' is 100,001 bytes, over the limit of 100,000 bytes",
            "faces/alice.jpg",
        ),
        (_target_too_big, f"the target '{TARGET_KEY}' is ", "faces/alice.jpg"),
        (_missing_target, f"the target '{TARGET_KEY}' no longer exists", "faces/alice.jpg"),
        (_pdf_target, f"the target '{TARGET_KEY}' is a PDF document, not a JPEG, PNG or WebP image", "faces/alice.jpg"),
        (_gif_target, f"the target '{TARGET_KEY}' is a GIF", "faces/alice.jpg"),
        (
            _truncated_source,
            "the face image 'faces/alice.jpg' looks like a JPEG file but its header is damaged or truncated",
            "faces/alice.jpg",
        ),
        (_bomb_target, "has too many pixels to process safely", "faces/alice.jpg"),
        (
            _same_image,
            "the target is the same image as the face 'faces/alice.jpg'; there is nothing to swap",
            "faces/alice.jpg",
        ),
    ],
)
def test_bad_input_is_rejected_with_its_reason_and_never_sent(
    seeded: World, images: SimpleNamespace, arrange, reason: str, source_key: str | None
) -> None:
    item = arrange(seeded, images)
    result = seeded.submitter().submit(item, LEASE)

    assert result.outcome is Outcome.REJECTED
    assert reason in result.detail
    assert seeded.gateway.requests == []
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.REJECTED
    assert job.failReason == result.detail
    assert job.sourceKey == source_key
    assert job.finishedAt is not None
    # the terminal transition was announced through the finisher, and the outbox emptied
    assert [(j.jobId, j.status) for j in seeded.events.published] == [(item.job_id, JobStatus.REJECTED)]
    assert job.eventPending is False
    assert "openShard" not in seeded.jobs.item(item.job_id)


def test_too_big_target_reason_names_size_and_limit(seeded: World, images: SimpleNamespace) -> None:
    item = _target_too_big(seeded, images)
    size = len(seeded.media.objects[TARGET_KEY])
    result = seeded.submitter().submit(item, LEASE)
    assert result.detail == f"the target '{TARGET_KEY}' is {size:,} bytes, over the limit of 100,000 bytes (0.1 MiB)"


def test_face_is_recorded_even_when_the_face_image_is_missing(seeded: World, images: SimpleNamespace) -> None:
    item = _missing_face(seeded, images)
    seeded.submitter().submit(item, LEASE)
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.face == "alice" and job.sourceKey is None


def test_a_rejected_job_is_not_retried_on_redelivery(seeded: World, images: SimpleNamespace) -> None:
    item = _missing_face(seeded, images)
    submitter = seeded.submitter()
    submitter.submit(item, LEASE)
    seeded.media.put("faces/alice.jpg", images.jpeg)  # too late for this upload
    again = submitter.submit(item, LEASE)
    assert again.outcome is Outcome.DUPLICATE
    assert seeded.gateway.requests == []
    assert len(seeded.events.published) == 1


@pytest.mark.parametrize("held", [False, True], ids=["released", "lease-held"])
def test_a_cancelled_pending_job_is_never_sent(seeded: World, held: bool) -> None:
    """Cancelled before (or while) a submitter had it: every later delivery is a duplicate, not a retry."""
    item = the_upload()
    lease = seeded.clock.epoch + 600 if held else None
    seeded.jobs.create(dataclasses.replace(_pending(seeded, item), attempts=1, leaseUntil=lease))
    update_job(seeded.jobs, item.job_id, lambda j: sm.cancel(j, seeded.clock(), "cancelled by the user"))
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    result = seeded.submitter().submit(item, LEASE)
    assert (result.outcome, result.detail) == (Outcome.DUPLICATE, "job is already CANCELLED")
    assert seeded.gateway.requests == []
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.attempts == 1


def test_an_unpublished_rejection_stays_in_the_outbox(seeded: World, images: SimpleNamespace) -> None:
    seeded.events.fail_with = RuntimeError("EventBridge throttled")
    item = _missing_face(seeded, images)
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.REJECTED
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.eventPending is True
    assert "openShard" in seeded.jobs.item(item.job_id)


# --- upstream outcomes ---------------------------------------------------------------------------


def test_upstream_rejection_fails_the_job_with_its_reason(seeded: World) -> None:
    reason = "the swap API refused the job (code 24 BANNED_PROMPT): 可能包含敏感词"
    seeded.gateway.script(Rejected(reason))
    item = the_upload()
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.FAILED
    assert result.detail == reason
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILURE
    assert job.failReason == reason
    assert [j.status for j in seeded.events.published] == [JobStatus.FAILURE]


def test_retryable_answer_releases_the_job_and_asks_for_backoff(seeded: World) -> None:
    seeded.gateway.script(Retryable("code 23 QUEUE_REJECTED: 队列已满"))
    item = the_upload()
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.RETRY_LATER
    assert result.retry_after_seconds is not None
    assert 22 <= result.retry_after_seconds <= 30
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.PENDING
    assert job.leaseUntil is None
    assert job.lastError == "code 23 QUEUE_REJECTED: 队列已满"
    assert job.attempts == 1
    assert seeded.events.published == []


def test_redelivery_after_retry_later_tries_again_with_longer_backoff(seeded: World) -> None:
    seeded.gateway.script(Retryable("HTTP 502"), Retryable("HTTP 502"), Accepted(TASK_ID, None, 1, ""))
    submitter = seeded.submitter()
    first = submitter.submit(the_upload(), LEASE)
    second = submitter.submit(the_upload(), LEASE)
    third = submitter.submit(the_upload(), LEASE)
    assert [r.outcome for r in (first, second, third)] == [Outcome.RETRY_LATER, Outcome.RETRY_LATER, Outcome.SUBMITTED]
    assert second.retry_after_seconds is not None and 45 <= second.retry_after_seconds <= 60
    job = seeded.jobs.get(first.job_id)
    assert job is not None and job.attempts == 3 and job.lastError is None


def test_gives_up_after_max_attempts(seeded: World) -> None:
    seeded.gateway.script(*[Retryable("HTTP 503")] * 3)
    submitter = seeded.submitter()
    results = [submitter.submit(the_upload(), LEASE) for _ in range(3)]
    assert [r.outcome for r in results] == [Outcome.RETRY_LATER, Outcome.RETRY_LATER, Outcome.FAILED]
    assert results[-1].detail == "gave up after 3 submit attempts; last error: HTTP 503"
    job = seeded.jobs.get(results[0].job_id)
    assert job is not None
    assert job.status is JobStatus.FAILURE
    assert job.failReason == "gave up after 3 submit attempts; last error: HTTP 503"
    assert len(seeded.events.published) == 1
    assert submitter.submit(the_upload(), LEASE).outcome is Outcome.DUPLICATE
    assert len(seeded.gateway.requests) == 3


def test_ambiguous_timeout_then_the_tasks_callback_means_no_resubmit(seeded: World) -> None:
    seeded.gateway.script(Retryable("read timeout", maybe_accepted=True))
    item = the_upload()
    submitter = seeded.submitter()
    assert submitter.submit(item, LEASE).outcome is Outcome.RETRY_LATER
    # the upstream did create the task; its callback (our state, our token) arrives
    seeded.applier().apply(item.job_id, snap("SUBMITTED", "0%", state=item.job_id), via="callback")
    again = submitter.submit(item, LEASE)
    assert again.outcome is Outcome.DUPLICATE
    assert len(seeded.gateway.requests) == 1
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.SUBMITTED and job.taskId == TASK_ID


def test_callback_during_an_ambiguous_submit_counts_as_submitted(seeded: World) -> None:
    item = the_upload()
    seeded.gateway.during_submit = lambda _: seeded.applier().apply(
        item.job_id, snap("IN_PROGRESS", "10%", state=item.job_id), via="callback"
    )
    seeded.gateway.script(Retryable("read timeout", maybe_accepted=True))
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.SUBMITTED
    assert result.detail == TASK_ID
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.IN_PROGRESS and job.lastError is None


def test_callback_before_the_accept_is_recorded_keeps_its_progress(seeded: World) -> None:
    item = the_upload()
    seeded.gateway.during_submit = lambda _: seeded.applier().apply(
        item.job_id, snap("IN_PROGRESS", "35%"), via="callback"
    )
    seeded.gateway.script(Accepted(TASK_ID, 4, 22, ""))
    assert seeded.submitter().submit(item, LEASE).outcome is Outcome.SUBMITTED
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.IN_PROGRESS
    assert job.progress == 35
    assert job.leaseUntil is None


def test_a_second_upstream_task_is_not_followed(seeded: World) -> None:
    item = the_upload()
    seeded.gateway.during_submit = lambda _: seeded.applier().apply(item.job_id, snap("SUBMITTED"), via="callback")
    seeded.gateway.script(Accepted("9999999999999999", None, 1, ""))
    seeded.submitter().submit(item, LEASE)
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.taskId == TASK_ID


@pytest.mark.parametrize("where", ["read", "gateway"])
def test_an_unexpected_error_releases_the_lease_and_is_raised(seeded: World, where: str) -> None:
    error = RuntimeError("S3 is having a day")
    if where == "read":
        seeded.media.fail_reads_with = error
    else:
        seeded.gateway.script(error)
    item = the_upload()
    submitter = seeded.submitter()
    with pytest.raises(RuntimeError, match="S3 is having a day"):
        submitter.submit(item, LEASE)
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert job.status is JobStatus.PENDING
    assert job.leaseUntil is None
    assert job.lastError == "internal error (RuntimeError); will retry"
    # the redelivery can take the job at once, without waiting for a lease to expire
    seeded.media.fail_reads_with = None
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    again = submitter.submit(item, LEASE)
    assert again.outcome is Outcome.SUBMITTED
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.attempts == 2


def test_the_lease_covers_the_invocation(seeded: World) -> None:
    item = the_upload()
    held: list[int | None] = []

    def look(_: object) -> None:
        job = seeded.jobs.get(item.job_id)
        held.append(job.leaseUntil if job else None)

    seeded.gateway.during_submit = look
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    seeded.submitter().submit(item, 321)
    assert held == [seeded.clock.epoch + 321]


# --- backoff -----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    top = [backoff_seconds(attempt, rng=lambda low, high: high) for attempt in range(1, 10)]
    assert top == [30, 60, 120, 240, 480, 900, 900, 900, 900]
    assert max(top) == BACKOFF_MAX_SECONDS
    bottom = [backoff_seconds(attempt, rng=lambda low, high: low) for attempt in (1, 2, 6)]
    assert bottom == [22, 45, 675]


def test_backoff_with_real_jitter_stays_in_range() -> None:
    for attempt in range(0, 12):
        ceiling = min(900, 30 * 2 ** max(0, attempt - 1))
        for _ in range(20):
            assert int(ceiling * 0.75) <= backoff_seconds(attempt) <= ceiling


def test_backoff_is_at_least_one_second() -> None:
    assert backoff_seconds(1, rng=lambda low, high: 0.2) == 1


# --- versioned targets ---------------------------------------------------------------------------


def test_the_version_the_event_announced_is_the_one_submitted(seeded: World, images: SimpleNamespace) -> None:
    seeded.media.put(TARGET_KEY, images.png, version_id="v1")
    seeded.media.put(TARGET_KEY, images.webp, version_id="v2")  # overwritten since the v1 event
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    item = upload(TARGET_KEY, version_id="v1")
    seeded.submitter().submit(item, LEASE)
    (request,) = seeded.gateway.requests
    assert request.target == SwapImage(images.png, "image/png")
    assert (TARGET_KEY, "v1") in seeded.media.reads
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.targetVersionId == "v1"


def test_a_version_deleted_since_the_event_is_rejected(seeded: World) -> None:
    item = upload(TARGET_KEY, version_id="gone")
    result = seeded.submitter().submit(item, LEASE)
    assert result.outcome is Outcome.REJECTED
    assert result.detail == f"the target '{TARGET_KEY}' no longer exists"


# --- a worker that dies between sending and recording (issue 6, item 1) ---------------------------


class WorkerKilled(BaseException):
    """A SIGKILL as the submitter sees it: nothing after this line runs, no lease is released."""


def test_a_worker_killed_after_sending_is_not_submitted_twice(seeded: World) -> None:
    item = the_upload()
    submitter = seeded.submitter()

    def killed(_request: object) -> None:
        raise WorkerKilled

    seeded.gateway.during_submit = killed
    with pytest.raises(WorkerKilled):
        submitter.submit(item, LEASE)
    seeded.gateway.during_submit = None
    # The swap went out and the upstream created its task; nobody recorded it.
    seeded.gateway.recent = [snap("IN_PROGRESS", "20%", task_id="T-other"), snap("SUBMITTED", "0%", state=item.job_id)]
    seeded.clock.advance(seconds=LEASE + 1)  # SQS redelivers once the visibility timeout runs out
    again = submitter.submit(item, LEASE)
    assert again.outcome is Outcome.SUBMITTED and again.detail == TASK_ID
    assert len(seeded.gateway.requests) == 1, "the redelivery adopted the task rather than sending again"
    assert seeded.gateway.recent_calls == 1
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert (job.status, job.taskId, job.leaseUntil, job.attempts) == (JobStatus.SUBMITTED, TASK_ID, None, 2)
    assert [(t.from_, t.to, t.via) for t in job.history] == [("PENDING", "SUBMITTED", "submit")]


def test_a_lost_answer_whose_task_is_not_listed_is_sent_again(seeded: World) -> None:
    seeded.gateway.script(Retryable("read timeout", maybe_accepted=True), Accepted(TASK_ID, None, 1, ""))
    item = the_upload()
    submitter = seeded.submitter()
    assert submitter.submit(item, LEASE).outcome is Outcome.RETRY_LATER
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.submitInDoubt
    seeded.gateway.recent = []  # the task list exists, and has no task of ours
    assert submitter.submit(item, LEASE).outcome is Outcome.SUBMITTED
    assert seeded.gateway.recent_calls == 1 and len(seeded.gateway.requests) == 2
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.status is JobStatus.SUBMITTED and not job.submitInDoubt


def test_an_error_while_sending_leaves_the_attempt_in_doubt(seeded: World) -> None:
    seeded.gateway.script(ConnectionResetError("reset mid-body"))
    item = the_upload()
    with pytest.raises(ConnectionResetError):
        seeded.submitter().submit(item, LEASE)
    job = seeded.jobs.get(item.job_id)
    assert job is not None and job.leaseUntil is None and job.submitInDoubt


def test_a_clean_attempt_costs_no_task_list_lookup(seeded: World) -> None:
    seeded.gateway.script(Retryable("HTTP 502"), Accepted(TASK_ID, None, 1, ""))
    submitter = seeded.submitter()
    submitter.submit(the_upload(), LEASE)
    submitter.submit(the_upload(), LEASE)
    assert seeded.gateway.recent_calls == 0


def test_the_claim_records_the_targets_order_for_the_result(seeded: World) -> None:
    item = Upload(BUCKET, TARGET_KEY, "00670F8E19D1F5E2A1", event_time="2024-10-16T09:59:21.000Z")
    seeded.gateway.script(Accepted(TASK_ID, None, 1, ""))
    seeded.submitter().submit(item, LEASE)
    job = seeded.jobs.get(item.job_id)
    assert job is not None
    assert (job.targetSequencer, job.targetEventTime) == ("00670F8E19D1F5E2A1", "2024-10-16T09:59:21.000Z")
