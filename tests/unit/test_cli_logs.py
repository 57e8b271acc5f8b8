"""`swapdrop logs`: the exact query string runs on moto's Logs Insights (in process), --job keeps only
that job's lines whether or not the server applied the filter, FUNCTION picks a log group
(case-insensitive; unknown → exit 2 with the names), polling gives up after --timeout."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from swapdrop_cli.commands import logs as logs_command
from swapdrop_cli.commands.logs import (
    fetch_lines,
    human_line,
    log_groups,
    parse_row,
    query_string,
    run_query,
)
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.output import Output

JOB = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
GROUPS = {"Submit": "/aws/lambda/swapdrop-Submit", "Callback": "/aws/lambda/swapdrop-Callback"}


class FakeTarget:
    description = "stack 'swapdrop'"

    def __init__(self, outputs: dict[str, str], clients: dict[str, Any] | None = None) -> None:
        self.outputs, self.clients = outputs, clients or {}

    def pairs(self, suffix: str) -> dict[str, str]:
        return {k[: -len(suffix)]: v for k, v in self.outputs.items() if k.endswith(suffix)}

    def client(self, service: str) -> Any:
        return self.clients[service]


EMF = json.dumps(
    {
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "Swapdrop", "Metrics": [{"Name": "X"}]}]},
        "service": "swapdrop",
        "X": [1.0],
        "job_id": JOB,
    }
)
"""A Powertools metric record (EMF): not a line a person reads."""


def record(message: str, job: str | None = None, level: str = "INFO", key: str = "job_id") -> str:
    body: dict[str, Any] = {"level": level, "message": message, "service": "swapdrop"}
    if job:
        body[key] = job
    return json.dumps(body)


@pytest.fixture
def moto_logs() -> Any:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        now = int(datetime.now(UTC).timestamp() * 1000)
        events = {
            GROUPS["Submit"]: [
                (now - 5000, record("job submitted", JOB)),
                (now - 4000, record("other job submitted", OTHER)),
                (now - 3900, "START RequestId: 1 Version: $LATEST"),
                (now - 3800, EMF),
            ],
            GROUPS["Callback"]: [
                (now - 3000, record("callback applied", JOB, key="jobId")),
                (now - 2000, record("callback with an invalid or missing token", OTHER, level="WARNING")),
                (now - 1000, EMF),
            ],
        }
        for group, items in events.items():
            client.create_log_group(logGroupName=group)
            client.create_log_stream(logGroupName=group, logStreamName="s")
            client.put_log_events(
                logGroupName=group,
                logStreamName="s",
                logEvents=[{"timestamp": t, "message": m} for t, m in items],
            )
        yield client


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now


def test_the_query_string_runs_on_moto_and_job_lines_come_back_in_order(moto_logs: Any) -> None:
    start, end = window()
    lines = fetch_lines(moto_logs, GROUPS, JOB, 100, start, end, timeout=10)
    assert [(line["function"], line["message"], line["jobId"]) for line in lines] == [
        ("submit", "job submitted", JOB),
        ("callback", "callback applied", JOB),
    ]


def test_all_lines_of_one_function_with_the_last_n_and_no_metric_records(moto_logs: Any) -> None:
    start, end = window()
    lines = fetch_lines(moto_logs, {"Submit": GROUPS["Submit"]}, None, 2, start, end, timeout=10)
    assert [line["message"] for line in lines] == ["other job submitted", "START RequestId: 1 Version: $LATEST"]
    everything = fetch_lines(moto_logs, GROUPS, None, 100, start, end, timeout=10)
    assert len(everything) == 5 and not any(line["record"] and "_aws" in line["record"] for line in everything)
    assert lines[1]["level"] == "" and lines[1]["record"] is None


def test_query_string_filters_both_job_keys_and_metric_records_and_sorts_newest_first() -> None:
    assert query_string(JOB, 50) == (
        'fields @timestamp, @message, @log | filter @message not like /^\\{"_aws"/ '
        f'| filter job_id = "{JOB}" or jobId = "{JOB}" | sort @timestamp desc | limit 50'
    )
    assert query_string(None, 7) == (
        'fields @timestamp, @message, @log | filter @message not like /^\\{"_aws"/ | sort @timestamp desc | limit 7'
    )


@pytest.mark.parametrize("job", ['x" or 1=1', "ABCDEF0123456789ABCDEF0123456789", "123", JOB + "0"])
def test_a_job_that_is_not_a_job_id_is_a_usage_error(job: str) -> None:
    from swapdrop_cli.app import main

    assert main(["logs", "--job", job, "--local", "/nonexistent/local.json"]) == ExitCode.USAGE


def test_function_names_are_case_insensitive_and_unknown_ones_list_the_valid_names() -> None:
    target = FakeTarget({f"{name}FunctionLogGroupName": group for name, group in GROUPS.items()})
    assert log_groups(target, "SUBMIT") == {"Submit": GROUPS["Submit"]}
    assert log_groups(target, "callbackfunction") == {"Callback": GROUPS["Callback"]}
    assert log_groups(target, None) == dict(sorted(GROUPS.items()))
    with pytest.raises(CliError) as raised:
        log_groups(target, "nope")
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.hint == "FUNCTION is one of: callback, submit"


def test_no_log_group_outputs_is_unreachable() -> None:
    with pytest.raises(CliError) as raised:
        log_groups(FakeTarget({}), None)
    assert raised.value.exit_code == ExitCode.UNREACHABLE


def test_rows_as_aws_gives_them() -> None:
    row = {
        "@timestamp": "2026-11-30 07:00:00.123",
        "@message": record("hello \x1b[2J", JOB, level="ERROR"),
        "@log": "123456789012:/aws/lambda/swapdrop-Submit",
    }
    line = parse_row(row, {group: name for name, group in GROUPS.items()})
    assert line["time"] == "2026-11-30T07:00:00.123Z" and line["function"] == "submit"
    text = human_line(line)
    assert text.startswith("2026-11-30 07:00:00.123  submit    ERROR")
    assert "\x1b" not in text and "\\x1b[2J" in text and text.endswith(f"job={JOB}")


@pytest.mark.parametrize("message", ["", "not json", "[1]", "{" * 5000, json.dumps({"level": 3, "message": None})])
def test_odd_messages_still_make_a_line(message: str) -> None:
    line = parse_row({"@timestamp": "x", "@message": message, "@log": "g"}, {})
    human_line(line)
    assert line["jobId"] is None


class SlowLogs:
    def __init__(self) -> None:
        self.stopped = False

    def start_query(self, **kwargs: Any) -> dict:
        return {"queryId": "q"}

    def get_query_results(self, queryId: str) -> dict:
        return {"status": "Running", "results": []}

    def stop_query(self, queryId: str) -> dict:
        self.stopped = True
        return {"success": True}


def test_a_query_that_does_not_finish_is_stopped_and_unreachable() -> None:
    clock = iter(range(100))
    logs = SlowLogs()
    start, end = window()
    with pytest.raises(CliError) as raised:
        run_query(logs, ["g"], "q", start, end, timeout=5, sleep=lambda _s: None, clock=lambda: next(clock))
    assert raised.value.exit_code == ExitCode.UNREACHABLE and logs.stopped


def test_a_missing_log_group_is_unreachable_with_a_hint(moto_logs: Any) -> None:
    start, end = window()
    with pytest.raises(CliError) as raised:
        run_query(moto_logs, ["/aws/lambda/none"], "fields @message", start, end, timeout=5)
    assert raised.value.exit_code == ExitCode.UNREACHABLE


def run_logs(argv: list[str], client: Any, json_mode: bool = False) -> tuple[int, str, str]:
    from swapdrop_cli.app import build_parser

    args = build_parser().parse_args(["logs", *argv])
    stdout, stderr = io.StringIO(), io.StringIO()
    ctx = type("Ctx", (), {})()
    ctx.target = FakeTarget({f"{n}FunctionLogGroupName": g for n, g in GROUPS.items()}, {"logs": client})
    ctx.output = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return args.func(args, ctx), stdout.getvalue(), stderr.getvalue()


def test_the_command_prints_lines_and_json(moto_logs: Any) -> None:
    code, stdout, _ = run_logs(["--job", JOB], moto_logs)
    assert code == 0 and len(stdout.splitlines()) == 2 and "callback applied" in stdout
    code, stdout, _ = run_logs(["callback", "--json"], moto_logs, json_mode=True)
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [row["level"] for row in rows] == ["INFO", "WARNING"]
    assert set(rows[0]) == {"time", "function", "level", "message", "jobId", "record"}


def test_nothing_found_says_so_on_stderr(moto_logs: Any) -> None:
    code, stdout, stderr = run_logs(["--job", "f" * 32], moto_logs)
    assert (code, stdout) == (0, "") and "no log lines for job" in stderr


def test_a_bad_since_is_a_usage_error() -> None:
    from swapdrop_cli.app import main

    assert main(["logs", "--since", "yesterday-ish", "--local", "/nonexistent/local.json"]) == ExitCode.USAGE


def test_module_docs_name_every_option() -> None:
    assert "--job" in logs_command.EXAMPLES and "--follow" in logs_command.EXAMPLES


class GrowingLogs:
    """Insights answers that gain a line between queries (the same @ptr each time for a line)."""

    def __init__(self) -> None:
        self.rows: list[list[dict[str, str]]] = []
        self.queries: list[dict[str, Any]] = []

    def add(self, ptr: str, message: str) -> None:
        millis = str(int(datetime.now(UTC).timestamp() * 1000))
        fields = {"@ptr": ptr, "@timestamp": millis, "@message": record(message), "@log": GROUPS["Submit"]}
        self.rows.append([{"field": k, "value": v} for k, v in fields.items()])

    def start_query(self, **kwargs: Any) -> dict:
        self.queries.append(kwargs)
        return {"queryId": "q"}

    def get_query_results(self, queryId: str) -> dict:
        return {"status": "Complete", "results": list(self.rows)}


def test_follow_prints_each_new_line_once_until_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    logs = GrowingLogs()
    logs.add("1", "first")
    rounds = iter(["second", "third", None])

    def sleep(_seconds: float) -> None:
        message = next(rounds)
        if message is None:
            raise KeyboardInterrupt
        logs.add(message, message)

    monkeypatch.setattr(logs_command.time, "sleep", sleep)
    code, stdout, stderr = run_logs(["submit", "--follow"], logs)
    assert code == 0
    assert [line.split()[-1] for line in stdout.splitlines()] == ["first", "second", "third"]
    assert "following (Ctrl-C to stop)" in stderr
    assert len(logs.queries) == 3
    assert all(q["startTime"] < q["endTime"] for q in logs.queries)
