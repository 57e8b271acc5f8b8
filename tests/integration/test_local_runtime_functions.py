"""The local Lambda runtime's supervisor: workers that crash, hang or are SIGKILLed fail
only their own invocation (with Lambda's error shape) and are replaced; a function whose
workers are all busy throttles; module state survives between invocations of one worker."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from swapdrop_local.functions import FunctionError, FunctionSpec, LocalFunction, send_message

HANDLERS = Path(__file__).resolve().parent / "runtime_handlers"


def _function(concurrency: int = 2, timeout: int = 30, throttle_wait: float = 10.0) -> LocalFunction:
    spec = FunctionSpec(
        name="TestFunction",
        code_dir=HANDLERS,
        handler="runtime_test_handler.lambda_handler",
        timeout=timeout,
        memory=128,
        events={},
    )
    function = LocalFunction(spec, {}, [], concurrency, throttle_wait=throttle_wait)
    function.warm_up()
    return function


@pytest.fixture
def make_function() -> Iterator[Callable[..., LocalFunction]]:
    made: list[LocalFunction] = []

    def make(**kwargs: object) -> LocalFunction:
        made.append(_function(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for function in made:
        function.close(grace=0)


def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _in_background(function: LocalFunction, event: dict) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = function.invoke(event)
        except FunctionError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_worker_keeps_its_module_state_and_handler_errors_come_back_lambda_shaped(make_function) -> None:
    function = make_function(concurrency=1)
    first, second = function.invoke({}), function.invoke({})
    assert first["pid"] == second["pid"] and second["calls"] == first["calls"] + 1
    with pytest.raises(FunctionError) as raised:
        function.invoke({"action": "raise", "message": "bad input"})
    assert raised.value.error_type == "ValueError" and raised.value.error_message == "bad input"
    assert any("ValueError" in line for line in raised.value.stack_trace)
    assert function.invoke({})["pid"] == first["pid"], "a handler error does not cost the container"


def test_a_worker_that_dies_mid_invocation_fails_only_that_invocation_and_is_replaced(
    make_function, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local")
    function = make_function(concurrency=2)
    before = set(function.worker_pids())
    assert len(before) == 2
    for event in ({"action": "kill"}, {"action": "exit", "code": 3}):
        with pytest.raises(FunctionError) as raised:
            function.invoke(event)
        assert raised.value.error_type == "Runtime.ExitError"
    assert "signal: killed" in str(caplog.text) and "exit status 3" in str(caplog.text)
    assert "Runtime exited with error" in raised.value.error_message
    _until(lambda: len(function.worker_pids()) == 2)
    results = [function.invoke({}) for _ in range(4)]
    assert all(r["calls"] >= 1 for r in results)
    assert "replaced by worker" in caplog.text


def test_sigkill_of_a_busy_worker_fails_its_invocation_and_spares_the_others(make_function) -> None:
    function = make_function(concurrency=3)
    long_runs = [_in_background(function, {"action": "sleep", "seconds": 3}) for _ in range(2)]
    _until(lambda: len(function.busy_worker_pids()) == 2)
    victim, survivor = function.busy_worker_pids()
    os.kill(victim, signal.SIGKILL)
    for thread, _ in long_runs:
        thread.join(timeout=30)
    outcomes = [outcome for _, outcome in long_runs]
    errors = [o["error"] for o in outcomes if "error" in o]
    assert len(errors) == 1 and errors[0].error_type == "Runtime.ExitError"
    assert [o["result"]["pid"] for o in outcomes if "result" in o] == [survivor]
    _until(lambda: len(function.worker_pids()) == 3)
    assert survivor in function.worker_pids() and victim not in function.worker_pids()
    assert function.invoke({})["calls"] >= 1


def test_a_worker_killed_while_idle_is_replaced_before_anyone_needs_it(make_function) -> None:
    function = make_function(concurrency=2)
    victim = function.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    _until(lambda: victim not in function.worker_pids() and len(function.worker_pids()) == 2)
    assert {function.invoke({})["pid"] for _ in range(3)} <= set(function.worker_pids())


def test_a_timed_out_invocation_kills_and_replaces_its_worker(make_function, caplog) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local")
    function = make_function(concurrency=1, timeout=1)
    (hung,) = function.worker_pids()
    with pytest.raises(FunctionError) as raised:
        function.invoke({"action": "sleep", "seconds": 60})
    assert raised.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in raised.value.error_message
    assert "timed out" in caplog.text
    after = function.invoke({})
    assert after["pid"] != hung and after["calls"] == 1, "a fresh container (cold start) took over"


def test_a_function_whose_workers_are_all_busy_throttles(make_function) -> None:
    function = make_function(concurrency=1, throttle_wait=0.2)
    thread, outcome = _in_background(function, {"action": "sleep", "seconds": 3})
    _until(lambda: len(function.busy_worker_pids()) == 1)
    with pytest.raises(FunctionError) as raised:
        function.invoke({})
    assert raised.value.error_type == "TooManyRequestsException"
    thread.join(timeout=30)
    assert "result" in outcome
    assert function.invoke({}, wait=30)["calls"] >= 2, "a caller that may wait gets the worker once free"


def test_a_send_to_a_dead_worker_leaves_nothing_for_the_collector_to_trip_on(monkeypatch) -> None:
    """The error from a send to a dead worker may land in a reference cycle (it did in a CI run,
    via the poller). Collected later, it must not leave a BytesIO with an open view behind:
    Python would report an unraisable BufferError in whatever thread ran the collector."""
    unraisable: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: unraisable.append(info.exc_value))
    parent, child = multiprocessing.Pipe()
    child.close()

    def fail_in_a_cycle() -> None:
        try:
            send_message(parent, ("request-id", {"Records": [{"body": "x" * 4096}]}))
        except OSError as exc:
            kept = exc  # this frame is in exc's traceback: a cycle only the collector frees
            assert kept.__traceback__ is not None

    gc.disable()
    try:
        fail_in_a_cycle()
        gc.collect()
    finally:
        gc.enable()
        parent.close()
    assert unraisable == []

    parent, child = multiprocessing.Pipe()
    send_message(parent, ("request-id", {"ok": True}))
    assert child.recv() == ("request-id", {"ok": True}), "the worker side still reads it with recv()"


def test_a_profiled_function_writes_each_workers_invocation_stats_when_it_stops(tmp_path: Path) -> None:
    import pstats

    from swapdrop_local.functions import PROFILE_DIR_VARIABLE

    spec = FunctionSpec(
        name="TestFunction",
        code_dir=HANDLERS,
        handler="runtime_test_handler.lambda_handler",
        timeout=30,
        memory=128,
        events={},
    )
    function = LocalFunction(spec, {PROFILE_DIR_VARIABLE: str(tmp_path)}, [], 1)
    pid = function.invoke({})["pid"]
    function.invoke({})
    function.close()

    stats = pstats.Stats(str(tmp_path / f"TestFunction-{pid}.prof"))
    handled = [key for key in stats.stats if key[2] == "lambda_handler"]  # type: ignore[attr-defined]
    assert handled and stats.stats[handled[0]][1] == 2, "both invocations, and only them"  # type: ignore[attr-defined]
