"""The submit contract: validation, auth, codes 1/22/23, fetch, list-by-condition, snapshots."""

from __future__ import annotations

import re

import pytest
import requests
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop_emulator import EmulatorConfig, SwapEmulator

from .conftest import (
    API_KEY,
    AUTH,
    SOURCE,
    TARGET,
    BlockingEngine,
    accepted_id,
    b64,
    submit,
    swap_body,
)


def test_an_accepted_submit_has_code_1_and_a_16_digit_task_id(emulator: SwapEmulator) -> None:
    response = submit(emulator, state="job-42")
    assert response.status_code == 200
    payload = response.json()
    assert payload == {"code": 1, "description": "提交成功", "result": payload["result"], "properties": {}}
    assert re.fullmatch(r"\d{16}", payload["result"])
    assert emulator.tasks[payload["result"]].state == "job-42"


def test_task_ids_are_unique(make_emulator) -> None:
    emulator = make_emulator(queue_size=100)
    ids = {accepted_id(submit(emulator, source=bytes([i]) + SOURCE)) for i in range(30)}
    assert len(ids) == 30 and all(len(i) == 16 for i in ids)


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"targetBase64": b64(TARGET)}, "人脸图片不能为空"),
        ({"sourceBase64": "  ", "targetBase64": b64(TARGET)}, "人脸图片不能为空"),
        ({"sourceBase64": b64(SOURCE)}, "目标图片不能为空"),
        ({"sourceBase64": b64(SOURCE), "targetBase64": None}, "目标图片不能为空"),
        ({"sourceBase64": "not base64 at all!", "targetBase64": b64(TARGET)}, "人脸图片格式错误"),
        ({"sourceBase64": b64(SOURCE), "targetBase64": b64(TARGET)[:-1]}, "目标图片格式错误"),
        ({"sourceBase64": 12345, "targetBase64": b64(TARGET)}, "人脸图片格式错误"),
        ({"sourceBase64": "data:image/png," + b64(SOURCE), "targetBase64": b64(TARGET)}, "人脸图片格式错误"),
        ({"sourceBase64": "data:image/png;base64" + b64(SOURCE), "targetBase64": b64(TARGET)}, "人脸图片格式错误"),
        ({"sourceBase64": "data:image png;base64," + b64(SOURCE), "targetBase64": b64(TARGET)}, "人脸图片格式错误"),
        ({"sourceBase64": b64(SOURCE), "targetBase64": b64(SOURCE)}, "人脸图片和目标图片不能相同"),
        (
            {"sourceBase64": b64(SOURCE), "targetBase64": "data:image/png;base64," + b64(SOURCE)},
            "人脸图片和目标图片不能相同",
        ),
        ({"sourceBase64": b64(b"x" * 1001), "targetBase64": b64(TARGET)}, "人脸图片大小超过最大限制"),
        ({"sourceBase64": b64(SOURCE), "targetBase64": b64(b"y" * 1001)}, "目标图片大小超过最大限制"),
        ({**swap_body(), "notifyHook": 7}, "notifyHook格式错误"),
    ],
    ids=[
        "source-missing",
        "source-blank",
        "target-missing",
        "target-null",
        "source-bad-base64",
        "target-bad-padding",
        "source-not-a-string",
        "data-url-without-base64",
        "data-url-without-comma",
        "data-url-bad-mime",
        "source-equals-target",
        "same-image-two-forms",
        "source-too-large",
        "target-too-large",
        "hook-not-a-string",
    ],
)
def test_validation_errors_answer_code_4_with_a_description(make_emulator, body: dict, description: str) -> None:
    emulator = make_emulator(max_image_bytes=1000)
    response = submit(emulator, body)
    assert response.status_code == 200
    assert response.json() == {"code": 4, "description": description, "result": None, "properties": {}}
    assert emulator.tasks == {}
    assert len(emulator.swaps) == 1, "refused submits are recorded too"


def test_the_default_size_limit_is_10_mib(emulator: SwapEmulator) -> None:
    limit = 10 * 1024 * 1024
    assert submit(emulator, source=b"\0" * limit).json()["code"] == 1
    assert submit(emulator, source=b"\0" * (limit + 1)).json()["description"] == "人脸图片大小超过最大限制"


def test_a_body_over_the_request_limit_is_413(make_emulator) -> None:
    emulator = make_emulator(max_image_bytes=100, max_body_bytes=2000)
    assert submit(emulator, source=b"x" * 3000).status_code == 413


def test_a_body_that_is_not_a_json_object_is_http_400(emulator: SwapEmulator) -> None:
    for data in (b"{nope", b"[1, 2]", b""):
        response = requests.post(
            f"{emulator.url}/mj/insight-face/swap",
            data=data,
            headers={**AUTH, "Content-Type": "application/json"},
            timeout=5,
        )
        assert response.status_code == 400
        assert response.json()["path"] == "/mj/insight-face/swap"


def test_what_was_submitted_is_recorded(emulator: SwapEmulator) -> None:
    body = {
        "sourceBase64": "data:image/jpeg;base64," + b64(SOURCE),
        "targetBase64": b64(TARGET),
        "notifyHook": "http://127.0.0.1:9/cb?token=t",
        "state": "job-1",
        "accountFilter": {"instanceId": "acct-7"},
    }
    task_id = accepted_id(submit(emulator, body))
    (swap,) = emulator.swaps
    assert swap.headers["authorization"] == f"Bearer {API_KEY}"
    assert (swap.source, swap.source_mime, swap.target, swap.target_mime) == (
        SOURCE,
        "image/jpeg",
        TARGET,
        "image/png",
    )
    assert swap.body == body
    task = emulator.tasks[task_id]
    assert (task.notify_hook, task.state, task.instance_id) == ("http://127.0.0.1:9/cb?token=t", "job-1", "acct-7")


def test_a_chunked_request_body_is_read(emulator: SwapEmulator) -> None:
    import json

    data = json.dumps(swap_body()).encode()
    chunks = (data[i : i + 10] for i in range(0, len(data), 10))
    response = requests.post(
        f"{emulator.url}/mj/insight-face/swap",
        data=chunks,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.json()["code"] == 1


def test_the_mode_prefixes_trueai_accepts_work(emulator: SwapEmulator) -> None:
    response = requests.post(f"{emulator.url}/mj-fast/mj/insight-face/swap", json=swap_body(), headers=AUTH, timeout=5)
    assert response.json()["code"] == 1


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "headers", "expected"),
    [
        ("bearer", {"Authorization": "Bearer k-1"}, 200),
        ("bearer", {"Authorization": "bearer k-1"}, 200),
        ("bearer", {"Authorization": "Bearer wrong"}, 401),
        ("bearer", {"Authorization": "k-1"}, 401),
        ("bearer", {"mj-api-secret": "k-1"}, 401),
        ("bearer", {}, 401),
        ("mj-api-secret", {"mj-api-secret": "k-1"}, 200),
        ("mj-api-secret", {"mj-api-secret": "k-2"}, 401),
        ("mj-api-secret", {"Authorization": "Bearer k-1"}, 401),
        ("none", {}, 200),
    ],
)
def test_auth_styles(make_emulator, style: str, headers: dict, expected: int) -> None:
    emulator = make_emulator(api_key="k-1", auth_style=style)
    response = submit(emulator, headers=headers)
    assert response.status_code == expected
    if expected == 401:
        assert response.content == b"", "relays answer 401 with an empty body"
        assert emulator.swaps == [] and emulator.tasks == {}
    else:
        assert response.json()["code"] == 1


def test_fetch_and_list_need_the_key_but_result_images_do_not(emulator: SwapEmulator) -> None:
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    fetch = requests.get(f"{emulator.url}/mj/task/{task_id}/fetch", timeout=5)
    listing = requests.post(f"{emulator.url}/mj/task/list-by-condition", json={"ids": [task_id]}, timeout=5)
    assert (fetch.status_code, fetch.content, listing.status_code, listing.content) == (401, b"", 401, b"")
    assert requests.get(emulator.tasks[task_id].image_url, timeout=5).status_code == 200


def test_auth_style_accepts_our_config_enum(make_emulator) -> None:
    from swapdrop.config import AuthStyle

    emulator = make_emulator(auth_style=AuthStyle.MJ_API_SECRET)
    assert submit(emulator, headers={"mj-api-secret": API_KEY}).json()["code"] == 1


def test_bad_settings_are_refused() -> None:
    for bad in ({"auth_style": "basic"}, {"concurrency": 0}, {"unknown_task": "maybe"}, {"api_key": ""}):
        with pytest.raises(ValueError):
            EmulatorConfig(**bad)


# --- the queue ----------------------------------------------------------------------------------


def test_queued_and_queue_full_answers(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=1, queue_size=2)
    try:
        running = submit(emulator, source=b"1").json()
        waiting_behind_the_running_one = submit(emulator, source=b"2").json()
        second_in_queue = submit(emulator, source=b"3").json()
        full = submit(emulator, source=b"4").json()
        assert running["code"] == 1
        # As novicezk's thread pool: a task waiting only behind running ones still gets code 1 …
        assert waiting_behind_the_running_one["code"] == 1
        # … code 22 says how many are queued ahead of it.
        assert second_in_queue == {
            "code": 22,
            "description": "排队中，前面还有1个任务",
            "result": second_in_queue["result"],
            "properties": {"numberOfQueues": 1},
        }
        assert full == {"code": 23, "description": "队列已满，请稍后尝试", "result": None, "properties": {}}
        assert len(emulator.tasks) == 3
        assert emulator.tasks[second_in_queue["result"]].status == "NOT_START"
        assert len(emulator.swaps) == 4
    finally:
        engine.gate.set()
    emulator.wait_idle()
    assert {task.status for task in emulator.tasks.values()} == {"SUCCESS"}
    assert submit(emulator, source=b"5").json()["code"] == 1, "the queue has room again"


def test_two_queued_ahead(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=2, queue_size=5)
    try:
        codes = [submit(emulator, source=bytes([i])).json() for i in range(5)]
        assert [c["code"] for c in codes] == [1, 1, 1, 22, 22]
        assert [c["properties"].get("numberOfQueues") for c in codes] == [None, None, None, 1, 2]
    finally:
        engine.gate.set()
    emulator.wait_idle()


def test_queue_full_can_answer_code_9_as_trueai(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=1, queue_size=0, queue_full_code=9)
    try:
        assert submit(emulator, source=b"1").json()["code"] == 1
        assert submit(emulator, source=b"2").json() == {
            "code": 9,
            "description": "提交失败，队列已满，请稍后重试",
            "result": None,
            "properties": {},
        }
    finally:
        engine.gate.set()


# --- fetch and list-by-condition ----------------------------------------------------------------


def test_fetch_returns_the_snapshot_with_extra_fields(emulator: SwapEmulator) -> None:
    task_id = accepted_id(submit(emulator, state="job-9"))
    emulator.wait_idle()
    snapshot = requests.get(f"{emulator.url}/mj/task/{task_id}/fetch", headers=AUTH, timeout=5).json()
    core = {
        "id": task_id,
        "action": "SWAP_FACE",
        "status": "SUCCESS",
        "state": "job-9",
        "progress": "100%",
        "failReason": None,
        "properties": {},
        "buttons": [],
        "prompt": None,
        "promptEn": None,
        "description": "",
    }
    assert core.items() <= snapshot.items()
    assert snapshot["imageUrl"] == f"{emulator.url}/mj/image/{task_id}.png"
    assert snapshot["submitTime"] <= snapshot["startTime"] <= snapshot["finishTime"]
    assert {"botType", "instanceId", "useTime", "seed", "isReplicate", "nonce", "imageUrls"} <= set(snapshot)
    assert snapshot["botType"] == "INSIGHT_FACE" and snapshot["useTime"] >= 0
    parsed = TaskSnapshot.model_validate(snapshot)  # what our callback handler and reconciler read
    assert (parsed.id, parsed.status.value, parsed.progress) == (task_id, "SUCCESS", 100)


@pytest.mark.parametrize(
    ("style", "status", "content"),
    [("empty", 200, b""), ("null", 200, b"null"), ("404", 404, None)],
)
def test_fetch_of_an_unknown_id(make_emulator, style: str, status: int, content: bytes | None) -> None:
    emulator = make_emulator(unknown_task=style)
    response = requests.get(f"{emulator.url}/mj/task/1234567890123456/fetch", headers=AUTH, timeout=5)
    assert response.status_code == status
    if content is not None:
        assert response.content == content
    assert emulator.fetch_requests == ["1234567890123456"]


def test_list_by_condition_returns_the_known_ids_in_order(emulator: SwapEmulator) -> None:
    first = accepted_id(submit(emulator, source=b"a"))
    second = accepted_id(submit(emulator, source=b"b"))
    emulator.wait_idle()
    url = f"{emulator.url}/mj/task/list-by-condition"
    found = requests.post(url, json={"ids": [second, "9999999999999999", first]}, headers=AUTH, timeout=5).json()
    assert [s["id"] for s in found] == [second, first]
    assert requests.post(url, json={}, headers=AUTH, timeout=5).json() == []
    assert requests.post(url, json={"ids": "nope"}, headers=AUTH, timeout=5).status_code == 400
    assert emulator.list_requests == [[second, "9999999999999999", first], []]


def test_unknown_routes_are_404(emulator: SwapEmulator) -> None:
    assert requests.get(f"{emulator.url}/mj/task/queue", headers=AUTH, timeout=5).status_code == 404
    assert requests.get(f"{emulator.url}/nothing", timeout=5).status_code == 404
    assert requests.get(f"{emulator.url}/mj/image/0000.png", timeout=5).status_code == 404
    assert requests.get(f"{emulator.url}/_emulator/health", timeout=5).json()["status"] == "ok"
