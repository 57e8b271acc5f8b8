"""task_recovery: where a lost submit's task is looked for, on a pool of members (fakes, no sockets)."""

from __future__ import annotations

from fakes import FakeMemberPool, FakePoller
from swapdrop.task_recovery import find_task_of, members_to_search
from swapdrop.upstream import UpstreamError

from .builders import snap

MEMBERS = ["relay-a", "relay-b", "relay-c"]


def test_the_recorded_member_only_while_it_is_in_the_pool() -> None:
    assert members_to_search(MEMBERS, "relay-b") == ["relay-b"]
    assert members_to_search(MEMBERS, None) == MEMBERS
    assert members_to_search(MEMBERS, "") == MEMBERS
    assert members_to_search(MEMBERS, "relay-retired") == MEMBERS


def test_find_task_of_lists_the_given_members_tasks_only() -> None:
    pool = FakeMemberPool({name: FakePoller() for name in MEMBERS})
    pool.pollers["relay-a"].recent = [snap("SUCCESS", task_id="T-a", state="job-1")]
    pool.pollers["relay-b"].recent = [snap("IN_PROGRESS", task_id="T-b", state="job-1")]
    task, why_not = find_task_of(pool, "job-1", "relay-b")
    assert (task.id if task else None, why_not) == ("T-b", None)
    assert [p.recent_calls for p in pool.pollers.values()] == [0, 1, 0]


def test_find_task_of_says_why_it_could_not_look() -> None:
    pool = FakeMemberPool({"relay-a": FakePoller(), "relay-b": FakePoller()})
    pool.pollers["relay-b"].error = UpstreamError("HTTP 502 from GET /mj/task/list")
    assert find_task_of(pool, "job-1", "relay-b") == (None, "the task list failed: HTTP 502 from GET /mj/task/list")
    assert find_task_of(pool, "job-1", "relay-a") == (None, "the swap API has no task list")


def test_a_single_client_is_asked_without_a_member() -> None:
    """A finder that is one client (no pool) takes no member argument: None asks it as before."""
    client = FakePoller()
    client.recent = [snap("SUCCESS", task_id="T-1", state="job-1")]
    task, why_not = find_task_of(client, "job-1")
    assert task is not None and task.id == "T-1" and why_not is None
