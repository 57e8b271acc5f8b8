"""Fault injection: the spec language, each fault, and the three ways to ask for them."""

from __future__ import annotations

import time

import pytest
import requests
from swapdrop_emulator import Fault, FaultPlan, FaultSpecError, SwapEmulator, parse_fault, parse_faults

from .conftest import AUTH, LIFECYCLE, RESULT_PNG, CallbackReceiver, accepted_id, submit, swap_body

SUCCESS = ("SUCCESS", "100%")
ALL_STEPS = [*LIFECYCLE, SUCCESS]


def with_fault(spec: str) -> dict[str, str]:
    return {**AUTH, "X-Emulator-Fault": spec}


# --- the spec language --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("latency=2.5", Fault("latency", 2.5)),
        ("status=503", Fault("status", 503)),
        ("code=23", Fault("code", 23)),
        ("code=-1", Fault("code", -1)),
        ("timeout", Fault("timeout", None)),
        ("timeout=1.5", Fault("timeout", 1.5)),
        ("reset", Fault("reset")),
        ("timeout_after_accept", Fault("timeout_after_accept")),
        ("drop_callbacks", Fault("drop_callbacks", "all")),
        ("drop-callbacks=final", Fault("drop_callbacks", "final")),
        ("duplicate_callbacks", Fault("duplicate_callbacks", 2)),
        ("duplicate_callbacks=3", Fault("duplicate_callbacks", 3)),
        ("reorder_callbacks", Fault("reorder_callbacks", "reverse")),
        ("reorder_callbacks=shuffled", Fault("reorder_callbacks", "shuffle")),
        ("ignore_notify_hook", Fault("ignore_notify_hook")),
        ("fail=no face found", Fault("fail", "no face found")),
        ("fail=%E6%89%A7%E8%A1%8C%E8%B6%85%E6%97%B6", Fault("fail", "执行超时")),
        ("fail=mail me@home", Fault("fail", "mail me@home")),
        ("expire_results=60", Fault("expire_results", 60.0)),
        ("stall", Fault("stall", 45)),
        ("stall=80", Fault("stall", 80)),
        ("code=23@0.3", Fault("code", 23, 0.3)),
        (" list:status=503 @ .5 ", Fault("status", 503, 0.5, "list")),
        ("image:latency=1", Fault("latency", 1.0, 1.0, "image")),
        ("any:reset", Fault("reset", None, 1.0, "any")),
    ],
)
def test_parse_fault(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert parse_fault(str(fault)) == fault, "faults render back to the spec language"


@pytest.mark.parametrize(
    "text",
    [
        "explode",
        "latency",
        "latency=soon",
        "status=99",
        "status=abc",
        "code",
        "reset=1",
        "fail",
        "fail=",
        "drop_callbacks=some",
        "duplicate_callbacks=1",
        "stall=100",
        "code=23@1.5",
        "list:code=23",
        "image:drop_callbacks",
        "fetch:fail=x",
    ],
)
def test_bad_specs_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FaultSpecError, match=r"\S"):
        parse_fault(text)


def test_a_spec_holds_several_faults() -> None:
    assert parse_faults("latency=0.5; drop_callbacks ;; code=9") == [
        Fault("latency", 0.5),
        Fault("drop_callbacks", "all"),
        Fault("code", 9),
    ]


def test_the_plan_validates_entries_as_they_are_added() -> None:
    plan = FaultPlan()
    plan.next_submits.append("code=23")
    plan.next_lists.append("status=503")  # unscoped faults take the queue's scope
    plan.always += ["latency=0.1", "image:status=404"]
    plan.next("fetch:timeout=1", count=2)
    with pytest.raises(FaultSpecError):
        plan.next_submits.append("nonsense")
    with pytest.raises(FaultSpecError):
        plan.next_lists.append("submit:code=23")
    with pytest.raises(FaultSpecError):
        plan.next("any:reset")
    assert plan.describe() == {
        "always": ["latency=0.1", "image:status=404"],
        "next": {
            "submit": ["code=23"],
            "fetch": ["fetch:timeout=1"] * 2,
            "list": ["list:status=503"],
            "task_list": [],
            "image": [],
        },
        "seed": None,
    }
    once = plan.resolve("submit")
    assert (once.code, once.latency) == (23, 0.1)
    assert plan.resolve("submit").code is None, "once-only entries are used up"
    assert plan.resolve("image").status == 404
    plan.clear()
    assert plan.resolve("list").status is None


def test_probabilistic_faults_are_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[int | None]:
        plan = FaultPlan(["code=23@0.5"], seed=seed)
        return [plan.resolve("submit").code for _ in range(40)]

    first = draws(7)
    assert first == draws(7)
    assert 5 < first.count(23) < 35


# --- how the answer goes wrong ------------------------------------------------------------------


def test_latency_delays_the_answer(emulator: SwapEmulator) -> None:
    started = time.monotonic()
    response = submit(emulator, headers=with_fault("latency=0.3"))
    assert response.json()["code"] == 1
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize(
    ("status", "check"),
    [
        (503, lambda r: r.headers["content-type"] == "text/html" and b"503" in r.content),
        (502, lambda r: b"Bad Gateway" in r.content),
        (401, lambda r: r.content == b""),
        (429, lambda r: r.json()["error"]["type"] == "new_api_error"),
        (403, lambda r: r.json()["type"] == "upstream_error"),
    ],
)
def test_status_faults(emulator: SwapEmulator, status: int, check) -> None:
    response = submit(emulator, headers=with_fault(f"status={status}"))
    assert response.status_code == status and check(response)
    assert emulator.tasks == {} and len(emulator.swaps) == 1


@pytest.mark.parametrize(
    ("code", "description"),
    [(23, "队列已满，请稍后尝试"), (9, "提交失败，队列已满，请稍后重试"), (24, "可能包含敏感词"), (4, "参数错误")],
)
def test_code_faults_refuse_the_submit(emulator: SwapEmulator, code: int, description: str) -> None:
    payload = submit(emulator, headers=with_fault(f"code={code}")).json()
    assert payload == {"code": code, "description": description, "result": None, "properties": {}}
    assert emulator.tasks == {}


def test_code_minus_1_is_the_relay_shape(emulator: SwapEmulator) -> None:
    payload = submit(emulator, headers=with_fault("code=-1")).json()
    assert payload["success"] is False and payload["code"] == -1 and payload["message"]


def test_code_22_and_21_accept_the_task(emulator: SwapEmulator) -> None:
    queued = submit(emulator, headers=with_fault("code=22")).json()
    assert queued["code"] == 22 and queued["properties"] == {"numberOfQueues": 1}
    existed = submit(emulator, headers=with_fault("code=21"), source=b"other").json()
    assert existed["code"] == 21
    assert {queued["result"], existed["result"]} == set(emulator.tasks)


def test_timeout_holds_the_answer_past_the_client_timeout(emulator: SwapEmulator) -> None:
    with pytest.raises(requests.ReadTimeout):
        submit(emulator, headers=with_fault("timeout"), timeout=0.3)
    assert emulator.tasks == {} and len(emulator.swaps) == 1


def test_a_short_timeout_closes_the_connection_without_an_answer(emulator: SwapEmulator) -> None:
    with pytest.raises(requests.ConnectionError):
        submit(emulator, headers=with_fault("timeout=0.1"), timeout=5)


def test_timeout_after_accept_leaves_a_task_behind(emulator: SwapEmulator) -> None:
    with pytest.raises(requests.ReadTimeout):
        submit(emulator, headers=with_fault("timeout_after_accept=5"), timeout=0.3)
    emulator.wait_idle()
    (task,) = emulator.tasks.values()
    assert task.status == "SUCCESS", "the client never heard, but the task ran"


def test_reset_closes_the_connection_at_once(emulator: SwapEmulator) -> None:
    with pytest.raises(requests.ConnectionError):
        submit(emulator, headers=with_fault("reset"))


def test_stop_does_not_wait_for_a_held_connection(make_emulator) -> None:
    emulator = make_emulator(faults=["timeout"], timeout_hold_seconds=60)
    import threading

    errors: list[BaseException] = []

    def client() -> None:
        try:
            submit(emulator, timeout=30)
        except requests.RequestException as error:
            errors.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert not thread.is_alive() and isinstance(errors[0], requests.ConnectionError)


# --- what happens to the task and its callbacks -------------------------------------------------


def _run(emulator: SwapEmulator, receiver: CallbackReceiver, spec: str) -> str:
    task_id = accepted_id(submit(emulator, headers=with_fault(spec), notifyHook=receiver.hook()))
    emulator.wait_idle()
    return task_id


def test_drop_callbacks(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "drop_callbacks")
    assert receiver.received == []
    task = emulator.tasks[task_id]
    assert task.status == "SUCCESS" and (task.callbacks_sent, task.callbacks_dropped) == (0, 5)
    assert {c.outcome for c in emulator.callbacks} == {"dropped"}


def test_drop_only_the_final_callback(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    _run(emulator, receiver, "drop_callbacks=final")
    assert receiver.steps() == LIFECYCLE


def test_drop_only_the_progress_callbacks(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    _run(emulator, receiver, "drop_callbacks=progress")
    assert receiver.steps() == [SUCCESS]


def test_duplicate_callbacks(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "duplicate_callbacks=3")
    assert receiver.steps() == [step for step in ALL_STEPS for _ in range(3)]
    assert emulator.tasks[task_id].callbacks_sent == 15


def test_reorder_callbacks_delivers_the_final_one_first(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    _run(emulator, receiver, "reorder_callbacks")
    assert receiver.steps() == ALL_STEPS[::-1]


def test_shuffled_callbacks_all_arrive(make_emulator, receiver: CallbackReceiver) -> None:
    emulator = make_emulator(seed=3)
    _run(emulator, receiver, "reorder_callbacks=shuffle")
    assert sorted(receiver.steps()) == sorted(ALL_STEPS)


def test_reorder_with_a_dropped_final_callback_still_flushes(
    emulator: SwapEmulator, receiver: CallbackReceiver
) -> None:
    _run(emulator, receiver, "reorder_callbacks; drop_callbacks=final")
    assert receiver.steps() == LIFECYCLE[::-1]


def test_ignore_notify_hook(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "ignore_notify_hook")
    task = emulator.tasks[task_id]
    assert receiver.received == [] and emulator.callbacks == []
    assert task.notify_hook == "" and task.callbacks_sent == 0 and task.status == "SUCCESS"


def test_fail_ends_the_task_with_the_reason_and_runs_no_swap(make_emulator, receiver) -> None:
    calls = []
    emulator = make_emulator(engine=lambda s, t: calls.append(1) or RESULT_PNG)
    task_id = _run(emulator, receiver, "fail=%E6%89%A7%E8%A1%8C%E8%B6%85%E6%97%B6 10 %E5%88%86%E9%92%9F")
    assert receiver.received[-1].body["failReason"] == "执行超时 10 分钟"
    assert emulator.tasks[task_id].status == "FAILURE" and calls == []


def test_expire_results(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "expire_results=60")
    url = emulator.tasks[task_id].image_url
    assert requests.get(url, timeout=5).status_code == 200
    emulator.expire_result(task_id)
    expired = requests.get(url, timeout=5)
    assert (expired.status_code, expired.content) == (404, b"This content is no longer available.")


def test_expire_results_on_the_clock(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "expire_results=0.05")
    url = emulator.tasks[task_id].image_url
    deadline = time.monotonic() + 5
    while requests.get(url, timeout=5).status_code != 404:
        assert time.monotonic() < deadline, "the result never expired"
        time.sleep(0.02)


def test_stall_leaves_the_task_in_progress_until_driven(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = _run(emulator, receiver, "stall=60")
    assert receiver.steps() == [("SUBMITTED", "0%"), ("IN_PROGRESS", "60%")]
    assert emulator.tasks[task_id].status == "IN_PROGRESS"
    emulator.succeed(task_id)
    emulator.notify(task_id)
    emulator.wait_idle()
    assert receiver.steps()[-1] == SUCCESS


# --- the three ways to ask ----------------------------------------------------------------------


def test_a_header_fault_applies_to_that_request_only(emulator: SwapEmulator) -> None:
    assert submit(emulator, headers=with_fault("code=23")).json()["code"] == 23
    assert submit(emulator).json()["code"] == 1


def test_a_bad_header_is_http_400(emulator: SwapEmulator) -> None:
    response = submit(emulator, headers=with_fault("explode"))
    assert response.status_code == 400 and "explode" in response.json()["error"]
    assert emulator.swaps == []


def test_next_submits_are_used_once_each_in_order(emulator: SwapEmulator) -> None:
    emulator.faults.next_submits.append("code=23")
    emulator.faults.next_submits.append("status=503")
    codes = [submit(emulator, source=bytes([i])) for i in range(3)]
    assert [(r.status_code, r.headers["content-type"]) for r in codes][1] == (503, "text/html")
    assert [codes[0].json()["code"], codes[2].json()["code"]] == [23, 1]


def test_per_run_faults_are_sticky(make_emulator) -> None:
    emulator = make_emulator(faults=["code=23"])
    assert [submit(emulator, source=bytes([i])).json()["code"] for i in range(3)] == [23, 23, 23]


def test_per_run_probabilistic_faults(make_emulator) -> None:
    emulator = make_emulator(faults=["code=23@0.5"], seed=11, queue_size=100)
    codes = [submit(emulator, source=bytes([i])).json()["code"] for i in range(30)]
    assert 23 in codes and 1 in codes and set(codes) <= {1, 22, 23}


def test_scoped_faults_hit_only_their_requests(make_emulator) -> None:
    emulator = make_emulator(faults=["list:status=503", "fetch:status=502", "image:status=500"])
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    listing = requests.post(
        f"{emulator.url}/mj/task/list-by-condition", json={"ids": [task_id]}, headers=AUTH, timeout=5
    )
    fetch = requests.get(f"{emulator.url}/mj/task/{task_id}/fetch", headers=AUTH, timeout=5)
    image = requests.get(emulator.tasks[task_id].image_url, timeout=5)
    assert (listing.status_code, fetch.status_code, image.status_code) == (503, 502, 500)
    assert emulator.list_requests == [], "a faulted request never reached the handler"


def test_any_scope_and_header_faults_on_polls(emulator: SwapEmulator) -> None:
    emulator.faults.always.append("any:latency=0.01")
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{emulator.url}/mj/task/{task_id}/fetch", headers=with_fault("timeout"), timeout=0.3)
    assert requests.get(f"{emulator.url}/mj/task/{task_id}/fetch", headers=AUTH, timeout=5).json()["id"] == task_id


def test_the_control_endpoint(emulator: SwapEmulator) -> None:
    url = f"{emulator.url}/_emulator/faults"
    plan = requests.post(url, json={"next": ["code=23", "list:status=503"], "always": "latency=0"}, timeout=5).json()
    assert plan["next"]["submit"] == ["code=23"] and plan["next"]["list"] == ["list:status=503"]
    assert plan["always"] == ["latency=0"]
    assert requests.get(url, timeout=5).json()["next"]["submit"] == ["code=23"]
    assert submit(emulator).json()["code"] == 23
    listing = requests.post(f"{emulator.url}/mj/task/list-by-condition", json={"ids": []}, headers=AUTH, timeout=5)
    assert listing.status_code == 503
    assert submit(emulator).json()["code"] == 1

    bad = requests.post(url, json={"next": ["code=23", "nonsense"]}, timeout=5)
    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]
    assert requests.get(url, timeout=5).json()["next"]["submit"] == [], "a bad request changes nothing"

    scripted = requests.post(url, json={"script": [{"status": 502, "body": None}]}, timeout=5).json()
    assert scripted["script"] == 1
    assert submit(emulator, source=b"again").status_code == 502

    cleared = requests.delete(url, timeout=5).json()
    assert cleared["always"] == [] and all(v == [] for v in cleared["next"].values())
    assert requests.post(url, json={"always": ["code=9"], "seed": 5, "clear": True}, timeout=5).json()["seed"] == 5
    assert submit(emulator, source=b"3").json()["code"] == 9


def test_faults_apply_together_with_a_real_request(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    body = swap_body(notifyHook=receiver.hook())
    response = submit(emulator, body, headers=with_fault("latency=0.05; duplicate_callbacks; drop_callbacks=final"))
    assert response.json()["code"] == 1
    emulator.wait_idle()
    assert receiver.steps() == [step for step in LIFECYCLE for _ in range(2)]
