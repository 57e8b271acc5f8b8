"""Task lifecycle, callbacks, result images, manual driving, scripted answers, start and stop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from swapdrop_emulator import SwapEmulator

from .conftest import (
    AUTH,
    LIFECYCLE,
    NO_FACE,
    RESULT_PNG,
    SOURCE,
    TARGET,
    BlockingEngine,
    CallbackReceiver,
    accepted_id,
    b64,
    fake_engine,
    png,
    submit,
    wait_until,
)

SUCCESS = ("SUCCESS", "100%")
LOCAL = Path(__file__).resolve().parents[2] / "local"


def test_callbacks_follow_the_lifecycle_and_the_image_is_served(
    emulator: SwapEmulator, receiver: CallbackReceiver
) -> None:
    task_id = accepted_id(submit(emulator, notifyHook=receiver.hook(), state="job-1"))
    emulator.wait_idle()
    assert receiver.steps() == [*LIFECYCLE, SUCCESS], "one worker delivers in order"
    percents = [int(r.body["progress"].rstrip("%")) for r in receiver.received]
    assert percents == sorted(percents)
    for callback in receiver.received:
        assert callback.path == "/callbacks/job-1?token=secret-token-job-1"
        assert callback.headers["content-type"] == "application/json"
        assert "authorization" not in callback.headers and not any("signature" in h for h in callback.headers)
        assert callback.body["id"] == task_id and callback.body["state"] == "job-1"
        assert callback.body["botType"] == "INSIGHT_FACE", "extra fields receivers must ignore"
    final = receiver.received[-1].body
    assert final["imageUrl"] == f"{emulator.url}/mj/image/{task_id}.png" and final["failReason"] is None
    assert final["finishTime"] >= final["startTime"] >= final["submitTime"]
    image = requests.get(final["imageUrl"], timeout=5)
    assert (image.status_code, image.headers["content-type"], image.content) == (200, "image/png", RESULT_PNG)
    assert requests.head(final["imageUrl"], timeout=5).headers["content-length"] == str(len(RESULT_PNG))
    assert emulator.tasks[task_id].callbacks_sent == 5
    assert [(c.status, c.outcome, c.http_status) for c in emulator.callbacks][-1] == ("SUCCESS", "delivered", 200)
    assert all("token" not in c.hook for c in emulator.callbacks), "records keep no hook secrets"


def test_an_engine_failure_ends_the_task_with_its_reason(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    task_id = accepted_id(submit(emulator, target=NO_FACE, notifyHook=receiver.hook()))
    emulator.wait_idle()
    assert receiver.steps() == [("SUBMITTED", "0%"), ("IN_PROGRESS", "15%"), ("FAILURE", "")]
    final = receiver.received[-1].body
    assert final["failReason"] == "no face found in the target image"
    assert final["imageUrl"] is None and final["finishTime"] is not None
    assert requests.get(f"{emulator.url}/mj/image/{task_id}.png", timeout=5).status_code == 404


def test_with_a_pool_of_callback_threads_every_change_still_arrives(make_emulator, receiver) -> None:
    emulator = make_emulator(callback_workers=4)
    ids = [accepted_id(submit(emulator, source=bytes([i]), notifyHook=receiver.hook())) for i in range(3)]
    emulator.wait_idle()
    for task_id in ids:  # order across threads is not guaranteed, the set is
        assert sorted(receiver.steps(task_id)) == sorted([*LIFECYCLE, SUCCESS])


def test_the_engine_gets_the_decoded_images(make_emulator) -> None:
    seen = []
    emulator = make_emulator(engine=lambda source, target: seen.append((source, target)) or RESULT_PNG)
    accepted_id(
        submit(emulator, {"sourceBase64": "data:image/jpeg;base64," + b64(SOURCE), "targetBase64": b64(TARGET)})
    )
    emulator.wait_idle()
    assert seen == [(SOURCE, TARGET)]


def test_an_engine_returning_an_object_with_png_works(make_emulator) -> None:
    class Result:
        png = RESULT_PNG
        width, height = 6, 4

    emulator = make_emulator(engine=lambda s, t: Result())
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    assert emulator.tasks[task_id].image == RESULT_PNG


def test_a_failed_delivery_is_logged_once_and_never_retried(make_emulator, caplog) -> None:
    receiver = CallbackReceiver(status=500).start()
    try:
        emulator = make_emulator()
        with caplog.at_level(logging.WARNING, logger="swapdrop_emulator"):
            task_id = accepted_id(submit(emulator, notifyHook=receiver.hook("j")))
            emulator.wait_idle()
        assert len(receiver.received) == 5, "one POST per change, no retries"
        assert {c.outcome for c in emulator.callbacks} == {"failed"}
        assert emulator.tasks[task_id].status == "SUCCESS", "the task does not care"
        assert "answered HTTP 500" in caplog.text and "secret-token" not in caplog.text
    finally:
        receiver.stop()


def test_an_unreachable_hook_is_logged_without_its_token(make_emulator, caplog) -> None:
    emulator = make_emulator(callback_timeout=1)
    with caplog.at_level(logging.WARNING, logger="swapdrop_emulator"):
        accepted_id(submit(emulator, notifyHook="http://127.0.0.1:9/callbacks/x?token=hush-hush"))
        emulator.wait_idle()
    assert [c.error for c in emulator.callbacks] == ["ConnectionError"] * 5
    assert "ConnectionError" in caplog.text and "hush-hush" not in caplog.text


def test_the_global_hook_serves_tasks_without_one(make_emulator, receiver: CallbackReceiver) -> None:
    emulator = make_emulator(notify_hook=receiver.hook("global"))
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    assert receiver.steps(task_id)[-1] == SUCCESS


def test_no_hook_means_no_callbacks(emulator: SwapEmulator) -> None:
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    assert emulator.tasks[task_id].status == "SUCCESS"
    assert emulator.callbacks == [] and emulator.tasks[task_id].callbacks_sent == 0


def test_result_urls_expire_after_the_configured_ttl(make_emulator) -> None:
    emulator = make_emulator(result_ttl_seconds=0.05, expired_status=410)
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    url = emulator.tasks[task_id].image_url
    expired = wait_until(lambda: [r for r in [requests.get(url, timeout=5)] if r.status_code == 410], message="expiry")
    assert expired[0].content == b"Gone"


def test_a_result_image_override_is_served_for_every_task(emulator: SwapEmulator) -> None:
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    emulator.result_image = b"<html>expired</html>"
    assert requests.get(emulator.tasks[task_id].image_url, timeout=5).content == b"<html>expired</html>"
    emulator.result_image = None
    assert requests.get(emulator.tasks[task_id].image_url, timeout=5).content == RESULT_PNG


def test_public_url_sets_the_image_url_base(make_emulator) -> None:
    emulator = make_emulator(public_url="https://cdn.example/")
    task_id = accepted_id(submit(emulator))
    emulator.wait_idle()
    assert emulator.tasks[task_id].image_url == f"https://cdn.example/mj/image/{task_id}.png"


def test_wait_idle_times_out_while_a_task_runs(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine)
    accepted_id(submit(emulator))
    with pytest.raises(TimeoutError, match="1 task"):
        emulator.wait_idle(timeout=0.1)
    engine.gate.set()
    emulator.wait_idle()


# --- manual mode --------------------------------------------------------------------------------


def test_manual_mode_tasks_wait_to_be_driven(make_emulator, receiver: CallbackReceiver) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator, notifyHook=receiver.hook(), state="job-5"))
    assert emulator.tasks[task_id].status == "SUBMITTED"
    emulator.wait_idle()
    assert emulator.tasks[task_id].status == "SUBMITTED" and receiver.received == []

    snapshot = emulator.progress(task_id, "IN_PROGRESS", "45%")
    assert (snapshot["status"], snapshot["progress"], snapshot["state"]) == ("IN_PROGRESS", "45%", "job-5")
    assert receiver.received == [], "progress() sends nothing"
    reply = emulator.callback(task_id, snapshot)
    assert reply.status_code == 200 and receiver.steps() == [("IN_PROGRESS", "45%")]

    done = emulator.succeed(task_id)
    assert (done["status"], done["progress"]) == SUCCESS
    assert requests.get(done["imageUrl"], timeout=5).content == RESULT_PNG
    emulator.callback(task_id)  # the current snapshot
    emulator.callback(task_id, {**done, "status": "CANCEL"}, hook=receiver.hook("other"))
    assert receiver.steps()[1:] == [SUCCESS, ("CANCEL", "100%")]
    assert receiver.received[-1].path.startswith("/callbacks/other")
    assert emulator.tasks[task_id].callbacks_sent == 3


def test_manual_succeed_with_a_given_image_and_fail(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    first, second = (accepted_id(submit(emulator, source=bytes([i]))) for i in range(2))
    other = png((1, 2, 3))
    assert requests.get(emulator.succeed(first, image=other)["imageUrl"], timeout=5).content == other
    failed = emulator.fail(second, "执行超时 10 分钟")
    assert (failed["status"], failed["progress"], failed["failReason"]) == ("FAILURE", "", "执行超时 10 分钟")


def test_manual_succeed_reports_an_engine_failure(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator, target=NO_FACE))
    snapshot = emulator.succeed(task_id)
    assert (snapshot["status"], snapshot["failReason"]) == ("FAILURE", "no face found in the target image")


def test_manual_callback_errors_raise(make_emulator) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator, notifyHook="http://127.0.0.1:9/x"))
    with pytest.raises(requests.ConnectionError):
        emulator.callback(task_id)
    no_hook = accepted_id(submit(emulator, source=b"other"))
    with pytest.raises(ValueError, match="no notifyHook"):
        emulator.callback(no_hook)
    with pytest.raises(KeyError):
        emulator.succeed("0")


def test_notify_sends_the_current_snapshot_through_the_pool(make_emulator, receiver: CallbackReceiver) -> None:
    emulator = make_emulator(auto_run=False)
    task_id = accepted_id(submit(emulator, notifyHook=receiver.hook()))
    emulator.fail(task_id, "cancelled by admin")
    emulator.notify(task_id)
    emulator.wait_idle()
    assert receiver.steps() == [("FAILURE", "")]


# --- scripted answers (the stand-in's `responses`) ----------------------------------------------


def test_scripted_answers_come_first_then_normal_service(emulator: SwapEmulator) -> None:
    emulator.script_submit(200, {"code": 23, "description": "队列已满，请稍后尝试"})
    emulator.responses.append((502, None))
    emulator.script_submit(200, {"code": 22, "description": "排队中", "result": "1729072764329123", "properties": {}})
    busy, gateway, queued, normal = (submit(emulator, source=bytes([i])) for i in range(4))
    assert (busy.status_code, busy.json()["code"]) == (200, 23)
    assert (gateway.status_code, gateway.content) == (502, b"")
    assert queued.json()["result"] == "1729072764329123"
    assert normal.json()["code"] == 1
    emulator.wait_idle()
    assert emulator.tasks["1729072764329123"].status == "SUCCESS", "an accepting script makes a real task"
    assert len(emulator.swaps) == 4 and len(emulator.tasks) == 2


# --- start and stop -----------------------------------------------------------------------------


def test_stop_is_quick_idempotent_and_closes_the_port(make_emulator) -> None:
    emulator = make_emulator()
    accepted_id(submit(emulator))
    url = emulator.url
    started = time.monotonic()
    emulator.stop()
    emulator.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/health", timeout=2)


def test_stop_cuts_a_kept_alive_connection(make_emulator) -> None:
    emulator = make_emulator()
    session = requests.Session()
    assert session.get(f"{emulator.url}/_emulator/health", timeout=2).status_code == 200
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emulator.url}/_emulator/health", timeout=2)


def test_context_manager_and_keyword_settings() -> None:
    with SwapEmulator(api_key="kw", auth_style="mj-api-secret", step_delay=0, engine=fake_engine) as emulator:
        assert emulator.config.api_key == "kw"
        assert submit(emulator, headers={"mj-api-secret": "kw"}).status_code == 200
        assert submit(emulator, headers=AUTH).status_code == 401


def test_importing_the_emulator_does_not_import_the_face_swap_stack() -> None:
    code = (
        "import sys, swapdrop_emulator; "
        "heavy = {'cv2', 'mediapipe', 'numpy', 'swapdrop_emulator.faceswap'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(LOCAL)}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert completed.returncode == 0, completed.stderr
