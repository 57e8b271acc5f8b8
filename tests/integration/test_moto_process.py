"""moto's server in a child process (swapdrop_local.moto_process): it serves AWS calls on 127.0.0.1, stops
with the stack or when the stack's process dies, and (counting) answers its call log over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from swapdrop_local.aws_calls import AwsCallLog
from swapdrop_local.moto_process import CALLS_PATH, MotoProcess, MotoProcessError

pytestmark = pytest.mark.integration

REGION = "us-east-1"


def client(service: str, endpoint: str, app_id: str | None = None):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(user_agent_appid=app_id) if app_id else None,
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def wait_gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def counting() -> Iterator[tuple[MotoProcess, str]]:
    moto = MotoProcess(count_calls=True)
    moto.start()
    host, port = moto.get_host_and_port()
    yield moto, f"http://{host}:{port}"
    moto.stop()


def test_moto_serves_from_a_child_on_loopback_and_is_gone_after_stop() -> None:
    moto = MotoProcess()
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        pid = moto.pid
        assert host == "127.0.0.1" and pid is not None and pid != os.getpid() and alive(pid)
        sqs = client("sqs", f"http://{host}:{port}")
        url = sqs.create_queue(QueueName="child")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["hello"]
    finally:
        moto.stop()
    assert not alive(pid)
    with pytest.raises(MotoProcessError, match="not running"):
        moto.get_host_and_port()
    moto.stop()  # twice: nothing to do


def test_the_child_stops_when_the_stacks_process_dies_without_stopping_it(tmp_path) -> None:
    script = (
        "import os, sys\n"
        "from swapdrop_local.moto_process import MotoProcess\n"
        "moto = MotoProcess(); moto.start()\n"
        "print(moto.pid, flush=True)\n"
        "os._exit(9)\n"  # no stop(), no atexit: as a killed stack
    )
    environment = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    assert done.returncode == 9, done.stderr
    child = int(done.stdout.split()[0])
    assert wait_gone(child), "moto's child outlived the process that started it"


def test_a_child_that_dies_on_its_own_is_reported_and_one_that_is_stopped_is_not() -> None:
    exits: list[int] = []
    moto = MotoProcess(on_exit=exits.append)
    moto.start()
    pid = moto.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    deadline = time.monotonic() + 30
    while not exits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exits == [-signal.SIGKILL]
    moto.stop()

    stopped: list[int] = []
    moto = MotoProcess(on_exit=stopped.append)
    moto.start()
    pid = moto.pid
    moto.stop()
    assert pid is not None and wait_gone(pid)
    time.sleep(0.5)  # the watcher has seen the exit by now
    assert stopped == [], "a stop the stack asked for is not a failure"


def test_a_child_that_does_not_start_is_reported_with_what_it_said() -> None:
    moto = MotoProcess()
    moto.command = [sys.executable, "-c", "print('address already in use')"]
    with pytest.raises(MotoProcessError, match="did not start: address already in use"):
        moto.start()
    moto.command = [sys.executable, "-c", "import sys; sys.exit(3)"]
    with pytest.raises(MotoProcessError, match="did not start: it exited"):
        moto.start()


def test_a_counting_child_counts_by_caller_and_operation(counting: tuple[MotoProcess, str]) -> None:
    moto, endpoint = counting
    log = moto.calls()
    mark = log.mark()
    dynamodb = client("dynamodb", endpoint, app_id="SubmitFunction")
    dynamodb.list_tables()
    dynamodb.list_tables()
    client("sqs", endpoint).list_queues()  # no app id: the local stack's own call
    calls = log.since(mark)
    assert AwsCallLog.by_caller(calls) == {
        "SubmitFunction": {"dynamodb:ListTables": 2},
        "(local stack)": {"sqs:ListQueues": 1},
    }
    assert log.mark() == mark + 3, "reading the log is not an AWS call and is never counted"
    assert log.since(log.mark()) == []


def test_the_call_log_refuses_a_since_that_is_not_a_number(counting: tuple[MotoProcess, str]) -> None:
    _moto, endpoint = counting
    for hostile in ("abc", "1e3", "%00", "..%2F", "9" * 5000):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{endpoint}{CALLS_PATH}?since={hostile}", timeout=10)  # noqa: S310 - loopback
        if refused.value.code != 400:
            raise AssertionError(f"since={hostile[:20]}: {refused.value.code}")
    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}?since=-1", timeout=10) as answer:  # noqa: S310
        assert json.loads(answer.read())["calls"] == []


def test_a_child_that_does_not_count_says_so() -> None:
    with pytest.raises(MotoProcessError, match="does not count"):
        MotoProcess().calls()
