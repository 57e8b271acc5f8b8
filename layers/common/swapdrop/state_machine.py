"""The job state machine: every change to a job is decided here, as a pure function.

Callbacks, the reconciler's polls and the submitter all describe what they learnt
(a task snapshot, an accepted submit, an error) and get back the job as it must
now be. The rules:

- status only moves forward (PENDING < SUBMITTED < IN_PROGRESS < terminal);
- a terminal job (SUCCESS, FAILURE, REJECTED) never changes status again; the
  only later changes are the result copy and the outbox flag of its event;
- progress never decreases;
- a snapshot for another task than the job's is refused;
- repeating a fact is a no-op (`changed` is False), so duplicates write nothing.

`job_updates.update_job` applies a decision with an optimistic version check.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.task_snapshot import TaskSnapshot, UpstreamStatus

_FROM_UPSTREAM = {
    UpstreamStatus.NOT_START: JobStatus.SUBMITTED,
    UpstreamStatus.SUBMITTED: JobStatus.SUBMITTED,
    UpstreamStatus.MODAL: JobStatus.IN_PROGRESS,
    UpstreamStatus.IN_PROGRESS: JobStatus.IN_PROGRESS,
    UpstreamStatus.SUCCESS: JobStatus.SUCCESS,
    UpstreamStatus.FAILURE: JobStatus.FAILURE,
    UpstreamStatus.CANCEL: JobStatus.FAILURE,
}
MAX_RESULT_COPY_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Decision:
    job: Job
    changed: bool
    refusal: str | None = None
    """Why the fact was refused (for the caller to report); None when accepted or a no-op."""
    became_terminal: bool = False


def _keep(job: Job, refusal: str | None = None) -> Decision:
    return Decision(job=job, changed=False, refusal=refusal)


def _change(job: Job, now: datetime, **updates: object) -> Decision:
    candidate = dataclasses.replace(job, **updates)
    if candidate == job:
        return _keep(job)
    stamp = iso(now)
    extra: dict[str, object] = {"updatedAt": stamp}
    became_terminal = candidate.status.is_terminal and not job.status.is_terminal
    if became_terminal:
        extra |= {"finishedAt": stamp, "eventPending": True, "leaseUntil": None, "queuePosition": None}
    return Decision(job=dataclasses.replace(candidate, **extra), changed=True, became_terminal=became_terminal)


# --- submitter ---------------------------------------------------------------


def start_attempt(job: Job, now: datetime, lease_until: int) -> Decision:
    """Take the job for one submit attempt; refused while another submitter holds it."""
    if job.status is not JobStatus.PENDING:
        return _keep(job, f"job is already {job.status.value}")
    if job.leaseUntil is not None and job.leaseUntil > int(now.timestamp()):
        return _keep(job, "another submitter holds the job")
    return _change(job, now, attempts=job.attempts + 1, leaseUntil=lease_until)


def release_attempt(job: Job, now: datetime, error: str) -> Decision:
    """Give the job back after an unexpected error, so a redelivery can take it."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    return _change(job, now, leaseUntil=None, lastError=error)


def record_accepted(job: Job, now: datetime, task_id: str, queue_position: int | None) -> Decision:
    if job.taskId is not None and job.taskId != task_id:
        return _keep(job, f"job already follows task {job.taskId}; task {task_id} is a duplicate")
    if job.status.is_terminal:
        return _keep(job, f"job is already {job.status.value}")
    if job.status is not JobStatus.PENDING:  # a callback got here first, with this task id
        return _change(job, now, leaseUntil=None)
    return _change(
        job,
        now,
        status=JobStatus.SUBMITTED,
        taskId=task_id,
        queuePosition=queue_position,
        leaseUntil=None,
        lastError=None,
    )


def record_retryable_failure(job: Job, now: datetime, reason: str, max_attempts: int) -> Decision:
    """The attempt failed in a way worth retrying; after the last attempt the job fails."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    if job.attempts >= max_attempts:
        return _change(
            job,
            now,
            status=JobStatus.FAILURE,
            failReason=f"gave up after {job.attempts} submit attempts; last error: {reason}",
            lastError=reason,
        )
    return _change(job, now, leaseUntil=None, lastError=reason)


def record_final_failure(job: Job, now: datetime, reason: str) -> Decision:
    if job.status.is_terminal:
        return _keep(job)
    return _change(job, now, status=JobStatus.FAILURE, failReason=reason)


def reject(job: Job, now: datetime, reason: str) -> Decision:
    """Bad input: the job ends REJECTED and nothing was sent upstream."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    return _change(job, now, status=JobStatus.REJECTED, failReason=reason)


def note_inputs(job: Job, now: datetime, face: str, source_key: str) -> Decision:
    return _change(job, now, face=face, sourceKey=source_key)


# --- callbacks and polls -----------------------------------------------------


def apply_snapshot(job: Job, now: datetime, snapshot: TaskSnapshot) -> Decision:
    """What a task snapshot (callback or poll) does to a job."""
    if snapshot.state is not None and snapshot.state != job.jobId:
        return _keep(job, "snapshot's state does not name this job")
    if job.taskId is not None and snapshot.id != job.taskId:
        return _keep(job, f"snapshot is for task {snapshot.id}, job follows task {job.taskId}")
    if job.status.is_terminal:
        return _keep(job)
    updates: dict[str, object] = {"taskId": snapshot.id}
    if job.taskId is None:  # the callback beat the submitter's own record of the task
        updates["leaseUntil"] = None
    target = _FROM_UPSTREAM[snapshot.status]
    if target.rank > job.status.rank:
        updates["status"] = target
    if snapshot.progress > job.progress:
        updates["progress"] = snapshot.progress
    if target.rank > JobStatus.PENDING.rank:
        updates["queuePosition"] = None
    if target is JobStatus.SUCCESS:
        if snapshot.imageUrl is None:
            updates |= {"status": JobStatus.FAILURE, "failReason": "upstream reported SUCCESS without an image URL"}
        else:
            updates |= {"imageUrl": snapshot.imageUrl, "progress": 100}
    elif target is JobStatus.FAILURE:
        updates["failReason"] = _failure_reason(snapshot)
    return _change(job, now, **updates)


def _failure_reason(snapshot: TaskSnapshot) -> str:
    reason = snapshot.failReason or snapshot.description
    if snapshot.status is UpstreamStatus.CANCEL:
        return f"cancelled upstream: {reason}" if reason else "cancelled upstream"
    return f"upstream failure: {reason}" if reason else "upstream reported FAILURE without a reason"


# --- reconciler and after-effects ---------------------------------------------


def time_out(job: Job, now: datetime, timeout_minutes: int) -> Decision:
    if job.status.is_terminal:
        return _keep(job)
    where = f"task {job.taskId}" if job.taskId else "no upstream task"
    return _change(
        job,
        now,
        status=JobStatus.FAILURE,
        failReason=f"timed out: no result after {timeout_minutes} minutes (last status {job.status.value}, {where})",
    )


def record_result_copied(job: Job, now: datetime, result_key: str) -> Decision:
    if not job.needs_result_copy:
        return _keep(job)
    return _change(job, now, resultKey=result_key, resultCopyAttempts=job.resultCopyAttempts + 1)


def record_result_copy_failed(job: Job, now: datetime, error: str) -> Decision:
    """Keeps SUCCESS and imageUrl; after the last attempt stops trying and says why."""
    if not job.needs_result_copy:
        return _keep(job)
    attempts = job.resultCopyAttempts + 1
    if attempts >= MAX_RESULT_COPY_ATTEMPTS:
        return _change(
            job,
            now,
            resultCopyAttempts=attempts,
            resultCopyError=f"result image not copied after {attempts} attempts: {error}",
        )
    return _change(job, now, resultCopyAttempts=attempts, lastError=f"result copy failed: {error}")


def record_event_published(job: Job, now: datetime) -> Decision:
    if not job.eventPending:
        return _keep(job)
    return _change(job, now, eventPending=False)
