"""`swapdrop local` survives killed function workers, as Lambda and SQS would: SIGKILL a
SubmitFunction worker mid-invocation and a CallbackFunction worker while uploads are in
flight, and the stack replaces them, redelivers the killed batch after the (short local)
visibility timeout, keeps the callback route answering, and turns a new upload into a job."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from e2e.conftest import TERMINAL, Client
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg, png

RESULT = png((30, 160, 90), size=(64, 48))


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="runtime-secret-key",
        reconcile_interval=1.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.02, "engine": lambda _source, _target: RESULT},
        submit_concurrency=2,
        visibility_timeout=4,
    )
    with RunningStack(options) as running:
        yield running


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def _post_raw(base_url: str, request: bytes) -> int:
    """Send a raw request to the callback route; the status it answers (it must answer)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response.status


def _queue_empty(client: Client, queue_url: str) -> bool:
    sqs = _sqs(client)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return all(attributes[n] == "0" for n in names)


def _function_log(stack: RunningStack) -> list[dict]:
    """The functions' structured log records so far (the stack's log file, as CloudWatch Logs would hold them)."""
    assert stack.log_file is not None
    records = []
    for line in stack.log_file.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _sqs(client: Client):
    from swapdrop_local.provision import local_client

    return local_client("sqs", client.info["region"], client.info["endpoint_url"])


def test_killed_workers_are_replaced_and_their_messages_redelivered(
    stack: RunningStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local")
    client = Client(stack.info())
    runs_before = stack.reconcile_runs
    submit, callback = stack.functions["SubmitFunction"], stack.functions["CallbackFunction"]
    assert (len(submit.worker_pids()), len(callback.worker_pids())) == (2, 4)
    face = f"ada-{uuid.uuid4().hex[:6]}"
    client.put(f"faces/{face}.jpg", jpeg((200, 170, 150)))

    # The first upload's swap request is answered late, so its worker is the one mid-invocation (after it took
    # the job's lease and sent the swap) when it is killed; the other uploads are in flight around it.
    stack.emulator.faults.next_submits.append("latency=15")
    keys = [f"inbox/{face}/photo-{i}.jpg" for i in range(6)]
    client.put(keys[0], jpeg((0, 90, 140)))
    _until(lambda: not stack.emulator.faults.next_submits, 60, "the first swap request sent")
    (victim,) = submit.busy_worker_pids()
    for index, key in enumerate(keys[1:], start=1):
        client.put(key, jpeg((20 * index, 90, 140)))
    assert victim in submit.busy_worker_pids(), "the first upload's worker still waits for the swap API's answer"
    os.kill(victim, signal.SIGKILL)
    os.kill(callback.worker_pids()[0], signal.SIGKILL)

    _until(lambda: "SubmitFunction invocation failed (Runtime.ExitError)" in caplog.text, 30, "the poller logs it")
    _until(lambda: len(submit.worker_pids()) == 2 and len(callback.worker_pids()) == 4, 60, "workers restored")
    _until(lambda: client.job_for(keys[0]) is not None, 30, "the killed invocation's job")
    killed_job = client.job_for(keys[0]).jobId
    # Its message comes back after the visibility timeout. The job it names is finished by the swap's callbacks
    # by then (the redelivery is a duplicate, deleted) or, on a slow machine, still under the dead worker's lease
    # (the redelivery is kept until the lease ends, as it would be on AWS): either way, it was handled.
    handled = {"duplicate delivery ignored", "job held by another submitter"}
    _until(
        lambda: any(r.get("job_id") == killed_job and r.get("message") in handled for r in _function_log(stack)),
        90,
        "the killed batch redelivered and handled",
    )
    assert _sqs(client).receive_message(QueueUrl=client.info["dlq_url"]).get("Messages") is None
    _until(lambda: all(client.job_for(key) is not None for key in keys), 30, "a job for every upload")

    later = f"inbox/{face}/after-the-crash.jpg"
    client.put(later, jpeg((250, 10, 10)))
    job = client.wait_for(later, timeout=90)
    assert job.status.value == "SUCCESS", job.failReason  # its callbacks went through the callback route
    callbacks = client.info["callback_base_url"]
    assert (
        _post_raw(callbacks, b"POST /callbacks/no-such-job HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n") == 400
    )
    forged = b'{"id": "t", "status": "SUCCESS"}'
    request = b"POST /callbacks/no-such-job?token=forged HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    status = _post_raw(callbacks, request + b"Content-Length: %d\r\n\r\n%s" % (len(forged), forged))
    assert 400 <= status < 500
    assert "died during request" in caplog.text and "replaced by worker" in caplog.text
    assert stack.reconcile_runs > runs_before, "the scheduled reconciler kept running on its own workers"


def test_every_upload_reaches_a_terminal_state_after_the_crash(stack: RunningStack) -> None:
    client = Client(stack.info())
    _until(
        lambda: all(j.status.value in TERMINAL for j in client.jobs()),
        120,
        "every job terminal (the killed one via its callback or the reconciler)",
    )


def test_swapdrop_local_takes_a_visibility_timeout() -> None:
    from swapdrop_local.cli import build_parser, options_from

    parser = build_parser()
    assert options_from(parser.parse_args(["local"])).visibility_timeout == 20
    assert options_from(parser.parse_args(["local", "--visibility-timeout", "5"])).visibility_timeout == 5
    for bad in ("-1", "soon", "50000"):
        with pytest.raises(SystemExit):
            parser.parse_args(["local", "--visibility-timeout", bad])


def test_swapdrop_local_takes_a_watch_settle_time() -> None:
    from swapdrop_local.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["local"]).watch_settle == 3.0
    assert parser.parse_args(["local", "--watch", "d", "--watch-settle", "0.5"]).watch_settle == 0.5
    for bad in ("0", "-2", "later", "601"):
        with pytest.raises(SystemExit):
            parser.parse_args(["local", "--watch-settle", bad])
