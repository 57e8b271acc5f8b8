"""trueai's GET /mj/task/list, a hostile upstream (odd snapshots, non-list answers, a dripping
result) and the submit faults that leave a task behind without a usable answer."""

from __future__ import annotations

import json
import math
import threading

import pytest
import requests
import urllib3
from swapdrop_emulator import ODD_KINDS, Fault, FaultSpecError, Raw, SwapEmulator, parse_fault
from swapdrop_emulator.hostile import LONG_REASON_BYTES, UNKNOWN_STATUS, dumps, odd_reason, picked

from .conftest import AUTH, RESULT_PNG, SOURCE, CallbackReceiver, accepted_id, submit, wait_until


def with_fault(spec: str) -> dict[str, str]:
    return {**AUTH, "X-Emulator-Fault": spec}


def task_list(emulator: SwapEmulator, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{emulator.url}/mj/task/list", headers=AUTH if headers is None else headers, timeout=5)


def list_by_condition(
    emulator: SwapEmulator, ids: list[str], headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{emulator.url}/mj/task/list-by-condition",
        json={"ids": ids},
        headers=AUTH if headers is None else headers,
        timeout=5,
    )


def fetch(emulator: SwapEmulator, task_id: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(
        f"{emulator.url}/mj/task/{task_id}/fetch", headers=AUTH if headers is None else headers, timeout=5
    )


def submit_many(emulator: SwapEmulator, count: int, **extra: object) -> list[str]:
    return [accepted_id(submit(emulator, source=bytes([i % 256, i // 256]) + SOURCE, **extra)) for i in range(count)]


# --- GET /mj/task/list --------------------------------------------------------------------------


def test_task_list_is_the_latest_100_newest_first_with_full_snapshots(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    ids = [
        accepted_id(submit(emulator, source=bytes([i % 256, i // 256]) + SOURCE, state=f"job-{i}")) for i in range(105)
    ]
    emulator.succeed(ids[-1])
    response = task_list(emulator)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    listed = response.json()
    assert [s["id"] for s in listed] == ids[::-1][:100], "newest first, the 100 latest only"
    assert [s["state"] for s in listed[:2]] == ["job-104", "job-103"], "state is there to search"
    assert listed[0] == emulator.snapshot(ids[-1]) and listed[0]["status"] == "SUCCESS"
    assert listed[1]["status"] == "SUBMITTED" and listed[1]["action"] == "SWAP_FACE"
    assert emulator.task_list_requests == 1


def test_task_list_needs_the_key(emulator: SwapEmulator) -> None:
    assert task_list(emulator, headers={}).status_code == 401


def test_task_list_can_be_missing_as_on_relays_that_hide_it(make_emulator) -> None:
    emulator = make_emulator(task_list=False)
    submit_many(emulator, 1)
    response = task_list(emulator)
    assert response.status_code == 404 and response.json()["error"] == "Not Found"
    assert emulator.task_list_requests == 1


def test_task_list_is_switched_off_and_on_through_the_control_endpoint(emulator: SwapEmulator) -> None:
    url = f"{emulator.url}/_emulator/faults"
    assert requests.post(url, json={"task_list": False}, timeout=5).json()["task_list"] is False
    assert task_list(emulator).status_code == 404
    assert requests.post(url, json={"task_list": "no"}, timeout=5).status_code == 400
    assert requests.delete(url, timeout=5).json()["task_list"] is True, "clearing restores the configured route"
    assert task_list(emulator).status_code == 200
    emulator.task_list_enabled = False
    assert task_list(emulator).status_code == 404


def test_task_list_has_its_own_fault_scope(emulator: SwapEmulator) -> None:
    assert task_list(emulator, with_fault("status=404")).status_code == 404
    emulator.faults.next_task_lists.append("status=503")
    emulator.faults.next_lists.append("status=502")
    assert task_list(emulator).status_code == 503
    assert task_list(emulator).status_code == 200, "a once-only entry is used up"
    requests.post(f"{emulator.url}/_emulator/faults", json={"next": ["task_list:reset"]}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        task_list(emulator)
    assert list_by_condition(emulator, []).status_code == 502, "the list-by-condition queue is separate"


# --- raw JSON text ------------------------------------------------------------------------------


def test_dumps_writes_raw_json_numbers_and_tokens_verbatim() -> None:
    text = dumps({"a": Raw("1e400"), "b": [Raw("NaN"), Raw("-Infinity")], "c": '"\x00raw-x-0\x00"', "d": "é"})
    assert text == '{"a": 1e400, "b": [NaN, -Infinity], "c": "\\"\\u0000raw-x-0\\u0000\\"", "d": "é"}'
    parsed = json.loads(text)
    assert parsed["a"] == math.inf and math.isnan(parsed["b"][0]) and parsed["b"][1] == -math.inf


@pytest.mark.parametrize(
    ("kind", "text", "check"),
    [
        ("inf", '"progress": 1e400', lambda p: p == math.inf),
        ("infinity", '"progress": Infinity', lambda p: p == math.inf),
        ("neg_infinity", '"progress": -Infinity', lambda p: p == -math.inf),
        ("nan", '"progress": NaN', math.isnan),
        ("negative", '"progress": -20', lambda p: p == -20),
        ("huge", '"progress": 1e30', lambda p: p == 1e30),
    ],
)
def test_odd_progress_in_a_fetch_answer(emulator: SwapEmulator, kind: str, text: str, check) -> None:
    (task_id,) = submit_many(emulator, 1)
    emulator.wait_idle()
    response = fetch(emulator, task_id, with_fault(f"odd_snapshot={kind}"))
    assert text in response.text
    odd = response.json()
    assert check(odd["progress"]) and odd["id"] == task_id and odd["status"] == "SUCCESS"
    assert fetch(emulator, task_id).json()["progress"] == "100%", "an answer fault leaves the task as it is"


def test_other_odd_snapshots_in_answers(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    (task_id,) = submit_many(emulator, 1)
    assert fetch(emulator, task_id, with_fault("odd_snapshot=unknown_status")).json()["status"] == UNKNOWN_STATUS
    assert "id" not in fetch(emulator, task_id, with_fault("odd_snapshot=missing_id")).json()
    reason = fetch(emulator, task_id, with_fault("odd_snapshot=long_reason")).json()["failReason"]
    assert len(reason.encode()) == LONG_REASON_BYTES and reason.startswith(odd_reason("long_reason"))
    emulator.fail(task_id, "no face")
    final = fetch(emulator, task_id, with_fault("odd_snapshot=unknown_status")).json()
    assert final["status"] == "FAILURE", "a final status is never replaced, so the task still ends"
    assert fetch(emulator, task_id, with_fault("odd_snapshot=long_reason")).json()["failReason"].startswith("no face: ")


# --- odd tasks: every report, and a coherent end ------------------------------------------------


def test_an_odd_task_is_odd_everywhere_and_fails_with_a_reason(
    emulator: SwapEmulator, receiver: CallbackReceiver
) -> None:
    task_id = accepted_id(submit(emulator, headers=with_fault("odd_snapshot=inf"), notifyHook=receiver.hook()))
    emulator.wait_idle()
    assert len(receiver.received) == 5
    assert all(b'"progress": 1e400' in r.raw and r.body["progress"] == math.inf for r in receiver.received)
    final = receiver.received[-1].body
    assert (final["status"], final["failReason"]) == ("FAILURE", odd_reason("inf"))
    assert '"progress": 1e400' in fetch(emulator, task_id).text
    assert list_by_condition(emulator, [task_id]).json()[0]["progress"] == math.inf
    assert task_list(emulator).json()[0]["progress"] == math.inf
    truth = requests.get(f"{emulator.url}/_emulator/tasks", timeout=5).json()
    assert truth[0]["progress"] == "" and truth[0]["status"] == "FAILURE", "the control view stays truthful"


def test_an_odd_task_can_succeed_instead(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    spec = "odd_snapshot=nan; odd_outcome=success"
    task_id = accepted_id(submit(emulator, headers=with_fault(spec), notifyHook=receiver.hook()))
    emulator.wait_idle()
    final = receiver.received[-1]
    assert final.body["status"] == "SUCCESS" and b'"progress": NaN' in final.raw
    assert requests.get(final.body["imageUrl"], timeout=5).content == RESULT_PNG
    assert emulator.tasks[task_id].status == "SUCCESS"


def test_an_unknown_status_task_still_ends_failure(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    submit(emulator, headers=with_fault("odd_snapshot=unknown_status"), notifyHook=receiver.hook())
    emulator.wait_idle()
    statuses = [r.body["status"] for r in receiver.received]
    assert statuses == [UNKNOWN_STATUS] * 4 + ["FAILURE"]


def test_a_missing_id_and_a_long_reason_in_callbacks(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    submit(emulator, headers=with_fault("odd_snapshot=missing_id"), notifyHook=receiver.hook("a"))
    submit(emulator, headers=with_fault("odd_snapshot=long_reason"), notifyHook=receiver.hook("b"), source=b"2")
    emulator.wait_idle()
    first = [r.body for r in receiver.received if r.path.startswith("/callbacks/a")]
    second = [r.body for r in receiver.received if r.path.startswith("/callbacks/b")]
    assert len(first) == 5 and all("id" not in body for body in first)
    assert first[-1]["failReason"] == odd_reason("missing_id")
    assert all(len(body["failReason"].encode()) == LONG_REASON_BYTES for body in second)
    assert second[-1]["status"] == "FAILURE"


def test_one_task_in_five_is_odd_and_the_healthy_ones_finish(make_emulator) -> None:
    emulator = make_emulator(faults=["odd_snapshot=inf; odd_snapshot_ratio=0.2"], queue_size=20)
    ids = submit_many(emulator, 10)
    emulator.wait_idle()
    statuses = [emulator.tasks[i].status for i in ids]
    assert statuses == ["FAILURE"] + ["SUCCESS"] * 4 + ["FAILURE"] + ["SUCCESS"] * 4
    listed = list_by_condition(emulator, ids[:5])
    assert listed.text.count("1e400") == 1
    assert [s["progress"] for s in listed.json()] == [math.inf] + ["100%"] * 4


def test_an_answer_fault_makes_one_item_in_five_odd(emulator: SwapEmulator) -> None:
    ids = submit_many(emulator, 5)
    emulator.wait_idle()
    listed = list_by_condition(emulator, ids, with_fault("odd_snapshot=infinity; odd_snapshot_ratio=0.2")).json()
    assert [s["progress"] for s in listed] == [math.inf] + ["100%"] * 4
    assert [s["id"] for s in listed] == ids
    newest = task_list(emulator, with_fault("odd_snapshot=missing_id; odd_snapshot_ratio=0.4")).json()
    assert ["id" in s for s in newest] == [False, True, False, True, True]
    assert all("id" in s for s in list_by_condition(emulator, ids).json()), "the next answer is healthy"


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("object", dict), ("null", type(None)), ("string", str), ("number", int)],
)
def test_list_answers_that_are_not_lists(emulator: SwapEmulator, shape: str, expected: type) -> None:
    ids = submit_many(emulator, 2)
    for response in (
        list_by_condition(emulator, ids, with_fault(f"non_list={shape}")),
        task_list(emulator, with_fault(f"non_list={shape}")),
    ):
        assert response.status_code == 200 and isinstance(response.json(), expected)
    wrapped = list_by_condition(emulator, ids, with_fault("non_list")).json()
    assert [s["id"] for s in wrapped["result"]] == ids


def test_hostile_faults_through_the_control_endpoint(emulator: SwapEmulator) -> None:
    url = f"{emulator.url}/_emulator/faults"
    plan = requests.post(
        url, json={"always": ["odd_snapshot=huge"], "next": ["list:non_list=null", "fetch:odd_snapshot=nan"]}, timeout=5
    ).json()
    assert plan["always"] == ["odd_snapshot=huge"]
    assert plan["next"]["list"] == ["list:non_list=null"] and plan["next"]["fetch"] == ["fetch:odd_snapshot=nan"]
    (task_id,) = submit_many(emulator, 1)
    emulator.wait_idle()
    assert emulator.tasks[task_id].status == "FAILURE"
    assert list_by_condition(emulator, [task_id]).json() is None
    assert math.isnan(fetch(emulator, task_id).json()["progress"])
    assert '"progress": 1e30' in fetch(emulator, task_id).text, "the task's own oddity once the entry is used"
    bad = requests.post(url, json={"always": ["image:odd_snapshot=inf"]}, timeout=5)
    assert bad.status_code == 400 and "odd_snapshot" in bad.json()["error"]


# --- the spec language for the new faults -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("odd_snapshot=inf", Fault("odd_snapshot", "inf")),
        ("odd_snapshot=1e400", Fault("odd_snapshot", "inf")),
        ("odd_snapshot=-Infinity", Fault("odd_snapshot", "neg_infinity")),
        ("list:odd_snapshot=nan@0.5", Fault("odd_snapshot", "nan", 0.5, "list")),
        ("task_list:odd_snapshot=missing_id", Fault("odd_snapshot", "missing_id", 1.0, "task_list")),
        ("odd_snapshot_ratio=0.2", Fault("odd_snapshot_ratio", 0.2)),
        ("fetch:odd_snapshot_ratio=1", Fault("odd_snapshot_ratio", 1.0, 1.0, "fetch")),
        ("odd_outcome=success", Fault("odd_outcome", "success")),
        ("list:non_list", Fault("non_list", "object", 1.0, "list")),
        ("task_list:non_list=string", Fault("non_list", "string", 1.0, "task_list")),
        ("image:drip", Fault("drip", 3.0, 1.0, "image")),
        ("image:drip=0.5", Fault("drip", 0.5, 1.0, "image")),
        ("drip=2", Fault("drip", 2.0)),
        ("reset_after_accept", Fault("reset_after_accept")),
        ("status_after_accept=504", Fault("status_after_accept", 504)),
        ("task_list:status=404", Fault("status", 404, 1.0, "task_list")),
    ],
)
def test_parse_the_new_faults(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert parse_fault(str(fault)) == fault


@pytest.mark.parametrize(
    "text",
    [
        "odd_snapshot",
        "odd_snapshot=weird",
        "image:odd_snapshot=inf",
        "any:odd_snapshot=inf",
        "odd_snapshot_ratio=0",
        "odd_snapshot_ratio=1.5",
        "odd_snapshot_ratio=a",
        "non_list",
        "fetch:non_list",
        "list:non_list=tuple",
        "list:drip",
        "image:drip=0",
        "fetch:odd_outcome=success",
        "odd_outcome=maybe",
        "reset_after_accept=1",
        "status_after_accept=700",
        "list:reset_after_accept",
    ],
)
def test_bad_new_specs_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FaultSpecError, match=r"\S"):
        parse_fault(text)


def test_every_odd_kind_parses() -> None:
    assert [parse_fault(f"odd_snapshot={kind}").value for kind in ODD_KINDS] == list(ODD_KINDS)


def test_picked_takes_the_first_of_every_group() -> None:
    assert [i for i in range(12) if picked(i, 0.2)] == [0, 5, 10]
    assert [i for i in range(40) if picked(i, 0.1)] == [0, 10, 20, 30]
    assert all(picked(i, None) and picked(i, 1.0) for i in range(5))


# --- a dripping result --------------------------------------------------------------------------


def _start_drip(url: str, headers: dict[str, str] | None = None) -> tuple[requests.Response, bytes]:
    response = requests.get(url, headers=headers, stream=True, timeout=10)
    first = response.raw.read(3)
    return response, first


def test_a_dripping_result_declares_a_million_bytes_and_blocks_nothing_else(
    emulator: SwapEmulator,
) -> None:
    ids = submit_many(emulator, 2)
    emulator.wait_idle()
    url = emulator.tasks[ids[0]].image_url
    response, first = _start_drip(url, {"X-Emulator-Fault": "drip=0.05"})
    assert response.status_code == 200 and response.headers["content-length"] == "1000000"
    assert first == RESULT_PNG[:3]
    assert fetch(emulator, ids[1]).json()["status"] == "SUCCESS", "other requests are served meanwhile"
    assert requests.get(emulator.tasks[ids[1]].image_url, timeout=5).content == RESULT_PNG
    emulator.stop()
    with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
        response.raw.read(1_000_000)  # the drip ends with the emulator: incomplete, not hanging
    response.close()


def test_a_task_whose_result_drips(make_emulator) -> None:
    emulator = make_emulator(drip_length=20)
    task_id = accepted_id(submit(emulator, headers=with_fault("drip=0.01")))
    emulator.wait_idle()
    response = requests.get(emulator.tasks[task_id].image_url, timeout=10)
    assert response.headers["content-length"] == "20" and response.content == RESULT_PNG[:20]


def test_a_per_run_drip_and_a_client_that_gives_up(make_emulator) -> None:
    emulator = make_emulator(faults=["image:drip=0.05"])
    (task_id,) = submit_many(emulator, 1)
    emulator.wait_idle()
    with pytest.raises((requests.ReadTimeout, requests.ConnectionError), match="Read timed out"):
        requests.get(emulator.tasks[task_id].image_url, timeout=(5, 0.01))
    wait_until(lambda: requests.get(f"{emulator.url}/_emulator/health", timeout=5).ok, message="still serving")


# --- sent, but no answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error", "leaves_a_task"),
    [
        ("timeout=0.1", requests.ConnectionError, False),
        ("reset", requests.ConnectionError, False),
        ("status=504", None, False),
        ("timeout_after_accept=5", requests.ReadTimeout, True),
        ("reset_after_accept", requests.ConnectionError, True),
        ("status_after_accept=504", None, True),
        ("latency=5", requests.ReadTimeout, True),
    ],
)
def test_which_failed_answers_leave_a_task_behind(
    emulator: SwapEmulator, spec: str, error: type[Exception] | None, leaves_a_task: bool
) -> None:
    if error is None:
        assert submit(emulator, headers=with_fault(spec), state="job-9").status_code == 504
    else:
        with pytest.raises(error):
            submit(emulator, headers=with_fault(spec), state="job-9", timeout=0.5)
    emulator.wait_idle()
    if leaves_a_task:
        (task,) = emulator.tasks.values()
        assert task.status == "SUCCESS" and task.state == "job-9"
        assert task_list(emulator).json()[0]["state"] == "job-9", "the task can be found by its state"
    else:
        assert emulator.tasks == {} and task_list(emulator).json() == []


def test_stop_ends_every_drip(make_emulator) -> None:
    emulator = make_emulator(faults=["image:drip=30"])
    (task_id,) = submit_many(emulator, 1)
    emulator.wait_idle()
    url = emulator.tasks[task_id].image_url
    results: list[BaseException | bytes] = []

    def client() -> None:
        try:
            results.append(requests.get(url, timeout=(5, 60)).content)
        except requests.RequestException as error:
            results.append(error)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(emulator._server._connections) >= 3, message="three drips in progress")
    emulator.stop()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "no client is left hanging"
    assert len(results) == 3 and all(isinstance(r, requests.RequestException) for r in results)
