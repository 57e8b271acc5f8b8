"""Finding the upstream task of a submit whose answer was lost.

A submit worker can die, or time out reading the answer, after the swap request went out:
the upstream may then hold a task we never recorded. The swap API has no search by `state`
(our job id), but where it exposes GET /mj/task/list (its latest 100 tasks) the task can be
found there and adopted, rather than sent again (submitter) or timed out (reconciler).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import UpstreamError


class TaskFinder(Protocol):
    def recent_tasks(self) -> list[TaskSnapshot] | None:
        """The swap API's latest tasks, newest first; None when the API has no task list."""


def task_of(recent: Iterable[TaskSnapshot], job_id: str) -> TaskSnapshot | None:
    """The newest listed task whose `state` names the job."""
    return next((task for task in recent if task.state == job_id), None)


def find_task_of(finder: TaskFinder, job_id: str) -> tuple[TaskSnapshot | None, str | None]:
    """The job's task if listed, and why none could be looked for (None when the list was read)."""
    try:
        recent = finder.recent_tasks()
    except UpstreamError as error:
        return None, f"the task list failed: {error}"
    if recent is None:
        return None, "the swap API has no task list"
    return task_of(recent, job_id), None
