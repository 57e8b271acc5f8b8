"""Apply a state-machine decision to the stored job, safely under concurrency.

Decide on the job, write only if nobody wrote in between (version check); on a conflict,
read again and decide again. Callbacks, polls and submitters racing on one job therefore
never lose or reverse each other's facts.

A caller that already holds the job (it just read or wrote it) passes it as `held`: the
first decision is made on it and the write's condition carries the check, so no read is
spent on a job in hand. A stale `held` costs one refused write, then a read, as a race would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from swapdrop.job_metrics import record_finished
from swapdrop.job_store import JobStore, VersionConflict
from swapdrop.jobs import Job
from swapdrop.state_machine import Decision

MAX_CONFLICT_RETRIES = 8


class JobNotFound(LookupError):
    pass


def update_job(store: JobStore, job_id: str, decide: Callable[[Job], Decision], held: Job | None = None) -> Decision:
    """`held`: the caller's copy of the job (a whole record, as read or written), or None to read it."""
    if held is not None and held.jobId != job_id:
        raise ValueError(f"held job {held.jobId} is not {job_id}")
    current = held
    for _ in range(MAX_CONFLICT_RETRIES):
        if current is None:
            current = store.get(job_id)
            if current is None:
                raise JobNotFound(job_id)
        decision = decide(current)
        if not decision.changed:
            return decision
        new = dataclasses.replace(decision.job, version=current.version + 1)
        try:
            store.replace(new, expected_version=current.version)
        except VersionConflict:
            current = None
            continue
        if decision.became_terminal:  # written: this writer, and no other, moved the job to its end
            record_finished(new)
        return dataclasses.replace(decision, job=new)
    raise VersionConflict(f"{job_id}: gave up after {MAX_CONFLICT_RETRIES} concurrent changes")
