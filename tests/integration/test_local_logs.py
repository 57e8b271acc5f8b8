"""The functions' logs on the local stack go where Lambda sends them: never to the console, to the
stack's log file (JSON lines, each naming its function) and to the function's log group on moto's
CloudWatch Logs, where a Logs Insights query for one job finds its submit and callback lines."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Client
from swapdrop_local.log_shipper import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, FunctionLogs, LogFile, _batches
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg, png

RESULT = png((30, 160, 90), size=(32, 24))


@pytest.fixture(scope="module")
def running() -> Iterator[RunningStack]:
    options = StackOptions(
        reconcile_interval=1.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.01, "engine": lambda _s, _t: RESULT},
    )
    with RunningStack(options) as stack:
        yield stack


@pytest.fixture(scope="module")
def job_id(running: RunningStack) -> str:
    client = Client(running.info())
    client.put("faces/logs.jpg", jpeg((200, 120, 90)))
    client.put("inbox/logs/target.jpg", jpeg((90, 120, 200)))
    job = client.wait_for("inbox/logs/target.jpg")
    assert job.status.value == "SUCCESS", job
    return job.jobId


def _insights(running: RunningStack, query: str, groups: list[str], job_id: str, timeout: float = 30) -> list[dict]:
    """The query's rows as JSON records, once they hold the job's submit and callback lines (the shipper sends a
    batch a second). moto 5.2.5 answers the fields but ignores `filter`, so the job's lines are picked here
    too, as `swapdrop logs` does."""
    info = running.info()
    logs = local_client("logs", info["region"], info["endpoint_url"])
    deadline = time.monotonic() + timeout
    while True:
        now = int(time.time())
        query_id = logs.start_query(logGroupNames=groups, startTime=now - 600, endTime=now + 60, queryString=query)
        while (answer := logs.get_query_results(queryId=query_id["queryId"]))["status"] in ("Scheduled", "Running"):
            time.sleep(0.1)
        records = [json.loads({f["field"]: f["value"] for f in row}["@message"]) for row in answer["results"]]
        mine = [r for r in records if r.get("job_id") == job_id]
        if {r.get("function_name") for r in mine} >= {"SubmitFunction", "CallbackFunction"}:
            return mine
        assert time.monotonic() < deadline, f"not in CloudWatch Logs within {timeout} s: {mine}"
        time.sleep(0.5)


def test_a_jobs_submit_and_callback_lines_are_found_by_logs_insights(running: RunningStack, job_id: str) -> None:
    assert running.stack is not None
    groups = [running.stack.log_groups["SubmitFunction"], running.stack.log_groups["CallbackFunction"]]
    query = f'fields @timestamp, @message | filter job_id = "{job_id}"'
    records = _insights(running, query, groups, job_id)
    messages = {(r["function_name"], r["message"]) for r in records}
    assert ("SubmitFunction", "job submitted") in messages, messages


def test_log_streams_are_named_as_lambda_names_them(running: RunningStack, job_id: str) -> None:
    info = running.info()
    logs = local_client("logs", info["region"], info["endpoint_url"])
    group = running.stack.log_groups["SubmitFunction"]  # type: ignore[union-attr]
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert streams
    for stream in streams:
        day, marker = stream.rsplit("/", 1)
        assert time.strptime(day, "%Y/%m/%d") and marker.startswith("[$LATEST]") and len(marker) == 9 + 32, stream


def test_the_log_file_has_each_functions_records_with_its_name(running: RunningStack, job_id: str) -> None:
    assert running.log_file is not None
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in running.log_file.read_text().splitlines()]  # every line is JSON
        job_lines = [r for r in records if r.get("job_id") == job_id]
        if {r["function"] for r in job_lines} >= {"SubmitFunction", "CallbackFunction"}:
            break
        assert time.monotonic() < deadline, job_lines
        time.sleep(0.2)
    assert all(r["function"] == r["function_name"] for r in job_lines if "function_name" in r)
    assert any(r.get("logger") == "swapdrop.local" for r in records)  # the stack's own lines, too


def test_function_output_never_reaches_the_console(running: RunningStack, capfd: pytest.CaptureFixture) -> None:
    client = Client(running.info())
    client.put("inbox/logs/quiet.jpg", jpeg((10, 120, 20)))
    client.wait_for("inbox/logs/quiet.jpg")
    out, err = capfd.readouterr()
    assert "function_name" not in out + err and "cold_start" not in out + err, (out, err)


# --- the pieces, without a stack ---------------------------------------------------------------------


def test_batches_keep_to_put_log_events_limits() -> None:
    entries = [(i, "x" * 1000) for i in range(3000)]  # 3000 * 1026 bytes: more than 2 MiB
    batches = _batches(entries)
    assert [e for b in batches for e in b] == entries
    assert all(sum(len(m) + EVENT_OVERHEAD_BYTES for _, m in b) <= MAX_BATCH_BYTES for b in batches)
    assert len(batches) == 3
    small = _batches([(i, "") for i in range(25_000)])
    assert [len(b) for b in small] == [10_000, 10_000, 5_000]


class _RecordingLogs:
    class exceptions:
        ResourceAlreadyExistsException = KeyError

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.streams: list[tuple[str, str]] = []

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> None:
        self.streams.append((logGroupName, logStreamName))

    def put_log_events(self, **request: Any) -> None:
        self.calls.append(request)


def test_worker_output_is_split_into_records_and_shipped_in_order(tmp_path: Path) -> None:
    log_file = LogFile(tmp_path / "stack.log")
    recorder = _RecordingLogs()
    logs = FunctionLogs(log_file, {"SubmitFunction": "group-a"}, recorder)
    write, stream_name = logs.attach("SubmitFunction")
    os.write(write, b'{"level": "INFO", "message": "one", "job_id": "j"}\nplain text\n{"message": ')
    os.write(write, b'"split across writes"}\n[not json\nno newline at the end')
    os.close(write)  # the worker exits
    logs.stop()
    log_file.close()
    records = [json.loads(line) for line in (tmp_path / "stack.log").read_text().splitlines()]
    assert records == [
        {"level": "INFO", "message": "one", "job_id": "j", "function": "SubmitFunction"},
        {"function": "SubmitFunction", "message": "plain text"},
        {"message": "split across writes", "function": "SubmitFunction"},
        {"function": "SubmitFunction", "message": "[not json"},
        {"function": "SubmitFunction", "message": "no newline at the end"},
    ]
    assert recorder.streams == [("group-a", stream_name)]
    shipped = [e for call in recorder.calls for e in call["logEvents"]]
    assert [e["message"] for e in shipped][:2] == ['{"level": "INFO", "message": "one", "job_id": "j"}', "plain text"]
    assert len(shipped) == 5
    assert [e["timestamp"] for e in shipped] == sorted(e["timestamp"] for e in shipped)


def test_a_functions_context_names_its_log_group_and_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    from swapdrop_local.lambda_context import LocalLambdaContext

    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", "swapdrop-local-SubmitFunctionLogGroup")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/02/[$LATEST]abc")
    context = LocalLambdaContext("SubmitFunction")
    assert (context.log_group_name, context.log_stream_name) == (
        "swapdrop-local-SubmitFunctionLogGroup",
        "2026/01/02/[$LATEST]abc",
    )


HANDLER = """
import json, sys


def lambda_handler(event, context):
    print(json.dumps({"message": "from stdout", "stream": context.log_stream_name}))
    print("from stderr", file=sys.stderr)
    return {"group": context.log_group_name, "stream": context.log_stream_name}
"""


def test_a_worker_logs_to_its_own_stream_and_knows_it(tmp_path: Path) -> None:
    """A real worker: its stdout and stderr reach the log file and its stream, whose name its context reports."""
    from swapdrop_local.functions import FunctionSpec, LocalFunction

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "context_handler.py").write_text(HANDLER)
    spec = FunctionSpec("ContextFunction", tmp_path / "code", "context_handler.lambda_handler", 30, 128, {})
    log_file = LogFile(tmp_path / "stack.log")
    recorder = _RecordingLogs()
    logs = FunctionLogs(log_file, {"ContextFunction": "group-c"}, recorder)
    function = LocalFunction(spec, {"AWS_LAMBDA_LOG_GROUP_NAME": "group-c"}, [], 1, logs=logs)
    try:
        function.warm_up()
        answer = function.invoke({})
        (stream,) = function.log_streams()
    finally:
        function.close()
        logs.stop()
        log_file.close()
    assert answer == {"group": "group-c", "stream": stream}
    records = [json.loads(line) for line in (tmp_path / "stack.log").read_text().splitlines()]
    assert {"message": "from stdout", "stream": stream, "function": "ContextFunction"} in records
    assert {"function": "ContextFunction", "message": "from stderr"} in records
    assert recorder.streams == [("group-c", stream)]
    shipped = [event["message"] for call in recorder.calls for event in call["logEvents"]]
    assert "from stderr" in shipped


def test_the_reconcilers_log_group_shows_it_ran_recently(running: RunningStack) -> None:
    """What `swapdrop doctor` asks CloudWatch Logs: the newest stream's last event, within the schedule."""
    info = running.info()
    logs = local_client("logs", info["region"], info["endpoint_url"])
    group = running.stack.log_groups["ReconcileFunction"]  # type: ignore[union-attr]
    deadline = time.monotonic() + 15
    while True:
        streams = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=1)[
            "logStreams"
        ]
        last = streams[0].get("lastEventTimestamp", 0) if streams else 0
        if time.time() * 1000 - last < 60_000:
            break
        assert time.monotonic() < deadline, streams
        time.sleep(0.5)
