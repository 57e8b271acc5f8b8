"""AWS calls per job: every request one successful job makes end to end, per function, next to the floor.

One job through the whole local stack (`swapdrop local`: S3 notification -> SQS event source ->
SubmitFunction -> the emulator, echo engine, no step delay, one callback thread so callbacks arrive
in order -> CallbackFunction -> DynamoDB, S3, EventBridge). Each function's workers run with
AWS_SDK_UA_APP_ID=<FunctionName>, so botocore tags every request `app/<FunctionName>`; a WSGI
middleware in front of moto's server (swapdrop_local.aws_calls) counts them by function and
operation where they land, whatever the code did. The bench's own uploads and polls carry
`app/bench` and are left out; the local runtime's own requests (the SQS event source's receive and
delete, the log shipper) carry no app id and are listed apart, not counted against a function.

The floor is what the work needs (FLOOR below, with why): a function's count above it is a call to cut.
Then one reconciler run with no open jobs: what the schedule costs on its own.

    python bench/bench_aws_calls.py
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, print_table

BENCH_APP = "bench"
SETTLE_SECONDS = 60.0
QUIET_SECONDS = 1.0
"""The call log must stay unchanged this long after the job settled: every invocation has ended."""
TARGET = 1.0
"""Each function at its floor."""


def submit_floor() -> Counter[str]:
    return Counter(
        {
            # the claim, written already taken for its first attempt (create, conditional: at most one
            # submitter sends), the face and its source key (recorded before sending: a rejection or a crash
            # still names them), the task id (after the answer). The job in hand is never read again.
            "dynamodb:PutItem": 3,
            # the face lookup: the key this container found for the face (the warm-up job's LIST of
            # faces/<name>.<ext>), confirmed with a HEAD, a twelfth of a LIST's price
            "s3:HeadObject": 1,
            "s3:GetObject": 2,  # the face and the target
        }
    )


def callback_floor(callbacks: int, news: int) -> Counter[str]:
    """`callbacks` invocations, `news` of them changing the job (status or progress higher)."""
    return Counter(
        {
            "dynamodb:GetItem": callbacks,  # the token's job exists, and is decided on: one read
            # each callback with news; then, after SUCCESS, the result and the event recorded in one
            # write (the event goes out between the result's PutObject and that write: finishing).
            "dynamodb:PutItem": news + 1,
            "s3:PutObject": 1,  # the result
            "events:PutEvents": 1,  # Job Finished
        }
    )


@dataclass
class Measurement:
    calls: dict[str, Counter[str]]
    order: dict[str, list[str]]
    floors: dict[str, Counter[str]]
    local_runtime: Counter[str]
    callbacks: list[tuple[str, str]]
    reconcile_run: Counter[str]
    status: str


def _news(callbacks: list[tuple[str, str]]) -> int:
    """Callbacks that move the job on, the state machine's way: status rank higher, or progress higher."""
    rank = {"NOT_START": 2, "SUBMITTED": 2, "MODAL": 3, "IN_PROGRESS": 3, "SUCCESS": 4, "FAILURE": 4}
    seen_rank, seen_progress, news = 2, 0, 0  # the job after submit: SUBMITTED, 0 %
    for status, progress in callbacks:
        if seen_rank == 4:
            continue
        value = int(progress.rstrip("%") or 0)
        new_rank = rank.get(status, 0)
        if new_rank > seen_rank or (new_rank == seen_rank and value > seen_progress):
            news += 1
        seen_rank = max(seen_rank, new_rank)
        seen_progress = 100 if new_rank == 4 else max(seen_progress, value)
    return news


def _image(fmt: str, color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format=fmt)
    return buffer.getvalue()


def _wait_quiet(log: Any, seconds: float = QUIET_SECONDS, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    last, since = log.mark(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        now = log.mark()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return


def measure() -> Measurement:
    from swapdrop_emulator import echo_engine
    from swapdrop_local.aws_calls import LOCAL_STACK, AwsCallLog
    from swapdrop_local.provision import LOCAL_CREDENTIALS
    from swapdrop_local.stack import RunningStack, StackOptions

    options = StackOptions(
        count_aws_calls=True,
        reconcile_interval=0,
        emulator={"engine": echo_engine, "step_delay": 0.0, "callback_workers": 1},
        # One worker a function, so the measured job runs in containers a first job warmed: the secrets
        # (cached SECRET_CACHE_SECONDS in a container) are then read once per container, not per job.
        submit_concurrency=1,
        max_workers=1,
    )
    with RunningStack(options) as stack:
        log = stack.aws_calls
        assert log is not None
        info = stack.info()
        config = Config(user_agent_appid=BENCH_APP)
        session = boto3.Session(region_name=info["region"], **LOCAL_CREDENTIALS)
        s3 = session.client("s3", endpoint_url=info["endpoint_url"], config=config)
        table = session.resource("dynamodb", endpoint_url=info["endpoint_url"], config=config).Table(info["jobs_table"])
        s3.put_object(Bucket=info["bucket"], Key="faces/alice.jpg", Body=_image("JPEG", (200, 30, 40)))
        for index, color in enumerate([(90, 20, 200), (20, 90, 200)]):  # a warm-up job, then the measured one
            _wait_quiet(log)
            start, seen = log.mark(), len(stack.emulator.callbacks)
            target_key = f"inbox/alice/bench-{index}.png"
            s3.put_object(Bucket=info["bucket"], Key=target_key, Body=_image("PNG", color))
            status = _wait_settled(table, target_key)
            stack.emulator.wait_idle(timeout=SETTLE_SECONDS)
        _wait_quiet(log)
        job_calls = [call for call in log.since(start) if call.caller != BENCH_APP]
        callbacks = [(c.status, c.progress) for c in stack.emulator.callbacks[seen:] if c.outcome == "delivered"]
        mark = log.mark()
        stack.reconcile_now()
        _wait_quiet(log, seconds=0.3)
        run_calls = [call for call in log.since(mark) if call.caller == "ReconcileFunction"]
    counted = AwsCallLog.by_caller(job_calls)
    order: dict[str, list[str]] = {}
    for call in job_calls:
        order.setdefault(call.caller, []).append(f"{call.service}:{call.operation}")
    local_runtime = counted.pop(LOCAL_STACK, Counter())
    order.pop(LOCAL_STACK, None)
    floors = {"SubmitFunction": submit_floor(), "CallbackFunction": callback_floor(len(callbacks), _news(callbacks))}
    return Measurement(
        calls=counted,
        order=order,
        floors=floors,
        local_runtime=local_runtime,
        callbacks=callbacks,
        reconcile_run=Counter(f"{c.service}:{c.operation}" for c in run_calls),
        status=status,
    )


def _wait_settled(table: Any, target_key: str) -> str:
    """The job's status once it is terminal and out of the open index (its outbox done)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        items = table.scan(ConsistentRead=True).get("Items", [])
        for item in items:
            terminal = item["status"] in ("SUCCESS", "FAILURE", "REJECTED")
            if item.get("targetKey") == target_key and terminal and "openShard" not in item:
                return str(item["status"])
        time.sleep(0.1)
    raise TimeoutError(f"the bench job for {target_key} did not settle in {SETTLE_SECONDS:.0f} s")


def report(result: Measurement) -> str:
    lines = [f"one job (after a warm-up job), {result.status}; callbacks delivered: {result.callbacks}"]
    for function in sorted(result.calls):
        count, floor = result.calls[function], result.floors.get(function)
        lines.append(f"\n{function}: {count.total()} calls" + (f" (floor {floor.total()})" if floor else ""))
        for name in sorted(set(count) | set(floor or {})):
            at_floor = f"  floor {floor[name]}" if floor is not None else ""
            lines.append(f"  {name:32} {count[name]:3}{at_floor}")
        lines.append("  in order: " + ", ".join(result.order.get(function, [])))
    lines.append(f"\nlocal runtime (event sources, log shipper; not a function's): {dict(result.local_runtime)}")
    lines.append(f"one reconciler run, no open jobs: {dict(result.reconcile_run)}")
    return "\n".join(lines)


def figures(large: bool = False) -> list[Figure]:
    result = measure()
    print(report(result))
    if result.status != "SUCCESS":
        raise RuntimeError(f"the bench job should succeed, it ended {result.status}")
    rows = []
    for function in ("SubmitFunction", "CallbackFunction"):
        count, floor = result.calls.get(function, Counter()), result.floors[function]
        extra = count - floor
        note = "over the floor: " + ", ".join(f"{k} +{v}" for k, v in extra.items()) if extra else ""
        rows.append(
            Figure(f"AWS calls per job, {function}", count.total(), "calls", "floor", floor.total(), None, TARGET)
        )
        rows[-1].note = note
    total = sum(c.total() for c in result.calls.values())
    floor_total = sum(f.total() for f in result.floors.values())
    rows.append(Figure("AWS calls per job, all functions", total, "calls", "floor", floor_total, None, TARGET))
    rows.append(
        Figure(
            "AWS calls per reconciler run, no open jobs",
            result.reconcile_run.total(),
            "calls",
            note=", ".join(f"{k} x{v}" for k, v in sorted(result.reconcile_run.items())),
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="the same (one job is the measure)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print_table(figures(args.large))


if __name__ == "__main__":
    main()
