"""Upstream pool: how fast a burst drains on one swap API member against three.

Each run starts `swapdrop local` with an upstream pool of emulators (`StackOptions.upstream_pool`), each
member limited as midjourney-proxy's account defaults (3 running, 10 queued: one more submit is refused
with code 23), the echo engine and a fixed swap time, uploads the whole burst at once and waits until
every job is terminal. Drain time = first upload -> last job terminal (the records' own times).

- 1 member vs 3 members: target 3 members >= 2.7x faster (the upstream's own bound is 3x);
- the swap time is chosen so the upstream is the bottleneck, not the local stack: the members' busy share
  (the emulators' task run time over drain x running slots) and the pool's drain against the upstream's
  floor (ceil(jobs / slots) swaps) show it; near 100 % and near 1x: the upstream set the pace;
- 3 members, one answering half of its submits with HTTP 500: the drain, the failovers and how often the
  failing member was benched (the UpstreamMemberBenched and UpstreamFailovers metrics in the stack's log).

The machine is shared: read the ratios, not the times.

    python bench/bench_upstream_pool.py [--large] [--swap-seconds S]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, print_table

SMALL = {"burst": 150, "swap_seconds": 4.0}
LARGE = {"burst": 2000, "swap_seconds": 3.0}
RUNNING, QUEUED = 3, 10
"""Each member's limits: midjourney-proxy's per-account defaults."""
MEMBERS = 3
SPEEDUP_TARGET = 2.7
FAILING_FAULT = "status=500@0.5"
"""The failing member: half of its submits answer HTTP 500 (an nginx-style page), at random."""
POLL_SECONDS = 2.0
STALL_SECONDS = 180.0
"""No job reaching its end for this long (the reconciler runs every 5 s): the rest are stuck; the run stops
and reports them (a --large run once left one job PENDING with no message to carry it) instead of hanging."""
TERMINAL = {"SUCCESS", "FAILURE", "REJECTED", "CANCELLED"}

_deserialize = TypeDeserializer().deserialize


def _png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Drain:
    members: int
    jobs: int
    swap_seconds: float
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    per_member: dict[str, int] = field(default_factory=dict)
    """Tasks each member accepted (its emulator's count)."""
    submits: dict[str, int] = field(default_factory=dict)
    """Submit requests each member answered (accepted, queue-full or failed)."""
    busy_share: float = 0.0
    metrics: Counter = field(default_factory=Counter)
    """UpstreamMemberBenched (by member) and UpstreamFailovers counts from the stack's log."""

    @property
    def floor(self) -> float:
        """The upstream's own bound: every slot busy from the first upload to the end."""
        return math.ceil(self.jobs / (self.members * RUNNING)) * self.swap_seconds


def _terminal_at(record: dict[str, Any]) -> float:
    for entry in reversed(record.get("history") or []):
        if entry.get("to") in TERMINAL:
            return _at(entry["at"])
    return _at(record["updatedAt"])


def _metrics(log_file: Path) -> Counter:
    """EMF lines in the stack's log: UpstreamMemberBenched per member and UpstreamFailovers."""
    counts: Counter = Counter()
    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if "UpstreamMemberBenched" not in line and "UpstreamFailovers" not in line:
            continue
        for document in _json_documents(line):
            if "_aws" not in document:
                continue
            if "UpstreamMemberBenched" in document:
                counts[f"benched {document.get('Member', '?')}"] += _sum(document["UpstreamMemberBenched"])
            if "UpstreamFailovers" in document:
                counts["failovers"] += _sum(document["UpstreamFailovers"])
    return counts


def _json_documents(line: str) -> list[dict[str, Any]]:
    """The line as JSON, and a JSON message inside it (the stack's log wraps a function's output line)."""
    found = []
    try:
        outer = json.loads(line)
    except ValueError:
        return found
    if isinstance(outer, dict):
        found.append(outer)
        for value in outer.values():
            if isinstance(value, str) and value.startswith("{"):
                try:
                    inner = json.loads(value)
                except ValueError:
                    continue
                if isinstance(inner, dict):
                    found.append(inner)
    return found


def _sum(value: Any) -> float:
    return float(sum(value)) if isinstance(value, list) else float(value)


def drain(members: int, jobs: int, swap_seconds: float, failing: int | None = None) -> Drain:
    """One burst of `jobs` uploads on a fresh stack with `members` emulators; `failing`: that member's
    (1-based) submits fail half the time."""
    from swapdrop_emulator.engines import echo_engine
    from swapdrop_local.provision import local_client
    from swapdrop_local.stack import RunningStack, StackOptions

    log_file = Path(tempfile.mkstemp(prefix="bench-upstream-pool-", suffix=".log")[1])
    pool_members = [
        {"concurrency": RUNNING, "queue_size": QUEUED, "faults": [FAILING_FAULT] if number == failing else []}
        for number in range(1, members + 1)
    ]
    options = StackOptions(
        api_key="bench-key",
        # The reconciler as deployed (a lost callback on a loaded machine would leave a job open), polling soon.
        reconcile_interval=5.0,
        parameters={"ReconcileQuietSeconds": "10"},
        upstream_pool=members,
        pool_members=pool_members,
        # two steps (SUBMITTED -> 50 % -> the end): swap_seconds per task, three callbacks
        emulator={"engine": echo_engine, "step_delay": swap_seconds / 2, "progress_steps": (50,)},
        function_environment={"POWERTOOLS_LOG_LEVEL": "WARNING"},
        log_file=log_file,
        stack_name=f"bench-pool-{uuid.uuid4().hex[:6]}",
    )
    with RunningStack(options) as stack:
        info = stack.info()
        s3 = local_client("s3", info["region"], info["endpoint_url"])
        dynamodb = local_client("dynamodb", info["region"], info["endpoint_url"])
        face = f"bench{uuid.uuid4().hex[:6]}"
        s3.put_object(Bucket=info["bucket"], Key=f"faces/{face}.png", Body=_png((90, 160, 210)))
        image = _png((200, 120, 80))
        started: list[float] = []
        lock = threading.Lock()

        def upload(n: int) -> None:
            at = time.time()
            s3.put_object(Bucket=info["bucket"], Key=f"inbox/{face}/burst-{n}.png", Body=image)
            with lock:
                started.append(at)

        with ThreadPoolExecutor(max_workers=16) as uploads:
            list(uploads.map(upload, range(jobs)))
        records = _wait_terminal(dynamodb, info["jobs_table"], jobs, deadline=600 + 2 * jobs * swap_seconds)
        first = min(started)
        last = max(_terminal_at(record) for record in records if record["status"] in TERMINAL)
        seconds = last - first
        per_member, submits, busy = {}, {}, 0.0
        for member, emulator in zip(stack.pool, stack.emulators, strict=True):
            tasks = list(emulator.tasks.values())
            per_member[member.name] = len(tasks)
            submits[member.name] = len(emulator.swaps)
            busy += sum((t.finish_time - t.start_time) / 1000 for t in tasks if t.finish_time and t.start_time)
    return Drain(
        members=members,
        jobs=jobs,
        swap_seconds=swap_seconds,
        seconds=seconds,
        statuses=Counter(record["status"] for record in records),
        per_member=per_member,
        submits=submits,
        busy_share=busy / (seconds * members * RUNNING),
        metrics=_metrics(log_file),
    )


def _wait_terminal(dynamodb: Any, table: str, jobs: int, deadline: float) -> list[dict[str, Any]]:
    """Every job record once all `jobs` are terminal (the burst's only jobs in this stack's table), or once
    none has reached its end for STALL_SECONDS (the others are then reported with their status)."""
    give_up = time.monotonic() + deadline
    terminal, progressed = -1, time.monotonic()
    while True:
        items, start = [], None
        while True:
            kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = dynamodb.scan(**kwargs)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        records = [{k: _deserialize(v) for k, v in item.items()} for item in items]
        records = [r for r in records if "targetKey" in r]
        if len(records) >= jobs and all(r["status"] in TERMINAL for r in records):
            return records
        done = sum(r["status"] in TERMINAL for r in records)
        if done != terminal:
            terminal, progressed = done, time.monotonic()
        elif done and len(records) >= jobs and time.monotonic() - progressed > STALL_SECONDS:
            return records  # stuck: the figures say how many never finished
        if time.monotonic() > give_up:
            raise RuntimeError(f"{done} of {jobs} jobs terminal after {deadline:.0f} s")
        time.sleep(POLL_SECONDS)


def _spread(result: Drain) -> str:
    return ", ".join(f"{name} {count}" for name, count in result.per_member.items())


def _statuses(result: Drain) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(result.statuses.items()))


def measure(large: bool, swap_seconds: float | None = None) -> dict[str, Drain]:
    sizes = LARGE if large else SMALL
    swap = swap_seconds or sizes["swap_seconds"]
    runs = {}
    for name, members, failing in (("single", 1, None), ("pool", MEMBERS, None), ("failing", MEMBERS, 2)):
        runs[name] = drain(members, sizes["burst"], swap, failing=failing)
        run = runs[name]  # as it goes: a long --large run shows its parts
        print(
            f"  {name}: {run.jobs} jobs on {members} member(s) drained in {run.seconds:.1f} s "
            f"({_statuses(run)}; busy {run.busy_share:.0%}; {dict(run.metrics)})",
            file=sys.stderr,
            flush=True,
        )
    return runs


def figures(large: bool = False, swap_seconds: float | None = None) -> list[Figure]:
    runs = measure(large, swap_seconds)
    return figures_from(runs)


def figures_from(runs: dict[str, Drain]) -> list[Figure]:
    single, pool, failing = runs["single"], runs["pool"], runs["failing"]
    all_succeeded = all(set(run.statuses) == {"SUCCESS"} for run in runs.values())
    limits = f"each {RUNNING} running + {QUEUED} queued, echo engine, {pool.swap_seconds:g} s swaps"
    failing_benches = failing.metrics.get("benched emulator-2", 0)
    return [
        Figure(
            f"upstream pool: drain of {pool.jobs} uploads, {MEMBERS} members vs 1 ({limits})",
            pool.seconds,
            "s",
            "1 member",
            single.seconds,
            ratio=single.seconds / pool.seconds,
            target=SPEEDUP_TARGET,
            higher_is_better=True,
            passed=None if all_succeeded else False,
            note=f"ratio = speedup; jobs per member {_spread(pool)}; "
            f"statuses: 1 member {_statuses(single)}, pool {_statuses(pool)}",
        ),
        Figure(
            "upstream pool: drain vs the upstream's own floor (ceil(jobs / 9 slots) swaps)",
            pool.seconds,
            "s",
            "floor",
            pool.floor,
            note=f"members busy {pool.busy_share:.0%} of the drain (1 member: {single.busy_share:.0%}, "
            f"floor {single.floor:.0f} s): near 100 % = the upstream, not the local stack, set the pace",
        ),
        Figure(
            f"upstream pool: drain with 1 of {MEMBERS} members failing 50 % of submits (HTTP 500)",
            failing.seconds,
            "s",
            "healthy pool",
            pool.seconds,
            passed=None if set(failing.statuses) == {"SUCCESS"} else False,
            note=f"failing member benched {failing_benches:g}x, {failing.metrics.get('failovers', 0):g} failovers; "
            f"jobs per member {_spread(failing)}; submits per member "
            f"{', '.join(f'{k} {v}' for k, v in failing.submits.items())}; {_statuses(failing)}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help=f"a burst of {LARGE['burst']} (minutes more)")
    parser.add_argument("--swap-seconds", type=float, help="each swap's time on the emulator")
    parser.add_argument("--json", action="store_true", help="print the raw measurements too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:  # the stack's INFO lines go to its log file, not the console
        handler.setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    runs = measure(args.large, args.swap_seconds)
    if args.json:
        print(json.dumps({name: vars(run) for name, run in runs.items()}, indent=2, default=str))
    print_table(figures_from(runs))


if __name__ == "__main__":
    main()
