"""Finding the upstream task of a submit whose answer was lost.

A submit worker can die, or time out reading the answer, after the swap request went out:
the upstream may then hold a task we never recorded. The swap API has no search by `state`
(our job id), but where it exposes GET /mj/task/list (its latest 100 tasks) the task can be
found there and adopted, rather than sent again (submitter) or timed out (reconciler). With an
upstream pool the task is on the member the submit went to (the job's upstreamMember).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import UpstreamError


class TaskFinder(Protocol):
    def recent_tasks(self) -> list[TaskSnapshot] | None:
        """The swap API's latest tasks, newest first; None when the API has no task list."""


class PoolTaskFinder(Protocol):
    def recent_tasks(self, member: str | None = None) -> list[TaskSnapshot] | None:
        """One member's latest tasks, or every member's (None); None when the API has no task list."""


def task_of(recent: Iterable[TaskSnapshot], job_id: str) -> TaskSnapshot | None:
    """The newest listed task whose `state` names the job."""
    return next((task for task in recent if task.state == job_id), None)


def members_to_search(members: list[str], recorded: str | None) -> list[str]:
    """Where a lost submit's task can be: the member it was sent to, or, when none is recorded (a job from
    before the pool) or that member has left the pool, every member."""
    return [recorded] if recorded and recorded in members else list(members)


def find_task_of(
    finder: TaskFinder | PoolTaskFinder, job_id: str, member: str | None = None
) -> tuple[TaskSnapshot | None, str | None]:
    """The job's task if listed, and why none could be looked for (None when the list was read).
    `member`: the pool member the submit went to (None: every member, or a finder that is one client)."""
    try:
        recent = finder.recent_tasks() if member is None else finder.recent_tasks(member)  # type: ignore[call-arg]
    except UpstreamError as error:
        return None, f"the task list failed: {error}"
    if recent is None:
        return None, "the swap API has no task list"
    return task_of(recent, job_id), None
