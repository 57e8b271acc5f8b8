"""The job state machine: every change to a job is decided here, as a pure function.

Callbacks, the reconciler's polls and the submitter all describe what they learnt
(a task snapshot, an accepted submit, an error) and get back the job as it must
now be. The rules:

- status only moves forward (PENDING < SUBMITTED < IN_PROGRESS < terminal);
- a terminal job (SUCCESS, FAILURE, REJECTED, CANCELLED) never changes status again; the
  only later changes are its outbox (`deliveries`: the result copy, then the event);
- an outbox entry is claimed (a short lease) before its work is done, so two
  finishers racing on one job do the work once; whoever makes the terminal
  transition holds the first entry's claim, and finishing one entry claims the next
  in the same write;
- every status change is recorded in the job's bounded history, with `via`;
- progress never decreases;
- a snapshot for another task than the job's is refused;
- repeating a fact is a no-op (`changed` is False), so duplicates write nothing.

`job_updates.update_job` applies a decision with an optimistic version check.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from swapdrop.jobs import (
    COPY,
    DELIVERY_ORDER,
    EVENT,
    MAX_HISTORY,
    SFN,
    VIAS,
    WEBHOOK,
    Delivery,
    DeliveryState,
    Job,
    JobStatus,
    OpenJob,
    Transition,
    iso,
    webhook_message_id,
)
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
TASK_MAY_EXIST = "a submit was sent and its answer was lost; a task may exist upstream"
DELIVERY_LEASE_SECONDS = 60
"""How long one finisher holds an outbox entry: three times a result download's whole budget
(20 s, result_download.DEFAULT_BUDGET_SECONDS) for the download and its S3 and DynamoDB writes,
and short enough that a crashed holder's work is retried by the reconciler within two minutes."""


@dataclass(frozen=True, slots=True)
class Decision:
    job: Job
    changed: bool
    refusal: str | None = None
    """Why the fact was refused (for the caller to report); None when accepted or a no-op."""
    became_terminal: bool = False
    claimed: str | None = None
    """The outbox entry the writer of this decision now holds: it does that work, then records it."""
    in_doubt: bool = False
    """start_attempt: an earlier attempt may have sent the swap without its answer being recorded."""


def _keep(job: Job, refusal: str | None = None) -> Decision:
    return Decision(job=job, changed=False, refusal=refusal)


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def _change(job: Job, now: datetime, via: str | None = None, **updates: object) -> Decision:
    candidate = dataclasses.replace(job, **updates)
    if candidate == job:
        return _keep(job)
    stamp = iso(now)
    extra: dict[str, object] = {"updatedAt": stamp}
    if candidate.status is not job.status:
        if via not in VIAS:
            raise ValueError(f"a status change needs via in {sorted(VIAS)}, got {via!r}")
        step = Transition(from_=job.status.value, to=candidate.status.value, at=stamp, via=via)
        extra["history"] = (*job.history, step)[-MAX_HISTORY:]
    became_terminal = candidate.status.is_terminal and not job.status.is_terminal
    if messages := _webhook_messages(job, candidate, stamp):
        extra["webhookOutbox"] = {**(candidate.webhookOutbox or {}), **messages}
    claimed = None
    if became_terminal:
        deliveries: dict[str, Delivery] = {}
        if candidate.status is JobStatus.SUCCESS and candidate.imageUrl is not None:
            deliveries[COPY] = Delivery()
        deliveries[EVENT] = Delivery()
        if candidate.webhook and "completed" in (candidate.webhook.get("events") or ("completed",)):
            deliveries[WEBHOOK] = Delivery()
        if candidate.taskToken:
            deliveries[SFN] = Delivery()
        claimed = next(name for name in DELIVERY_ORDER if name in deliveries)
        deliveries[claimed] = _claimed(deliveries[claimed], now)
        extra |= {
            "finishedAt": stamp,
            "deliveries": deliveries,
            "leaseUntil": None,
            "queuePosition": None,
            "submitInDoubt": False,
        }
    return Decision(
        job=dataclasses.replace(candidate, **extra), changed=True, became_terminal=became_terminal, claimed=claimed
    )


def _webhook_messages(job: Job, candidate: Job, stamp: str) -> dict[str, dict[str, object]]:
    """The started/progress webhook messages this change makes due (completed is the outbox entry WEBHOOK):
    started when the swap API has accepted the job, progress at most once per 10 % step."""
    wanted = (candidate.webhook or {}).get("events") or ()
    if not candidate.webhook or candidate.status.is_terminal or candidate.webhookStatus == "disabled":
        return {}
    messages: dict[str, dict[str, object]] = {}
    if "started" in wanted and job.status.rank < JobStatus.SUBMITTED.rank <= candidate.status.rank:
        messages[webhook_message_id(job.jobId, "started")] = {"type": "started", "at": stamp}
    step = candidate.progress // 10 * 10
    if "progress" in wanted and 0 < step < 100 and step > job.progress // 10 * 10:
        messages[webhook_message_id(job.jobId, "progress", step)] = {"type": "progress", "at": stamp, "step": step}
    return messages


# --- submitter ---------------------------------------------------------------


def start_attempt(job: Job, now: datetime, lease_until: int) -> Decision:
    """Take the job for one submit attempt; refused while another submitter holds it."""
    if job.status is not JobStatus.PENDING:
        return _keep(job, f"job is already {job.status.value}")
    if job.leaseUntil is not None and job.leaseUntil > int(now.timestamp()):
        return _keep(job, "another submitter holds the job")
    # A lease left behind (expired, no outcome recorded) means its holder died, perhaps after sending.
    in_doubt = job.submitInDoubt or job.leaseUntil is not None
    decision = _change(job, now, attempts=job.attempts + 1, leaseUntil=lease_until, submitInDoubt=False)
    return dataclasses.replace(decision, in_doubt=in_doubt)


def lease_left(job: Job, now: datetime) -> int:
    """Seconds (rounded up, plus one) until a PENDING job's submit lease ends; 0 when nobody holds it."""
    if job.status is not JobStatus.PENDING or job.leaseUntil is None:
        return 0
    left = job.leaseUntil - _epoch(now)
    return left + 1 if left > 0 else 0


def release_attempt(job: Job, now: datetime, error: str, in_doubt: bool = False) -> Decision:
    """Give the job back after an unexpected error, so a redelivery can take it.

    `in_doubt`: the error came after the swap request was sent, so a task may exist upstream."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    return _change(job, now, leaseUntil=None, lastError=error, submitInDoubt=in_doubt or job.submitInDoubt)


def record_accepted(
    job: Job, now: datetime, task_id: str, queue_position: int | None, via: str = "submit", member: str = ""
) -> Decision:
    """The swap API took the job as `task_id`, on upstream pool member `member` ("" : not known)."""
    if job.taskId is not None and job.taskId != task_id:
        return _keep(job, f"job already follows task {job.taskId}; task {task_id} is a duplicate")
    if job.status.is_terminal:
        return _keep(job, f"job is already {job.status.value}")
    owner = member or job.upstreamMember
    if job.status is not JobStatus.PENDING:  # a callback got here first, with this task id
        return _change(job, now, leaseUntil=None, upstreamMember=owner, submittedAt=job.submittedAt or iso(now))
    return _change(
        job,
        now,
        via,
        status=JobStatus.SUBMITTED,
        taskId=task_id,
        queuePosition=queue_position,
        leaseUntil=None,
        submitInDoubt=False,
        lastError=None,
        upstreamMember=owner,
        submittedAt=iso(now),
    )


def record_capacity_wait(job: Job, now: datetime, reason: str) -> Decision:
    """Every upstream member is full or benched: nothing was sent, so the attempt is given back (MaxSubmitAttempts
    counts real failures only; a burst waits for capacity instead of failing) and the lease is cleared."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    return _change(job, now, attempts=max(0, job.attempts - 1), leaseUntil=None, lastError=reason, submitInDoubt=False)


def record_member(job: Job, now: datetime, member: str) -> Decision:
    """The upstream pool member that holds the job's task (found there after a lost submit answer)."""
    if not member or job.status.is_terminal:
        return _keep(job)
    return _change(job, now, upstreamMember=member)


def record_retryable_failure(
    job: Job,
    now: datetime,
    reason: str,
    max_attempts: int,
    maybe_accepted: bool = False,
    via: str = "submit",
    member: str = "",
) -> Decision:
    """The attempt failed in a way worth retrying; after the last attempt the job fails.

    `maybe_accepted`: the answer was lost after sending; the next attempt looks for the task first, on
    `member` (the upstream pool member it was sent to: recorded on the job)."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    owner = member if maybe_accepted and member else job.upstreamMember
    if job.attempts >= max_attempts:
        doubt = f"; {TASK_MAY_EXIST}" if maybe_accepted or job.submitInDoubt else ""
        return _change(
            job,
            now,
            via,
            status=JobStatus.FAILURE,
            failReason=f"gave up after {job.attempts} submit attempts; last error: {reason}{doubt}",
            lastError=reason,
            upstreamMember=owner,
        )
    return _change(job, now, leaseUntil=None, lastError=reason, submitInDoubt=maybe_accepted, upstreamMember=owner)


def record_final_failure(job: Job, now: datetime, reason: str, via: str = "submit") -> Decision:
    if job.status.is_terminal:
        return _keep(job)
    return _change(job, now, via, status=JobStatus.FAILURE, failReason=reason)


def reject(job: Job, now: datetime, reason: str, via: str = "submit") -> Decision:
    """Bad input: the job ends REJECTED and nothing was sent upstream."""
    if job.status is not JobStatus.PENDING:
        return _keep(job)
    return _change(job, now, via, status=JobStatus.REJECTED, failReason=reason)


def cancel(job: Job, now: datetime, reason: str, via: str = "api") -> Decision:
    """A person stops the job: any unfinished job ends CANCELLED (a PENDING one is then never sent,
    as start_attempt only takes PENDING jobs); a terminal job is kept, with a refusal naming its status.

    Cancelling the upstream task is the caller's business; its later snapshots change nothing here."""
    if job.status.is_terminal:
        return _keep(job, f"job is already {job.status.value}")
    return _change(job, now, via, status=JobStatus.CANCELLED, failReason=reason)


def bind_upload(
    job: Job, now: datetime, version_id: str | None, sequencer: str | None, event_time: str | None
) -> Decision:
    """The target of an AWAITING_UPLOAD job arrived: the job becomes PENDING, pinned to that version.

    Only the first upload binds; a reused form (a second upload to the same key) changes nothing."""
    if job.status is not JobStatus.AWAITING_UPLOAD:
        return _keep(job, f"job is already {job.status.value}")
    return _change(
        job,
        now,
        "upload",
        status=JobStatus.PENDING,
        targetVersionId=version_id,
        targetSequencer=sequencer,
        targetEventTime=event_time,
        uploadExpiresAt=None,
    )


def expire_upload(job: Job, now: datetime, reason: str, via: str = "reconciler") -> Decision:
    """An AWAITING_UPLOAD job whose upload form expired (plus a margin) ends FAILURE with `reason`."""
    if job.status is not JobStatus.AWAITING_UPLOAD:
        return _keep(job, f"job is already {job.status.value}")
    return _change(job, now, via, status=JobStatus.FAILURE, failReason=reason)


def link_retry(job: Job, now: datetime, retried_by: str) -> Decision:
    """Record the job that retries this one (a terminal job's only change: a link, never its status).

    One retry per job: a second one is refused, naming the first."""
    if job.retriedBy is not None and job.retriedBy != retried_by:
        return _keep(job, f"job was already retried by {job.retriedBy}")
    return _change(job, now, retriedBy=retried_by)


def note_inputs(job: Job, now: datetime, face: str, source_key: str) -> Decision:
    return _change(job, now, face=face, sourceKey=source_key)


# --- callbacks and polls -----------------------------------------------------


def apply_snapshot(job: Job, now: datetime, snapshot: TaskSnapshot, via: str = "callback") -> Decision:
    """What a task snapshot (callback, poll, or a task found in the task list) does to a job."""
    if job.status is JobStatus.AWAITING_UPLOAD:
        return _keep(job, "job is still awaiting its target's upload; no task was ever sent for it")
    if snapshot.state is not None and snapshot.state != job.jobId:
        return _keep(job, "snapshot's state does not name this job")
    if job.taskId is not None and snapshot.id != job.taskId:
        return _keep(job, f"snapshot is for task {snapshot.id}, job follows task {job.taskId}")
    if job.status.is_terminal:
        return _keep(job)
    updates: dict[str, object] = {"taskId": snapshot.id}
    if job.taskId is None:  # adopted: the callback (or a task-list search) beat the submitter's record
        updates |= {"leaseUntil": None, "submitInDoubt": False, "submittedAt": job.submittedAt or iso(now)}
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
    return _change(job, now, via, **updates)


def _failure_reason(snapshot: TaskSnapshot) -> str:
    reason = snapshot.failReason or snapshot.description
    if snapshot.status is UpstreamStatus.CANCEL:
        return f"cancelled upstream: {reason}" if reason else "cancelled upstream"
    return f"upstream failure: {reason}" if reason else "upstream reported FAILURE without a reason"


# --- reconciler --------------------------------------------------------------


def submit_in_doubt(job: Job | OpenJob) -> bool:
    """A PENDING job whose last submit attempt may have created an upstream task we never recorded."""
    return job.status is JobStatus.PENDING and job.attempts > 0 and (job.leaseUntil is not None or job.submitInDoubt)


def reindex(job: Job) -> Decision:
    """Write the job as it is: its index keys are derived again (a stale key some other code kept goes)."""
    return Decision(job=job, changed=True)


def _duration(minutes: int) -> str:
    """As a person states it: whole hours from two on (MaxQueueWaitHours' 24 is "24 hours", not 1440 minutes)."""
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def time_out(
    job: Job, now: datetime, timeout_minutes: int, task_may_exist: bool = False, via: str = "reconciler"
) -> Decision:
    if job.status.is_terminal:
        return _keep(job)
    where = f"task {job.taskId}" if job.taskId else "no upstream task"
    reason = f"timed out: no result after {_duration(timeout_minutes)} (last status {job.status.value}, {where})"
    if task_may_exist and job.taskId is None:
        reason += f"; {TASK_MAY_EXIST}"
    return _change(job, now, via, status=JobStatus.FAILURE, failReason=reason)


# --- the outbox: claim an entry, do its work, record it ------------------------------------


def claim_delivery(job: Job, now: datetime, name: str) -> Decision:
    """Take outbox entry `name` for one worker: refused while another holds it, or before its turn."""
    if job.next_delivery != name:
        return _keep(job, f"{name} is not the next delivery")
    entry = job.deliveries[name]
    if not entry.claimable(_epoch(now)):
        return _keep(job, f"{name} is claimed by another worker, or not due yet")
    return dataclasses.replace(
        _change(job, now, deliveries={**job.deliveries, name: _claimed(entry, now)}), claimed=name
    )


def _claimed(entry: Delivery, now: datetime) -> Delivery:
    return dataclasses.replace(
        entry, claimUntil=_epoch(now) + DELIVERY_LEASE_SECONDS, attempts=entry.attempts + 1, nextAt=None
    )


def _settle(job: Job, now: datetime, name: str, entry: Delivery, **updates: object) -> Decision:
    """Write entry `name` as given and, when it is finished, claim the next one in the same write."""
    current = job.deliveries.get(name)
    if current is None or current.finished:
        return _keep(job)  # recorded already (a late or duplicate finisher)
    deliveries = {**job.deliveries, name: entry}
    claimed = None
    nxt = dataclasses.replace(job, deliveries=deliveries).next_delivery
    if entry.finished and nxt is not None and deliveries[nxt].claimable(_epoch(now)):
        deliveries[nxt] = _claimed(deliveries[nxt], now)
        claimed = nxt
    return dataclasses.replace(_change(job, now, deliveries=deliveries, **updates), claimed=claimed)


def record_result_copied(job: Job, now: datetime, result_key: str, version_id: str | None = None) -> Decision:
    entry = job.deliveries.get(COPY)
    if entry is None:
        return _keep(job)
    done = dataclasses.replace(entry, state=DeliveryState.DONE, claimUntil=None, lastError=None)
    return _settle(job, now, COPY, done, resultKey=result_key, resultVersionId=version_id)


def record_result_superseded(job: Job, now: datetime, why: str) -> Decision:
    """A newer upload of the same target already wrote its result: this job keeps SUCCESS, writes none."""
    entry = job.deliveries.get(COPY)
    if entry is None:
        return _keep(job)
    return _settle(
        job, now, COPY, dataclasses.replace(entry, state=DeliveryState.SKIPPED, claimUntil=None, lastError=why)
    )


def record_result_copy_failed(job: Job, now: datetime, error: str) -> Decision:
    """Keeps SUCCESS and imageUrl; after the last attempt stops trying and says why."""
    entry = job.deliveries.get(COPY)
    if entry is None:
        return _keep(job)
    if entry.attempts >= MAX_RESULT_COPY_ATTEMPTS:
        given_up = dataclasses.replace(
            entry,
            state=DeliveryState.FAILED,
            claimUntil=None,
            lastError=f"result image not copied after {entry.attempts} attempts: {error}",
        )
        return _settle(job, now, COPY, given_up)
    released = dataclasses.replace(entry, claimUntil=None, lastError=error)
    return _settle(job, now, COPY, released, lastError=f"result copy failed: {error}")


def record_event_published(job: Job, now: datetime) -> Decision:
    entry = job.deliveries.get(EVENT)
    if entry is None:
        return _keep(job)
    return _settle(job, now, EVENT, dataclasses.replace(entry, state=DeliveryState.DONE, claimUntil=None))


def record_event_failed(job: Job, now: datetime, error: str) -> Decision:
    """Give the claim back so the next finisher (the reconciler) retries at once."""
    entry = job.deliveries.get(EVENT)
    if entry is None:
        return _keep(job)
    return _settle(job, now, EVENT, dataclasses.replace(entry, claimUntil=None, lastError=error))


MAX_DELIVERY_ATTEMPTS = 10
"""Tries of a webhook hand-over or a task-token answer before the entry is given up (and says why)."""
DELIVERY_BACKOFF_SECONDS = 30
DELIVERY_BACKOFF_MAX_SECONDS = 3600


def record_delivered(job: Job, now: datetime, name: str) -> Decision:
    """Outbox entry `name` (webhook, sfn) is done; the next one is claimed in the same write."""
    entry = job.deliveries.get(name)
    if entry is None:
        return _keep(job)
    return _settle(job, now, name, dataclasses.replace(entry, state=DeliveryState.DONE, claimUntil=None))


def record_delivery_failed(job: Job, now: datetime, name: str, error: str, final: bool = False) -> Decision:
    """Entry `name` failed: given back to be retried, or, when `final` or out of attempts, given up with why
    (a task token that expired will never be answered; the job says so instead of retrying forever)."""
    entry = job.deliveries.get(name)
    if entry is None:
        return _keep(job)
    if final or entry.attempts >= MAX_DELIVERY_ATTEMPTS:
        given_up = dataclasses.replace(entry, state=DeliveryState.FAILED, claimUntil=None, lastError=error)
        return _settle(job, now, name, given_up)
    backoff = DELIVERY_BACKOFF_SECONDS * 2 ** max(0, entry.attempts - 1)
    retry_at = _epoch(now) + min(DELIVERY_BACKOFF_MAX_SECONDS, backoff)
    released = dataclasses.replace(entry, claimUntil=None, nextAt=retry_at, lastError=error)
    return _settle(job, now, name, released)


# --- webhooks: hand-over of pending messages, and what each delivery attempt did ------------------


def webhooks_handed_over(job: Job, now: datetime, message_ids: tuple[str, ...]) -> Decision:
    """The messages `message_ids` are on the WebhookQueue: no longer pending on the job."""
    left = {k: v for k, v in (job.webhookOutbox or {}).items() if k not in message_ids}
    return _change(job, now, webhookOutbox=left or None)


WEBHOOK_FINAL_STATES = frozenset({"delivered", "failed", "disabled"})


def record_webhook_delivery(job: Job, now: datetime, message_id: str, record: dict[str, object]) -> Decision:
    """The WebhookFunction's record of message `message_id` (attempts, lastStatus, lastError, state, ...);
    a message already delivered, failed or disabled keeps its record (a duplicate's attempt changes nothing)."""
    current = (job.webhookDeliveries or {}).get(message_id, {})
    if current.get("state") in WEBHOOK_FINAL_STATES:
        return _keep(job)
    return _change(job, now, webhookDeliveries={**(job.webhookDeliveries or {}), message_id: record})
