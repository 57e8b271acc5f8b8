"""Our client (swapdrop.upstream.UpstreamClient) against the emulator: every answer lands in the
right outcome, and polling reads the snapshots."""

from __future__ import annotations

import pytest
from swapdrop.config import AuthStyle
from swapdrop.upstream import Accepted, Rejected, Retryable, SwapImage, SwapRequest, UpstreamClient, UpstreamError
from swapdrop_emulator import SwapEmulator

from .conftest import API_KEY, SOURCE, TARGET, BlockingEngine, CallbackReceiver


def client_for(
    emulator: SwapEmulator, key: str = API_KEY, style: AuthStyle = AuthStyle.BEARER, timeout: float = 5
) -> UpstreamClient:
    return UpstreamClient(emulator.url, lambda: key, style, timeout)


def swap_request(source: bytes = SOURCE, target: bytes = TARGET, hook: str = "", state: str = "job-1") -> SwapRequest:
    return SwapRequest(SwapImage(source, "image/jpeg"), SwapImage(target, "image/png"), hook, state, "acct-1")


def test_accepted_code_1(emulator: SwapEmulator, receiver: CallbackReceiver) -> None:
    outcome = client_for(emulator).submit_swap(swap_request(hook=receiver.hook()))
    assert isinstance(outcome, Accepted) and outcome.code == 1 and outcome.queue_position is None
    assert len(outcome.task_id) == 16
    (swap,) = emulator.swaps
    assert (swap.source, swap.source_mime, swap.target, swap.target_mime) == (SOURCE, "image/jpeg", TARGET, "image/png")
    task = emulator.tasks[outcome.task_id]
    assert (task.state, task.notify_hook, task.instance_id) == ("job-1", receiver.hook(), "acct-1")
    emulator.wait_idle()
    assert receiver.steps(outcome.task_id)[-1] == ("SUCCESS", "100%")


def test_accepted_with_mj_api_secret(make_emulator) -> None:
    emulator = make_emulator(auth_style="mj-api-secret")
    outcome = client_for(emulator, style=AuthStyle.MJ_API_SECRET).submit_swap(swap_request())
    assert isinstance(outcome, Accepted)
    assert emulator.swaps[0].headers["mj-api-secret"] == API_KEY


def test_accepted_code_22_keeps_the_queue_position(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=1, queue_size=5)
    client = client_for(emulator)
    try:
        outcomes = [client.submit_swap(swap_request(source=bytes([i]))) for i in range(4)]
    finally:
        engine.gate.set()
    assert [type(o) for o in outcomes] == [Accepted] * 4
    assert [(o.code, o.queue_position) for o in outcomes] == [(1, None), (1, None), (22, 1), (22, 2)]


@pytest.mark.parametrize(
    ("fault", "reason_part"),
    [
        ("code=23", "code 23 QUEUE_REJECTED: 队列已满"),
        ("code=9", "code 9 FAILURE"),
        ("code=-1", "code -1"),
        ("status=503", "HTTP 503"),
        ("status=502", "HTTP 502"),
        ("status=500", "HTTP 500"),
        ("status=429", "HTTP 429"),
        ("reset", "could not reach the swap API"),
    ],
)
def test_retryable_answers(emulator: SwapEmulator, fault: str, reason_part: str) -> None:
    emulator.faults.next_submits.append(fault)
    outcome = client_for(emulator).submit_swap(swap_request())
    assert isinstance(outcome, Retryable) and reason_part in outcome.reason
    assert outcome.maybe_accepted is False


def test_the_queue_really_full_is_retryable(make_emulator) -> None:
    engine = BlockingEngine()
    emulator = make_emulator(engine=engine, concurrency=1, queue_size=0)
    client = client_for(emulator)
    try:
        assert isinstance(client.submit_swap(swap_request(source=b"1")), Accepted)
        assert isinstance(client.submit_swap(swap_request(source=b"2")), Retryable)
    finally:
        engine.gate.set()


@pytest.mark.parametrize("fault", ["timeout", "timeout_after_accept"])
def test_a_timeout_is_retryable_and_maybe_accepted(emulator: SwapEmulator, fault: str) -> None:
    emulator.faults.next_submits.append(fault)
    outcome = client_for(emulator, timeout=0.3).submit_swap(swap_request())
    assert isinstance(outcome, Retryable) and outcome.maybe_accepted
    assert len(emulator.tasks) == (1 if fault == "timeout_after_accept" else 0)


@pytest.mark.parametrize(
    ("fault", "reason_part"),
    [
        ("code=4", "code 4 VALIDATION_ERROR"),
        ("code=24", "code 24 BANNED_PROMPT"),
        ("status=401", "HTTP 401"),
        ("status=403", "HTTP 403"),
        ("status=404", "HTTP 404"),
    ],
)
def test_rejected_answers(emulator: SwapEmulator, fault: str, reason_part: str) -> None:
    emulator.faults.next_submits.append(fault)
    outcome = client_for(emulator).submit_swap(swap_request())
    assert isinstance(outcome, Rejected) and reason_part in outcome.reason


def test_a_real_validation_error_is_rejected(emulator: SwapEmulator) -> None:
    outcome = client_for(emulator).submit_swap(swap_request(source=TARGET, target=TARGET))
    assert isinstance(outcome, Rejected)
    assert "code 4 VALIDATION_ERROR" in outcome.reason and "不能相同" in outcome.reason


def test_an_image_over_the_limit_is_rejected(make_emulator) -> None:
    emulator = make_emulator(max_image_bytes=1000)
    outcome = client_for(emulator).submit_swap(swap_request(target=b"t" * 1001))
    assert isinstance(outcome, Rejected) and "大小超过最大限制" in outcome.reason


def test_a_wrong_key_is_rejected(emulator: SwapEmulator) -> None:
    outcome = client_for(emulator, key="not-the-key").submit_swap(swap_request())
    assert isinstance(outcome, Rejected) and "HTTP 401" in outcome.reason


def test_polling_reads_snapshots(make_emulator) -> None:
    emulator = make_emulator(unknown_task="null")
    client = client_for(emulator)
    done = client.submit_swap(swap_request(source=b"ok"))
    failed = client.submit_swap(swap_request(source=b"bad", target=b"no-face here"))
    assert isinstance(done, Accepted) and isinstance(failed, Accepted)
    emulator.wait_idle()
    snapshots = {s.id: s for s in client.list_tasks([done.task_id, "1111111111111111", failed.task_id])}
    assert set(snapshots) == {done.task_id, failed.task_id}
    assert (snapshots[done.task_id].status.value, snapshots[done.task_id].progress) == ("SUCCESS", 100)
    assert snapshots[done.task_id].imageUrl == emulator.tasks[done.task_id].image_url
    assert snapshots[failed.task_id].failReason == "no face found in the target image"
    assert client.fetch_task(done.task_id).state == "job-1"
    assert client.fetch_task("1111111111111111") is None
    assert emulator.list_requests == [[done.task_id, "1111111111111111", failed.task_id]]


def test_poll_failures_raise_upstream_error(emulator: SwapEmulator) -> None:
    emulator.faults.next_lists.append("status=503")
    emulator.faults.next_fetches.append("reset")
    with pytest.raises(UpstreamError, match="HTTP 503"):
        client_for(emulator).list_tasks(["1"])
    with pytest.raises(UpstreamError):
        client_for(emulator).fetch_task("1")
