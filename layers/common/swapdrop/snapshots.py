"""The two doors into the state machine for upstream news: the callback and the poll.

Both end in `SnapshotApplier.apply`, so a snapshot means the same whichever way it came.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from swapdrop import state_machine as sm
from swapdrop.callback_token import is_valid
from swapdrop.finishing import JobFinisher
from swapdrop.job_store import JobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import utc_now
from swapdrop.observability import logger, metrics
from swapdrop.task_snapshot import TaskSnapshot

MAX_CALLBACK_BYTES = 256 * 1024


class SnapshotApplier:
    def __init__(self, jobs: JobStore, finisher: JobFinisher, clock: Callable[[], datetime] = utc_now) -> None:
        self._jobs = jobs
        self._finisher = finisher
        self._clock = clock

    def apply(self, job_id: str, snapshot: TaskSnapshot, via: str) -> sm.Decision:
        decision = update_job(self._jobs, job_id, lambda j: sm.apply_snapshot(j, self._clock(), snapshot, via))
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
            if decision.became_terminal:
                metrics.add_metric(name=f"Jobs{decision.job.status.value.title()}", unit="Count", value=1)
        if decision.job.next_delivery is not None:
            job = self._finisher.finish(decision.job, held=decision.claimed)
            decision = sm.Decision(job=job, changed=decision.changed, became_terminal=decision.became_terminal)
        return decision


@dataclass(frozen=True, slots=True)
class CallbackReply:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


_FORBIDDEN = CallbackReply(403, {"message": "invalid or missing token"})


class CallbackReceiver:
    """The notifyHook endpoint's logic, independent of API Gateway's event shape."""

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
        if self._jobs.get(job_id) is None:  # same answer as a bad token: no enumeration
            return _FORBIDDEN
        try:
            snapshot = TaskSnapshot.model_validate(json.loads(body))
        except (ValueError, ValidationError) as error:
            return CallbackReply(400, {"message": "not a task snapshot", "errors": _errors(error)})
        decision = self._applier.apply(job_id, snapshot, via="callback")
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


def _errors(error: Exception) -> list[str]:
    if isinstance(error, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()][:10]
    return ["body is not valid JSON"]
