"""The two doors into the state machine for upstream news: the callback and the poll.

Both end in `SnapshotApplier.apply`, so a snapshot means the same whichever way it came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from swapdrop import lenient_json
from swapdrop import state_machine as sm
from swapdrop.callback_token import is_valid
from swapdrop.finishing import JobFinisher
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, utc_now
from swapdrop.observability import logger, metrics
from swapdrop.task_snapshot import SnapshotRefusal, TaskSnapshot, parse_snapshot

MAX_CALLBACK_BYTES = 256 * 1024


class SnapshotApplier:
    def __init__(self, jobs: JobStore, finisher: JobFinisher, clock: Callable[[], datetime] = utc_now) -> None:
        self._jobs = jobs
        self._finisher = finisher
        self._clock = clock

    def apply(self, job_id: str, snapshot: TaskSnapshot, via: str, held: Job | None = None) -> sm.Decision:
        """`held`: the job as the caller just read it (a whole record), so it is not read again."""
        decision = update_job(
            self._jobs, job_id, lambda j: sm.apply_snapshot(j, self._clock(), snapshot, via), held=held
        )
        if decision.refusal:
            metrics.add_metric(name="SnapshotsRefused", unit="Count", value=1)
            logger.warning(
                "snapshot refused",
                extra={"job_id": job_id, "task_id": snapshot.id, "via": via, "why": decision.refusal},
            )
            return decision
        if decision.changed:
            logger.info(
                "job updated",
                extra={
                    "job_id": job_id,
                    "task_id": snapshot.id,
                    "via": via,
                    "status": decision.job.status.value,
                    "progress": decision.job.progress,
                },
            )
        if decision.job.next_delivery is not None or decision.job.webhookOutbox:
            job = self._finisher.finish(decision.job, held=decision.claimed)
            decision = sm.Decision(job=job, changed=decision.changed, became_terminal=decision.became_terminal)
        return decision


@dataclass(frozen=True, slots=True)
class CallbackReply:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


_FORBIDDEN = CallbackReply(403, {"message": "invalid or missing token"})


class CallbackReceiver:
    """The notifyHook endpoint's logic, independent of API Gateway's event shape.

    Every body gets an answer: 413 over the size limit, 403 without a valid token, 400 for
    a body that will not parse (bad UTF-8, bad JSON, nested deeper than 64) or is not a
    usable snapshot, 409 for a snapshot the job refuses. Nothing is written for any of them.
    """

    def __init__(self, jobs: JobStore, applier: SnapshotApplier, token_secret: Callable[[], str]) -> None:
        self._jobs = jobs
        self._applier = applier
        self._token_secret = token_secret

    def receive(self, job_id: str, token: str | None, body: bytes) -> CallbackReply:
        if len(body) > MAX_CALLBACK_BYTES:
            return CallbackReply(413, {"message": f"callback body over {MAX_CALLBACK_BYTES} bytes"})
        if not is_valid(self._token_secret(), job_id, token):
            metrics.add_metric(name="CallbacksForbidden", unit="Count", value=1)
            logger.warning("callback with an invalid or missing token", extra={"job_id": job_id[:64]})
            return _FORBIDDEN
        job = self._jobs.get(job_id)  # the one read: the snapshot is decided on it
        if job is None:  # same answer as a bad token: no enumeration
            return _FORBIDDEN
        snapshot = _snapshot_of(body)
        if isinstance(snapshot, CallbackReply):
            metrics.add_metric(name="CallbacksMalformed", unit="Count", value=1)
            logger.warning("callback body refused", extra={"job_id": job_id, "why": snapshot.body["message"][:300]})
            return snapshot
        decision = self._applier.apply(job_id, snapshot, via="callback", held=job)
        if decision.refusal:
            return CallbackReply(409, {"message": decision.refusal})
        return CallbackReply(
            200,
            {
                "jobId": job_id,
                "status": decision.job.status.value,
                "progress": decision.job.progress,
                "changed": decision.changed,
            },
        )


def _snapshot_of(body: bytes) -> TaskSnapshot | CallbackReply:
    """The body's snapshot, or the 400 that says why not (depth is checked before parsing)."""
    try:
        parsed = lenient_json.loads(body, "body", max_depth=lenient_json.MAX_DEPTH)
    except lenient_json.JsonRefused as error:
        return CallbackReply(400, {"message": str(error), "errors": [str(error)]})
    snapshot = parse_snapshot(parsed)
    if isinstance(snapshot, SnapshotRefusal):
        return CallbackReply(400, {"message": snapshot.reason, "errors": list(snapshot.errors)})
    return snapshot
