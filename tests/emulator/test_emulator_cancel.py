"""trueai's POST /mj/task/{id}/cancel in the emulator: HTTP 200 and an empty body whatever happens,
an unfinished task ends FAILURE "取消任务" (with its callback), a finished one stays as it is, and a
switch makes the route answer 404 as on relays that lack it. Our client's cancel_task against it."""

from __future__ import annotations

import pytest
import requests
from swapdrop.config import AuthStyle
from swapdrop.upstream import UpstreamClient, UpstreamError
from swapdrop_emulator import SwapEmulator, Task
from swapdrop_emulator.cli import build_parser, config_from_args

from .conftest import API_KEY, AUTH, SOURCE, BlockingEngine, CallbackReceiver, accepted_id, submit, wait_until

CANCELLED = ("FAILURE", "")
REASON = "取消任务"


def cancel(emulator: SwapEmulator, task_id: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        f"{emulator.url}/mj/task/{task_id}/cancel", headers=AUTH if headers is None else headers, timeout=5
    )


def assert_empty_200(response: requests.Response) -> None:
    assert (response.status_code, response.content) == (200, b"")


def test_cancel_needs_the_key_and_changes_nothing_without_it(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator))
    refused = cancel(emulator, task_id, headers={"Authorization": "Bearer wrong"})
    assert (refused.status_code, refused.content) == (401, b"")
    assert cancel(emulator, task_id, headers={}).status_code == 401
    assert emulator.tasks[task_id].status == "SUBMITTED"
    assert emulator.cancel_requests == []


def test_a_running_task_ends_failure_with_its_callback_and_its_result_is_dropped(
    make_emulator, receiver: CallbackReceiver
) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine)
    task_id = accepted_id(submit(emulator, notifyHook=receiver.hook(), state="job-9"))
    wait_until(lambda: engine.calls == 1, message="the swap started")
    try:
        assert_empty_200(cancel(emulator, task_id))
        task = emulator.tasks[task_id]
        assert (task.status, task.progress, task.fail_reason, task.image_url) == ("FAILURE", "", REASON, None)
        assert task.finish_time is not None
    finally:
        engine.gate.set()  # the swap finishes after the cancel: its result must not count
    emulator.wait_idle()
    task = emulator.tasks[task_id]
    assert (task.status, task.fail_reason, task.image) == ("FAILURE", REASON, None)
    assert receiver.steps(task_id) == [("SUBMITTED", "0%"), ("IN_PROGRESS", "15%"), CANCELLED]
    final = receiver.received[-1].body
    assert (final["failReason"], final["state"]) == (REASON, "job-9")
    assert emulator.cancel_requests == [task_id]


def test_a_queued_task_never_runs_and_frees_its_place(make_emulator, receiver: CallbackReceiver) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=1, queue_size=1)
    try:
        running = accepted_id(submit(emulator, notifyHook=receiver.hook("a")))
        queued = accepted_id(submit(emulator, source=b"2" + SOURCE, notifyHook=receiver.hook("b")))
        assert submit(emulator, source=b"3" + SOURCE).json()["code"] == 23, "the queue is full"
        assert emulator.tasks[queued].status == "NOT_START"
        assert_empty_200(cancel(emulator, queued))
        assert emulator.tasks[queued].status == "FAILURE"
        replacement = submit(emulator, source=b"4" + SOURCE).json()
        assert replacement["code"] == 1, "the cancelled task's place in the queue is free again"
    finally:
        engine.gate.set()
    emulator.wait_idle()
    assert emulator.tasks[running].status == "SUCCESS"
    assert emulator.tasks[queued].status == "FAILURE" and emulator.tasks[queued].fail_reason == REASON
    assert engine.calls == 2, "the running task and the replacement ran; the cancelled one never did"
    assert receiver.steps(queued) == [CANCELLED]


def test_a_stalled_task_and_a_manual_one_are_cancelled(make_emulator, receiver: CallbackReceiver) -> None:
    emulator = make_emulator()
    stalled = accepted_id(
        submit(emulator, headers={**AUTH, "X-Emulator-Fault": "stall=60"}, notifyHook=receiver.hook())
    )
    emulator.wait_idle()
    assert emulator.tasks[stalled].status == "IN_PROGRESS"
    assert_empty_200(cancel(emulator, stalled))
    emulator.wait_idle()
    assert receiver.steps(stalled) == [("SUBMITTED", "0%"), ("IN_PROGRESS", "60%"), CANCELLED]

    manual = make_emulator(auto_run=False)
    task_id = accepted_id(submit(manual, notifyHook=receiver.hook("m")))
    assert_empty_200(cancel(manual, task_id))
    manual.wait_idle()
    assert (manual.tasks[task_id].status, manual.tasks[task_id].fail_reason) == ("FAILURE", REASON)
    assert receiver.steps(task_id) == [CANCELLED]


def test_a_finished_task_stays_as_it_is(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = accepted_id(submit(emulator, notifyHook=receiver.hook()))
    emulator.wait_idle()
    before = emulator.snapshot(task_id)
    callbacks = len(receiver.received)
    assert before["status"] == "SUCCESS"
    assert_empty_200(cancel(emulator, task_id))
    emulator.wait_idle()
    assert emulator.snapshot(task_id) == before
    assert len(receiver.received) == callbacks, "no callback for a cancel that changed nothing"
    assert requests.get(before["imageUrl"], timeout=5).status_code == 200


def test_an_unknown_id_still_answers_200(emulator: SwapEmulator) -> None:
    assert_empty_200(cancel(emulator, "404404"))
    assert_empty_200(requests.post(f"{emulator.url}/mj-fast/mj/task/1/cancel", headers=AUTH, timeout=5))
    assert emulator.cancel_requests == ["404404", "1"]
    assert emulator.tasks == {}
    assert requests.get(f"{emulator.url}/mj/task/1/cancel", headers=AUTH, timeout=5).status_code == 404


def test_cancel_can_be_missing_as_on_relays_that_lack_it(make_emulator) -> None:
    emulator = make_emulator(cancel=False, auto_run=False)
    task_id = accepted_id(submit(emulator))
    response = cancel(emulator, task_id)
    assert response.status_code == 404 and response.json()["error"] == "Not Found"
    assert emulator.tasks[task_id].status == "SUBMITTED", "a missing route cancels nothing"
    assert emulator.cancel_requests == [task_id]


def test_cancel_is_switched_off_and_on_through_the_control_endpoint(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    url = f"{emulator.url}/_emulator/faults"
    assert requests.get(url, timeout=5).json()["cancel"] is True
    assert requests.post(url, json={"cancel": False}, timeout=5).json()["cancel"] is False
    task_id = accepted_id(submit(emulator))
    assert cancel(emulator, task_id).status_code == 404
    assert requests.post(url, json={"cancel": "no"}, timeout=5).status_code == 400
    assert requests.delete(url, timeout=5).json()["cancel"] is True, "clearing restores the configured route"
    assert requests.post(url, json={"cancel": False}, timeout=5).json()["cancel"] is False
    assert requests.post(url, json={"clear": True}, timeout=5).json()["cancel"] is True
    assert_empty_200(cancel(emulator, task_id))
    assert emulator.tasks[task_id].status == "FAILURE"
    emulator.cancel_enabled = False
    assert cancel(emulator, "1").status_code == 404


def test_the_no_cancel_flag() -> None:
    assert config_from_args(build_parser().parse_args(["--no-cancel"])).cancel is False
    assert config_from_args(build_parser().parse_args([])).cancel is True


# --- our client against it ----------------------------------------------------------------------


def client_for(emulator: SwapEmulator, key: str = API_KEY) -> UpstreamClient:
    return UpstreamClient(emulator.url, lambda: key, AuthStyle.BEARER, 5)


def test_cancel_task_against_the_emulator(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator))
    assert client_for(emulator).cancel_task(task_id) is True
    assert emulator.tasks[task_id].status == "FAILURE"
    assert client_for(emulator).cancel_task(task_id) is True, "a finished task: 200 all the same"
    with pytest.raises(UpstreamError, match="HTTP 401") as raised:
        client_for(emulator, key="wrong-key-7").cancel_task(task_id)
    assert "wrong-key-7" not in str(raised.value)
    emulator.cancel_enabled = False
    assert client_for(emulator).cancel_task(task_id) is None


def test_a_worker_step_never_overwrites_a_task_that_ended_meanwhile() -> None:
    """The race the route leaves open: the cancel lands between a worker's check and its write."""
    task = Task(id="1", notify_hook="", state="job-1", status="IN_PROGRESS")
    assert task.update_if_open(progress="45%") is not None and task.progress == "45%"
    task.update(status="FAILURE", progress="", fail_reason=REASON)
    assert task.update_if_open(status="SUCCESS", progress="100%") is None
    assert (task.status, task.progress, task.fail_reason) == ("FAILURE", "", REASON)
