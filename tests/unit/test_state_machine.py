"""state_machine: every rule in its docstring, decided as pure functions."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from swapdrop import state_machine as sm
from swapdrop.jobs import COPY, EVENT, Job, JobStatus, iso

from .builders import TASK_ID, make_job, snap

NOW = datetime(2024, 10, 16, 10, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


def submitted(**overrides: object) -> Job:
    return make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1, **overrides)


# --- snapshots -------------------------------------------------------------------------------


def test_in_progress_then_submitted_keeps_status_and_the_highest_progress() -> None:
    job = sm.apply_snapshot(submitted(), NOW, snap("IN_PROGRESS", "60%")).job
    decision = sm.apply_snapshot(job, LATER, snap("SUBMITTED", "30%"))
    assert decision.job.status is JobStatus.IN_PROGRESS
    assert decision.job.progress == 60
    assert decision.changed is False
    assert decision.refusal is None


def test_progress_rises_within_a_status_and_never_falls() -> None:
    job = sm.apply_snapshot(submitted(), NOW, snap("IN_PROGRESS", "30%")).job
    rising = sm.apply_snapshot(job, LATER, snap("IN_PROGRESS", "45%"))
    assert rising.changed and rising.job.progress == 45
    assert rising.job.updatedAt == iso(LATER)
    falling = sm.apply_snapshot(rising.job, LATER, snap("IN_PROGRESS", "10%"))
    assert falling.changed is False
    assert falling.job.progress == 45


def test_terminal_is_final() -> None:
    done = sm.apply_snapshot(submitted(), NOW, snap("SUCCESS", "100%", imageUrl="https://cdn/r.png")).job
    for late in (
        snap("FAILURE", "", failReason="boom"),
        snap("IN_PROGRESS", "99%"),
        snap("CANCEL"),
        snap("SUCCESS", "100%", imageUrl="https://cdn/other.png"),
    ):
        decision = sm.apply_snapshot(done, LATER, late)
        assert decision.changed is False
        assert decision.job == done
        assert decision.refusal is None


def test_duplicate_snapshot_changes_nothing() -> None:
    first = sm.apply_snapshot(submitted(), NOW, snap("IN_PROGRESS", "45%"))
    assert first.changed
    again = sm.apply_snapshot(first.job, LATER, snap("IN_PROGRESS", "45%"))
    assert again.changed is False
    assert again.job == first.job  # not even updatedAt moves


def test_snapshot_for_another_task_is_refused() -> None:
    job = submitted()
    decision = sm.apply_snapshot(job, NOW, snap("SUCCESS", "100%", task_id="999", imageUrl="https://x/r.png"))
    assert decision.changed is False
    assert decision.job == job
    assert decision.refusal is not None
    assert "999" in decision.refusal and TASK_ID in decision.refusal


def test_snapshot_whose_state_names_another_job_is_refused() -> None:
    job = submitted()
    decision = sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "50%", state="someone-elses-job"))
    assert decision.changed is False
    assert decision.refusal == "snapshot's state does not name this job"


def test_snapshot_naming_this_job_in_state_is_applied() -> None:
    job = submitted()
    decision = sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "50%", state=job.jobId))
    assert decision.changed and decision.job.progress == 50


def test_snapshot_adopts_the_task_when_the_job_has_none_and_clears_the_lease() -> None:
    pending = make_job(status=JobStatus.PENDING, attempts=1, leaseUntil=int(NOW.timestamp()) + 600)
    decision = sm.apply_snapshot(pending, NOW, snap("SUBMITTED", "0%"))
    assert decision.changed
    assert decision.job.taskId == TASK_ID
    assert decision.job.status is JobStatus.SUBMITTED
    assert decision.job.leaseUntil is None
    assert decision.job.attempts == 1


def test_not_start_and_modal_map_forward() -> None:
    assert sm.apply_snapshot(make_job(), NOW, snap("NOT_START")).job.status is JobStatus.SUBMITTED
    assert sm.apply_snapshot(submitted(), NOW, snap("MODAL", "10%")).job.status is JobStatus.IN_PROGRESS


def test_snapshot_past_pending_clears_the_queue_position() -> None:
    job = submitted(queuePosition=2)
    assert sm.apply_snapshot(job, NOW, snap("IN_PROGRESS", "5%")).job.queuePosition is None


def test_cancel_becomes_failure_with_a_cancelled_reason() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("CANCEL", "", failReason="user cancelled"))
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason == "cancelled upstream: user cancelled"
    bare = sm.apply_snapshot(submitted(), NOW, snap("CANCEL"))
    assert bare.job.failReason == "cancelled upstream"


def test_failure_keeps_the_upstream_reason_verbatim() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("FAILURE", "", failReason="执行超时 10 分钟"))
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason is not None
    assert "执行超时 10 分钟" in decision.job.failReason
    assert decision.became_terminal


def test_failure_without_fail_reason_uses_the_description_or_says_so() -> None:
    described = sm.apply_snapshot(submitted(), NOW, snap("FAILURE", description="no face found in the target"))
    assert "no face found in the target" in (described.job.failReason or "")
    silent = sm.apply_snapshot(submitted(), NOW, snap("FAILURE"))
    assert silent.job.failReason == "upstream reported FAILURE without a reason"


def test_success_records_the_image_url_and_full_progress() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("SUCCESS", "", imageUrl="https://cdn/r.png"))
    assert decision.job.status is JobStatus.SUCCESS
    assert decision.job.imageUrl == "https://cdn/r.png"
    assert decision.job.progress == 100
    assert decision.job.needs_result_copy


def test_success_without_an_image_url_is_a_failure() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("SUCCESS", "100%"))
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason == "upstream reported SUCCESS without an image URL"
    assert decision.became_terminal


def test_becoming_terminal_happens_once_and_stamps_the_job() -> None:
    job = submitted(queuePosition=1)
    first = sm.apply_snapshot(job, NOW, snap("FAILURE", "", failReason="x"))
    assert first.became_terminal and first.changed
    assert first.job.finishedAt == iso(NOW)
    assert first.job.eventPending is True
    assert first.job.queuePosition is None
    published = sm.record_event_published(first.job, LATER).job
    assert published.eventPending is False
    again = sm.apply_snapshot(published, LATER + timedelta(minutes=1), snap("FAILURE", "", failReason="x"))
    assert again.became_terminal is False
    assert again.job.eventPending is False
    assert again.job.finishedAt == iso(NOW)


def test_progress_change_is_not_terminal() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("IN_PROGRESS", "5%"))
    assert decision.changed and not decision.became_terminal
    assert decision.job.finishedAt is None and decision.job.eventPending is False


STEPS = [
    ("SUBMITTED", "0%", None),
    ("IN_PROGRESS", "30%", None),
    ("IN_PROGRESS", "60%", None),
    ("SUCCESS", "100%", "https://cdn.example/r.png"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_delivery_order_ends_in_success_and_never_moves_back(order: tuple[int, ...]) -> None:
    # every order of the four callbacks, each delivered twice (duplicates are common)
    deliveries = [STEPS[i] for i in order for _ in range(2)]
    job = submitted()
    for status, progress, url in deliveries:
        before = job
        decision = sm.apply_snapshot(job, NOW, snap(status, progress, imageUrl=url))
        assert decision.refusal is None
        job = decision.job
        assert job.status.rank >= before.status.rank
        assert job.progress >= before.progress
        if before.status.is_terminal:
            assert job == before
    assert job.status is JobStatus.SUCCESS
    assert job.progress == 100
    assert job.imageUrl == "https://cdn.example/r.png"
    assert_history_moves_forward(job)


def assert_history_moves_forward(job: Job) -> None:
    """The chaos suite's invariant, on the record itself: each step leaves where the last one ended,
    to a higher rank, and nothing follows a terminal status."""
    steps = job.history
    assert steps, "a job that changed status has a history"
    for earlier, later in itertools.pairwise(steps):
        assert later.from_ == earlier.to
        assert later.at >= earlier.at
    for step in steps:
        assert JobStatus(step.to).rank > JobStatus(step.from_).rank
        assert step.via in {"submit", "callback", "poll", "api", "reconciler"}
    assert steps[-1].to == job.status.value


def test_every_path_records_its_status_changes_with_where_they_came_from() -> None:
    lease = int(NOW.timestamp()) + 900
    job = sm.start_attempt(make_job(), NOW, lease).job
    job = sm.record_accepted(job, NOW, TASK_ID, 2).job
    job = sm.apply_snapshot(job, LATER, snap("IN_PROGRESS", "10%"), via="poll").job
    job = sm.apply_snapshot(job, LATER, snap("SUCCESS", "100%", imageUrl="https://x/r.png"), via="callback").job
    assert [(t.from_, t.to, t.via) for t in job.history] == [
        ("PENDING", "SUBMITTED", "submit"),
        ("SUBMITTED", "IN_PROGRESS", "poll"),
        ("IN_PROGRESS", "SUCCESS", "callback"),
    ]
    assert_history_moves_forward(job)
    for final in (
        sm.reject(make_job(), NOW, "bad").job,
        sm.time_out(make_job(), NOW, 60).job,
        sm.record_final_failure(make_job(), NOW, "code 24").job,
    ):
        assert_history_moves_forward(final)
        assert len(final.history) == 1
    assert sm.time_out(make_job(), NOW, 60).job.history[0].via == "reconciler"


def test_a_status_change_without_a_known_via_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="via"):
        sm.apply_snapshot(submitted(), NOW, snap("IN_PROGRESS", "1%"), via="carrier pigeon")


def test_the_terminal_transition_opens_the_outbox_and_hands_its_writer_the_first_claim() -> None:
    decision = sm.apply_snapshot(submitted(), NOW, snap("SUCCESS", "100%", imageUrl="https://x/r.png"))
    assert decision.became_terminal and decision.claimed == COPY
    assert list(decision.job.deliveries) == [COPY, EVENT]
    assert decision.job.deliveries[COPY].claimUntil == int(NOW.timestamp()) + sm.DELIVERY_LEASE_SECONDS
    assert sm.claim_delivery(decision.job, LATER, COPY).claimed is None  # a second claimer is refused
    assert sm.claim_delivery(decision.job, LATER, EVENT).claimed is None  # not its turn yet
    failed = sm.apply_snapshot(submitted(), NOW, snap("FAILURE", "", failReason="x"))
    assert failed.claimed == EVENT and list(failed.job.deliveries) == [EVENT]


# --- the submitter's facts --------------------------------------------------------------------


def test_start_attempt_takes_a_free_pending_job() -> None:
    lease = int(NOW.timestamp()) + 900
    decision = sm.start_attempt(make_job(attempts=0), NOW, lease)
    assert decision.changed
    assert decision.job.attempts == 1
    assert decision.job.leaseUntil == lease
    assert sm.start_attempt(make_job(attempts=2), NOW, lease).job.attempts == 3


def test_start_attempt_refuses_while_a_lease_is_held() -> None:
    job = make_job(attempts=1, leaseUntil=int(NOW.timestamp()) + 1)
    decision = sm.start_attempt(job, NOW, int(NOW.timestamp()) + 900)
    assert decision.changed is False
    assert decision.refusal == "another submitter holds the job"
    assert decision.job.attempts == 1


@pytest.mark.parametrize("expired_by", [0, 1, 3600])
def test_start_attempt_takes_a_job_whose_lease_expired(expired_by: int) -> None:
    job = make_job(attempts=1, leaseUntil=int(NOW.timestamp()) - expired_by)
    decision = sm.start_attempt(job, NOW, int(NOW.timestamp()) + 900)
    assert decision.changed and decision.job.attempts == 2


@pytest.mark.parametrize("status", ["SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE", "REJECTED", "CANCELLED"])
def test_start_attempt_refuses_a_job_that_is_not_pending(status: str) -> None:
    decision = sm.start_attempt(make_job(status=JobStatus(status), attempts=1), NOW, 0)
    assert decision.changed is False
    assert decision.refusal == f"job is already {status}"


def test_record_accepted_submits_a_pending_job() -> None:
    job = make_job(attempts=1, leaseUntil=123, lastError="earlier timeout")
    decision = sm.record_accepted(job, NOW, TASK_ID, 2)
    assert decision.changed
    assert decision.job.status is JobStatus.SUBMITTED
    assert decision.job.taskId == TASK_ID
    assert decision.job.queuePosition == 2
    assert decision.job.leaseUntil is None
    assert decision.job.lastError is None


def test_record_accepted_after_the_callback_got_there_first_keeps_its_status() -> None:
    job = make_job(status=JobStatus.IN_PROGRESS, taskId=TASK_ID, progress=40, attempts=1)
    decision = sm.record_accepted(job, NOW, TASK_ID, None)
    assert decision.refusal is None
    assert decision.job.status is JobStatus.IN_PROGRESS
    assert decision.job.progress == 40


def test_record_accepted_for_another_task_is_refused() -> None:
    job = make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=2)
    decision = sm.record_accepted(job, NOW, "2222", None)
    assert decision.changed is False
    assert decision.refusal is not None and "2222" in decision.refusal
    assert decision.job.taskId == TASK_ID


def test_record_accepted_on_a_terminal_job_is_refused() -> None:
    job = make_job(status=JobStatus.FAILURE, failReason="timed out")
    decision = sm.record_accepted(job, NOW, TASK_ID, None)
    assert decision.changed is False and decision.refusal == "job is already FAILURE"


def test_retryable_failure_releases_the_job_with_the_error() -> None:
    job = make_job(attempts=1, leaseUntil=999)
    decision = sm.record_retryable_failure(job, NOW, "queue full", max_attempts=3)
    assert decision.job.status is JobStatus.PENDING
    assert decision.job.leaseUntil is None
    assert decision.job.lastError == "queue full"
    assert not decision.became_terminal


def test_retryable_failure_at_the_last_attempt_gives_up_with_the_reason() -> None:
    job = make_job(attempts=3, leaseUntil=999)
    decision = sm.record_retryable_failure(job, NOW, "queue full", max_attempts=3)
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason == "gave up after 3 submit attempts; last error: queue full"
    assert decision.became_terminal
    assert decision.job.leaseUntil is None
    assert decision.job.eventPending


def test_retryable_failure_after_a_callback_advanced_the_job_is_ignored() -> None:
    job = make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=3)
    decision = sm.record_retryable_failure(job, NOW, "read timeout", max_attempts=3)
    assert decision.changed is False and decision.job == job


def test_release_attempt_only_touches_pending_jobs() -> None:
    released = sm.release_attempt(make_job(attempts=1, leaseUntil=999), NOW, "internal error (KeyError)")
    assert released.job.leaseUntil is None and released.job.lastError == "internal error (KeyError)"
    done = make_job(status=JobStatus.SUBMITTED, taskId=TASK_ID)
    assert sm.release_attempt(done, NOW, "x").changed is False


def test_final_failure_ends_an_open_job_and_leaves_a_terminal_one() -> None:
    decision = sm.record_final_failure(make_job(attempts=1), NOW, "HTTP 401: the API key was refused")
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason == "HTTP 401: the API key was refused"
    rejected = make_job(status=JobStatus.REJECTED, failReason="bad")
    assert sm.record_final_failure(rejected, NOW, "x").changed is False


def test_reject_only_from_pending() -> None:
    decision = sm.reject(make_job(attempts=1), NOW, "no face named 'alice'")
    assert decision.job.status is JobStatus.REJECTED
    assert decision.job.failReason == "no face named 'alice'"
    assert decision.became_terminal and decision.job.eventPending
    for status in ("SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE", "REJECTED"):
        job = make_job(status=JobStatus(status), taskId=TASK_ID)
        assert sm.reject(job, NOW, "late").changed is False


# --- cancel (a person's request, through the jobs API) ------------------------------------------

CANCELLED_BY_USER = "cancelled by the user"


@pytest.mark.parametrize(
    "job",
    [
        make_job(attempts=1, lastError="earlier timeout"),
        make_job(attempts=1, leaseUntil=int(NOW.timestamp()) + 600, submitInDoubt=True),
        submitted(queuePosition=3),
        make_job(status=JobStatus.IN_PROGRESS, taskId=TASK_ID, progress=45, attempts=1),
    ],
    ids=["pending", "pending-held", "submitted", "in-progress"],
)
def test_cancel_ends_an_unfinished_job_like_any_terminal_transition(job: Job) -> None:
    decision = sm.cancel(job, NOW, CANCELLED_BY_USER)
    assert decision.changed and decision.became_terminal and decision.refusal is None
    cancelled = decision.job
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.failReason == CANCELLED_BY_USER
    assert cancelled.finishedAt == iso(NOW) and cancelled.updatedAt == iso(NOW)
    assert (cancelled.leaseUntil, cancelled.queuePosition, cancelled.submitInDoubt) == (None, None, False)
    assert cancelled.progress == job.progress and cancelled.taskId == job.taskId
    # the outbox: the event only (no result to copy), its claim held by the writer of the cancel
    assert list(cancelled.deliveries) == [EVENT] and decision.claimed == EVENT
    assert cancelled.eventPending and cancelled.needs_attention
    assert [(t.from_, t.to, t.at, t.via) for t in cancelled.history] == [
        (job.status.value, "CANCELLED", iso(NOW), "api")
    ]
    assert_history_moves_forward(cancelled)


def test_cancel_keeps_the_history_before_it_and_names_its_door() -> None:
    job = sm.start_attempt(make_job(), NOW, int(NOW.timestamp()) + 900).job
    job = sm.record_accepted(job, NOW, TASK_ID, 2).job
    job = sm.cancel(job, LATER, CANCELLED_BY_USER, via="reconciler").job
    assert [(t.from_, t.to, t.via) for t in job.history] == [
        ("PENDING", "SUBMITTED", "submit"),
        ("SUBMITTED", "CANCELLED", "reconciler"),
    ]
    assert_history_moves_forward(job)
    with pytest.raises(ValueError, match="via"):
        sm.cancel(submitted(), NOW, CANCELLED_BY_USER, via="carrier pigeon")


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE", "REJECTED", "CANCELLED"])
def test_cancel_keeps_a_terminal_job_and_says_its_status(status: str) -> None:
    job = make_job(status=JobStatus(status), taskId=TASK_ID, failReason="earlier", eventPending=False)
    decision = sm.cancel(job, NOW, CANCELLED_BY_USER)
    assert decision.changed is False and decision.became_terminal is False
    assert decision.job == job
    assert decision.refusal == f"job is already {status}"


def test_a_cancelled_pending_job_is_never_taken_for_a_submit() -> None:
    held = make_job(attempts=1, leaseUntil=int(NOW.timestamp()) + 600)
    cancelled = sm.cancel(held, NOW, CANCELLED_BY_USER).job
    later = LATER + timedelta(hours=1)
    taken = sm.start_attempt(cancelled, later, int(later.timestamp()) + 900)
    assert taken.changed is False and taken.refusal == "job is already CANCELLED"
    assert sm.lease_left(cancelled, NOW) == 0  # a redelivery is a duplicate, not held back for a lease
    assert sm.submit_in_doubt(cancelled) is False
    # the submitter in flight when the cancel landed: its outcome changes nothing
    assert sm.record_accepted(cancelled, LATER, TASK_ID, 1).job == cancelled
    assert sm.record_retryable_failure(cancelled, LATER, "timeout", 5).changed is False
    assert sm.release_attempt(cancelled, LATER, "boom").changed is False
    assert sm.record_final_failure(cancelled, LATER, "code 24").changed is False
    assert sm.reject(cancelled, LATER, "bad").changed is False
    assert sm.time_out(cancelled, LATER, 60).changed is False


@pytest.mark.parametrize("before", [submitted(), make_job(attempts=1)], ids=["submitted", "pending"])
def test_a_late_snapshot_for_a_cancelled_job_changes_nothing(before: Job) -> None:
    """Including a task the cancelled PENDING job never recorded (sent just before the cancel): not adopted."""
    cancelled = sm.cancel(before, NOW, CANCELLED_BY_USER).job
    for late in (
        snap("SUCCESS", "100%", imageUrl="https://cdn/r.png", state=before.jobId),
        snap("FAILURE", "", failReason="取消任务", state=before.jobId),
        snap("CANCEL", state=before.jobId),
        snap("IN_PROGRESS", "99%", state=before.jobId),
        snap("SUBMITTED", "0%", state=before.jobId),
    ):
        for via in ("callback", "poll"):
            decision = sm.apply_snapshot(cancelled, LATER, late, via=via)
            assert decision.changed is False and decision.became_terminal is False
            assert decision.job == cancelled


@pytest.mark.parametrize("status", ["SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCEL"])
def test_a_snapshot_for_a_job_awaiting_its_upload_is_refused(status: str) -> None:
    """No task was ever sent for it: a snapshot naming it (a forged or confused callback, a poll)
    must not adopt a task, move it on, or end it; only its upload or its expiry may."""
    awaiting = make_job(status=JobStatus.AWAITING_UPLOAD, targetKey="uploads/x/target.png")
    late = snap(status, "50%", imageUrl="https://cdn/r.png", state=awaiting.jobId)
    for via in ("callback", "poll", "submit", "reconciler"):
        decision = sm.apply_snapshot(awaiting, LATER, late, via=via)
        assert decision.changed is False and decision.job == awaiting
        assert decision.refusal == "job is still awaiting its target's upload; no task was ever sent for it"


def test_note_inputs_records_face_and_source_once() -> None:
    job = make_job(face=None)
    noted = sm.note_inputs(job, NOW, "alice", "faces/alice.png")
    assert noted.changed and noted.job.sourceKey == "faces/alice.png" and noted.job.face == "alice"
    assert sm.note_inputs(noted.job, LATER, "alice", "faces/alice.png").changed is False


# --- reconciler and after-effects --------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "fragment"),
    [
        (make_job(attempts=1), "(last status PENDING, no upstream task)"),
        (submitted(), f"(last status SUBMITTED, task {TASK_ID})"),
        (make_job(status=JobStatus.IN_PROGRESS, taskId=TASK_ID, progress=70), "(last status IN_PROGRESS"),
    ],
)
def test_time_out_fails_an_open_job_with_a_readable_reason(job: Job, fragment: str) -> None:
    decision = sm.time_out(job, NOW, 60)
    assert decision.job.status is JobStatus.FAILURE
    assert decision.job.failReason is not None
    assert decision.job.failReason.startswith("timed out: no result after 60 minutes")
    assert fragment in decision.job.failReason
    assert decision.became_terminal


def test_time_out_leaves_terminal_jobs_alone() -> None:
    done = make_job(status=JobStatus.SUCCESS, taskId=TASK_ID, imageUrl="https://x/r.png", progress=100)
    assert sm.time_out(done, NOW, 60).changed is False


def succeeded(**overrides: object) -> Job:
    return make_job(
        status=JobStatus.SUCCESS,
        taskId=TASK_ID,
        imageUrl="https://cdn/r.png",
        progress=100,
        eventPending=True,
        **overrides,
    )


def claimed_copy(job: Job, now: datetime = NOW) -> Job:
    decision = sm.claim_delivery(job, now, COPY)
    assert decision.claimed == COPY
    return decision.job


def test_result_copied_is_recorded_once() -> None:
    decision = sm.record_result_copied(claimed_copy(succeeded()), NOW, "results/alice/trip/beach.png", "v-1")
    assert decision.changed
    assert decision.job.resultKey == "results/alice/trip/beach.png"
    assert decision.job.resultVersionId == "v-1"
    assert decision.job.resultCopyAttempts == 1
    assert not decision.job.needs_result_copy
    assert decision.claimed == EVENT, "the same write claims the next entry"
    assert sm.record_result_copied(decision.job, LATER, "results/other.png").changed is False


def test_result_copy_failure_keeps_success_and_counts() -> None:
    decision = sm.record_result_copy_failed(claimed_copy(succeeded()), NOW, "HTTP 403")
    assert decision.job.status is JobStatus.SUCCESS
    assert decision.job.imageUrl == "https://cdn/r.png"
    assert decision.job.resultCopyAttempts == 1
    assert decision.job.resultCopyError is None
    assert decision.job.lastError == "result copy failed: HTTP 403"
    assert decision.job.needs_result_copy and decision.job.needs_attention
    assert decision.claimed is None and decision.job.deliveries[COPY].claimUntil is None  # given back


def test_result_copy_gives_up_after_the_last_attempt() -> None:
    job = succeeded()
    for _ in range(sm.MAX_RESULT_COPY_ATTEMPTS):
        job = sm.record_result_copy_failed(claimed_copy(job), NOW, "HTTP 403").job
    assert job.resultCopyAttempts == sm.MAX_RESULT_COPY_ATTEMPTS
    assert job.resultCopyError == f"result image not copied after {sm.MAX_RESULT_COPY_ATTEMPTS} attempts: HTTP 403"
    assert job.status is JobStatus.SUCCESS
    assert not job.needs_result_copy
    assert sm.record_result_copy_failed(job, LATER, "again").changed is False


def test_record_event_published_clears_the_outbox_once() -> None:
    job = succeeded(resultKey="results/alice/x.png")
    assert job.needs_attention
    decision = sm.record_event_published(job, NOW)
    assert decision.changed and decision.job.eventPending is False
    assert not decision.job.needs_attention
    assert sm.record_event_published(decision.job, LATER).changed is False


def test_decisions_never_mutate_their_input() -> None:
    job = submitted()
    frozen = dataclasses.replace(job)
    sm.apply_snapshot(job, NOW, snap("SUCCESS", "100%", imageUrl="https://x/r.png"))
    sm.time_out(job, NOW, 60)
    assert job == frozen


@pytest.mark.parametrize(
    ("minutes", "said"),
    [(1, "1 minute"), (45, "45 minutes"), (60, "60 minutes"), (90, "90 minutes"), (120, "2 hours"), (1440, "24 hours")],
)
def test_a_timeout_reason_states_its_limit_as_a_person_would(minutes: int, said: str) -> None:
    decision = sm.time_out(submitted(), NOW, minutes)
    assert decision.job.failReason.startswith(f"timed out: no result after {said} (last status SUBMITTED")
