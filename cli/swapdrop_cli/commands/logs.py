"""`swapdrop logs [FUNCTION] [--since 1h] [--job JOB]`: the functions' structured logs through CloudWatch
Logs Insights (the same on a deployed and a local stack: the local one ships its logs to moto).

The query asks only for Insights' own fields (@timestamp, @message, @log); the JSON log records
Powertools writes are read here, and --job is applied here too (on AWS the query's filter already
did it; a server that ignores `filter` still gives the right lines). Nothing is added to what the
functions logged: they redact secrets themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError
from swapdrop.layout import printable

from swapdrop_cli.commands.jobs import since_arg
from swapdrop_cli.errors import CliError, ExitCode

SUFFIX = "FunctionLogGroupName"
DEFAULT_SINCE = "1h"
DEFAULT_LIMIT = 200
MAX_RESULTS = 10_000
"""Logs Insights' most rows per query."""
DEFAULT_TIMEOUT = 60.0
FOLLOW_SECONDS = 3.0
FOLLOW_OVERLAP_SECONDS = 30
"""--follow asks again for the last half minute each time: events arrive in Insights a little late."""
METRIC_FILTER = 'filter @message not like /^\\{"_aws"/'
HEADROOM = 4
"""Rows asked for per line wanted, for a server that ignores `filter` (moto): its metric lines come too."""
JOB_KEYS = ("job_id", "jobId")
"""Where a log record names its job (Powertools `extra` keys are top-level)."""
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_SHOWN = 2_000

EXAMPLES = """\
Examples:
  swapdrop logs                           every function's last hour
  swapdrop logs submit --since 30m        SubmitFunction only (FUNCTION: submit, callback, reconcile, api, …)
  swapdrop logs --job 0123456789abcdef0123456789abcdef   one job's story across the functions
  swapdrop logs callback --follow         keep printing new lines (Ctrl-C to stop)
  swapdrop logs --json | jq -r .message   one JSON object per line
Lines are time (UTC), function, level, message and job; --since takes 30m, 2h, 1d, 1w or an ISO time."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "logs", help="the functions' logs (CloudWatch Logs Insights), for one job or one function", epilog=EXAMPLES
    )
    parser.add_argument("function", nargs="?", metavar="FUNCTION", help="only this function (submit, callback, …)")
    parser.add_argument(
        "--since",
        type=since_arg,
        default=DEFAULT_SINCE,
        metavar="WHEN",
        help=f"from when: 30m, 2h, 1d or ISO ({DEFAULT_SINCE})",
    )
    parser.add_argument("--job", type=_job_id, metavar="JOB", help="only this job's lines")
    parser.add_argument(
        "--limit", type=_limit, default=DEFAULT_LIMIT, metavar="N", help=f"the last N lines ({DEFAULT_LIMIT})"
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"give up on a query after S seconds ({DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(func=run)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_RESULTS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_RESULTS}, got {value}")
    return value


# --- what to query ------------------------------------------------------------------------------


def log_groups(target: Any, function: str | None) -> dict[str, str]:
    """{function name: log group}; all of them, or the one FUNCTION names (case-insensitive)."""
    groups = dict(sorted(target.pairs(SUFFIX).items()))
    if not groups:
        raise CliError(
            f"{target.description} has no function log groups (*{SUFFIX} outputs)",
            ExitCode.UNREACHABLE,
            hint="deploy the current template (sam build && sam deploy)",
        )
    if function is None:
        return groups
    wanted = function.lower().removesuffix("function")
    chosen = {name: group for name, group in groups.items() if name.lower() == wanted}
    if not chosen:
        raise CliError(
            f"no function '{printable(function)}' in {target.description}",
            ExitCode.USAGE,
            hint=f"FUNCTION is one of: {', '.join(name.lower() for name in groups)}",
        )
    return chosen


def _job_id(text: str) -> str:
    """Checked before it goes into the query: 32 lowercase hex characters, nothing else."""
    if not _JOB_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"'{printable(text[:80])}' is not a job id (32 lowercase hex characters; swapdrop jobs lists them)"
        )
    return text


def query_string(job: str | None, limit: int) -> str:
    """Insights' own fields only; the job id is checked to be hex first, so it cannot break the query.
    Powertools' metric records (EMF: `{"_aws": …}` lines) are left out: the dashboard shows them."""
    lines = ["fields @timestamp, @message, @log", METRIC_FILTER]
    if job:
        lines.append("filter " + " or ".join(f'{key} = "{job}"' for key in JOB_KEYS))
    lines.append("sort @timestamp desc")
    lines.append(f"limit {limit}")
    return " | ".join(lines)


# --- running a query ----------------------------------------------------------------------------


def run_query(
    logs: Any,
    groups: Iterable[str],
    query: str,
    start: datetime,
    end: datetime,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, str]]:
    """Start the query, poll until it completes (or `timeout`), and give each row as {field: value}."""
    try:
        query_id = logs.start_query(
            logGroupNames=list(groups),
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()) + 1,
            queryString=query,
        )["queryId"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise CliError(
                "a function's log group does not exist yet (it has never run?)",
                ExitCode.UNREACHABLE,
                hint="name the FUNCTION whose logs you want, or deploy the current template (sam deploy)",
            ) from None
        raise
    deadline = clock() + timeout
    delay = 0.25
    while True:
        answer = logs.get_query_results(queryId=query_id)
        status = answer.get("status")
        if status == "Complete":
            return [{cell["field"]: cell.get("value", "") for cell in row} for row in answer.get("results", [])]
        if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
            raise CliError(f"the Logs Insights query ended {status}", ExitCode.UNREACHABLE)
        if clock() >= deadline:
            with contextlib.suppress(ClientError):
                logs.stop_query(queryId=query_id)
            raise CliError(
                f"the Logs Insights query did not finish within {timeout:g} s",
                ExitCode.UNREACHABLE,
                hint="narrow it: a FUNCTION, a shorter --since, or a longer --timeout",
            )
        sleep(delay)
        delay = min(delay * 2, 2.0)


# --- reading the rows ---------------------------------------------------------------------------


def event_time(value: str) -> datetime | None:
    """@timestamp as Insights gives it ('2026-11-30 07:00:00.123') or as milliseconds (moto)."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_row(row: dict[str, str], functions_by_group: dict[str, str]) -> dict[str, Any]:
    """One line: time, function, level, message, job id, and the record itself (None when not JSON)."""
    raw = row.get("@message", "")
    record: Any = None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        record = None
    group = row.get("@log", "")
    function = next(
        (name for path, name in functions_by_group.items() if group == path or group.endswith(":" + path)), group
    )
    job = next((record[key] for key in JOB_KEYS if record and isinstance(record.get(key), str)), None)
    when = event_time(row.get("@timestamp", ""))
    return {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z") if when else None,
        "function": function.lower(),
        "level": str(record.get("level", "")) if record else "",
        "message": str(record.get("message", "")) if record else raw.rstrip("\n"),
        "jobId": job,
        "record": record,
        "ptr": row.get("@ptr"),
    }


def _is_metric(line: dict[str, Any]) -> bool:
    return bool(line["record"] and "_aws" in line["record"])


def human_line(line: dict[str, Any]) -> str:
    time_text = (line["time"] or "?").replace("T", " ").removesuffix("Z")
    message = printable(line["message"])
    if len(message) > MAX_SHOWN:
        message = message[:MAX_SHOWN] + "…"
    job = f"  job={line['jobId']}" if line["jobId"] else ""
    return f"{time_text}  {line['function']:<9} {line['level'] or '-':<7} {message}{job}"


def fetch_lines(
    logs: Any, groups: dict[str, str], job: str | None, limit: int, start: datetime, end: datetime, timeout: float
) -> list[dict[str, Any]]:
    """The last `limit` lines in [start, end], oldest first."""
    by_group = {group: name for name, group in groups.items()}
    # A server that ignores `filter` (moto) must not cut the wanted lines short: ask for more, filter here.
    wanted = MAX_RESULTS if job else min(MAX_RESULTS, limit * HEADROOM)
    rows = run_query(logs, groups.values(), query_string(job, wanted), start, end, timeout)
    lines = [line for line in (parse_row(row, by_group) for row in rows) if not _is_metric(line)]
    if job:
        lines = [line for line in lines if line["jobId"] == job]
    lines.sort(key=lambda line: line["time"] or "")
    return lines[-limit:]


def run(args: argparse.Namespace, ctx: Any) -> int:
    target = ctx.target
    groups = log_groups(target, args.function)
    job, start = args.job, args.since
    logs = target.client("logs")
    end = datetime.now(timezone.utc)
    lines = fetch_lines(logs, groups, job, args.limit, start, end, args.timeout)
    shown: set[Any] = set()
    for line in lines:
        _print(ctx.output, line)
        shown.add(_identity(line))
    if not lines and not args.follow:
        what = f"job {job}" if job else ", ".join(name.lower() for name in groups)
        ctx.output.note(f"no log lines for {what} since {start.strftime('%Y-%m-%d %H:%M:%S')} UTC")
    if args.follow:
        return _follow(ctx, logs, groups, job, args, shown, end)
    return ExitCode.OK


def _follow(
    ctx: Any, logs: Any, groups: dict[str, str], job: str | None, args: Any, shown: set, since: datetime
) -> int:
    ctx.output.note("following (Ctrl-C to stop)…")
    try:
        while True:
            time.sleep(FOLLOW_SECONDS)
            end = datetime.now(timezone.utc)
            start = since - timedelta(seconds=FOLLOW_OVERLAP_SECONDS)
            for line in fetch_lines(logs, groups, job, MAX_RESULTS, start, end, args.timeout):
                identity = _identity(line)
                if identity not in shown:
                    shown.add(identity)
                    _print(ctx.output, line)
            since = end
    except KeyboardInterrupt:
        return ExitCode.OK


def _identity(line: dict[str, Any]) -> Any:
    return line["ptr"] or (line["time"], line["function"], line["message"])


def _print(output: Any, line: dict[str, Any]) -> None:
    if output.json_mode:
        output.emit({key: value for key, value in line.items() if key != "ptr"})
    else:
        output.result(human_line(line))
