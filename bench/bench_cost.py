"""Compute and money per job: each function invocation's wall time on the local stack, turned into
GB-seconds at the template's MemorySize, and the dollar cost of 1,000 jobs on arm64 per service.

One local stack (echo engine, no step delay), JOBS jobs uploaded one a second (the trickle case: one
job per SubmitFunction batch, the dearest). Measured per job, where the work lands:
- each invocation's wall time at the supervisor (handler plus the pipe to the worker: a little more
  than Lambda bills), per function, and the invocations per job;
- every AWS request moto answers, by service and operation (a WSGI wrapper in front of moto's app,
  this bench only), the bench's own requests left out;
- the job item's size, for DynamoDB's write units (1 KB each) and the list indexes it is in.
Idle costs (the reconciler's schedule, the SQS pollers' empty receives, the secrets' monthly fee,
storage, CloudWatch Logs ingestion) do not depend on the job count and are left out of the per-job
figure; the swap API is excluded, as the issue asks.

Memory sweep (submit, a 10 MiB target): Lambda gives a function CPU in proportion to its memory
(1,769 MB = one vCPU); this machine does not, so the same run takes the same time at every size here.
What is measured: the submit worker's CPU time and wall time for the job and its peak RSS (VmHWM).
What is modelled: wall(M) = (wall - cpu) + cpu * max(1, 1769 / M), the CPU part slowed by the share of a
vCPU that M MB buys (one local core counted as one vCPU), and GB-s(M) = wall(M) * M / 1024. The size
chosen is the cheapest whose memory holds the peak RSS with a 1.5x margin.

    python bench/bench_cost.py [--large]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import Pipeline
from figures import Figure, print_table

JOBS = 5
JOBS_LARGE = 20
TARGET_DOLLARS_PER_1000 = 0.02
SWEEP_MEMORY_MB = (256, 512, 1024)
SWEEP_IMAGE_BYTES = 10 * 1024 * 1024
VCPU_MEMORY_MB = 1769
"""Lambda's memory size at which a function has one full vCPU."""
RSS_MARGIN = 1.5

PRICES_DATE = "2024-11-01"
PRICES: dict[str, tuple[float, str]] = {
    # us-east-1 list prices, the first pricing tier, taken from AWS's public pricing pages and in effect
    # since PRICES_DATE (DynamoDB on-demand's price cut); not re-checked when the bench runs.
    "lambda_gb_second_arm64": (0.0000133334, "Lambda arm64, per GB-second"),
    "lambda_request": (0.20 / 1e6, "Lambda, per request"),
    "apigw_http_request": (1.00 / 1e6, "API Gateway HTTP API, per request (up to 512 KB)"),
    "dynamodb_write_unit": (0.625 / 1e6, "DynamoDB on-demand, per write request unit (1 KB)"),
    "dynamodb_read_unit": (0.125 / 1e6, "DynamoDB on-demand, per read request unit (4 KB strong)"),
    "sqs_request": (0.40 / 1e6, "SQS standard, per request (64 KB chunk)"),
    "s3_put": (0.005 / 1e3, "S3 Standard, per PUT, COPY, POST or LIST"),
    "s3_get": (0.0004 / 1e3, "S3 Standard, per GET and other requests"),
    "eventbridge_event": (1.00 / 1e6, "EventBridge, per custom event (64 KB chunk)"),
    "secrets_api_call": (0.05 / 1e4, "Secrets Manager, per API call"),
}

_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
BENCH_OPERATIONS = {("dynamodb", "Scan")}
"""The bench's own polling (the stack never scans: the reconciler is off); the uploads are counted."""


# --- counting AWS requests at moto ------------------------------------------------------------------


class RequestCounter:
    """(service, operation) of every request moto answers while `on`."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self.counts: Counter[tuple[str, str]] = Counter()
        self.on = False
        self._lock = threading.Lock()
        original = DomainDispatcherApplication.__call__
        counter = self

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            if counter.on:
                counter.record(environ)
            return original(app, environ, start_response)

        self._restore = lambda: setattr(DomainDispatcherApplication, "__call__", original)
        DomainDispatcherApplication.__call__ = counted

    def close(self) -> None:
        """Put moto's app back as it was (bench/run.py runs every bench in one process)."""
        self._restore()

    def record(self, environ: dict[str, Any]) -> None:
        found = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = found.group(1) if found else "?"
        if service == "s3":
            query = environ.get("QUERY_STRING", "")
            operation = "LIST" if "list-type" in query else environ.get("REQUEST_METHOD", "?")
        else:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            operation = target.rsplit(".", 1)[-1] if target else "?"
        with self._lock:
            self.counts[(service, operation)] += 1


# --- the run ------------------------------------------------------------------------------------------


def _timed(pipeline: Pipeline, durations: dict[str, list[float]]) -> None:
    """Record each invocation's wall time, per function (wrapping each LocalFunction's invoke)."""
    for name, function in pipeline.stack.functions.items():
        invoke = function.invoke

        def timed(event: dict[str, Any], wait: float | None = None, _invoke: Any = invoke, _name: str = name) -> Any:
            started = time.perf_counter()
            try:
                return _invoke(event, wait)
            finally:
                durations[_name].append(time.perf_counter() - started)

        function.invoke = timed  # type: ignore[method-assign]


def _noise_png(target_bytes: int) -> bytes:
    """A PNG of random pixels just under `target_bytes` (noise does not compress)."""
    from PIL import Image

    side = int(math.sqrt(target_bytes / 3 * 0.97))
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _write_units(item: dict[str, Any], indexes: list[tuple[str, bool]]) -> int:
    """Write units of one write of `item`, an upper bound: its size in KB for the table, and for each index
    it is in (its key attribute present) the projected size: the whole item (ALL) or one unit (a small
    INCLUDE projection). A write that changes nothing an index holds costs that index nothing, and one
    that moves an index key costs it two (delete and put): this bound counts one write per index."""
    size_units = math.ceil(len(json.dumps(item, default=str).encode()) / 1024)  # JSON: a little over DynamoDB's size
    return size_units + sum(size_units if projects_all else 1 for key, projects_all in indexes if key in item)


def measure(large: bool) -> dict[str, Any]:
    counter = RequestCounter()
    durations: dict[str, list[float]] = defaultdict(list)
    jobs = JOBS_LARGE if large else JOBS
    pipeline = Pipeline()
    try:
        warm = [pipeline.upload("warm")[0]]  # the first invocations of each worker set up clients and caches
        pipeline.wait_settled(warm)
        _timed(pipeline, durations)
        counter.on = True
        keys = []
        for n in range(jobs):
            keys.append(pipeline.upload(f"cost-{n}")[0])
            time.sleep(1.0)
        records = pipeline.wait_settled(keys)
        counter.on = False
        calls = {k: v for k, v in counter.counts.items() if k not in BENCH_OPERATIONS}
        per_job = {name: list(times) for name, times in durations.items()}
        memory = {name: f.spec.memory for name, f in pipeline.stack.functions.items()}
        index_keys = _index_keys(pipeline)
        write_units = statistics.median(_write_units(r, index_keys) for r in records.values())
        sweep = _sweep(pipeline, durations)
    finally:
        pipeline.close()
        counter.close()
    return {"jobs": jobs, "durations": per_job, "calls": calls, "memory": memory, "wu": write_units, **sweep}


def _index_keys(pipeline: Pipeline) -> list[tuple[str, bool]]:
    """(partition key attribute, projects ALL) of each of the Jobs table's indexes."""
    from swapdrop_local.provision import local_client

    info = pipeline.info
    table = local_client("dynamodb", info["region"], info["endpoint_url"]).describe_table(TableName=info["jobs_table"])[
        "Table"
    ]
    return [
        (index["KeySchema"][0]["AttributeName"], index.get("Projection", {}).get("ProjectionType") == "ALL")
        for index in table.get("GlobalSecondaryIndexes", [])
    ]


def _sweep(pipeline: Pipeline, durations: dict[str, list[float]]) -> dict[str, Any]:
    """One 10 MiB target through submit, alone: its wall time, its worker's CPU time and peak RSS."""
    image = _noise_png(SWEEP_IMAGE_BYTES - 64 * 1024)
    submit = pipeline.stack.functions["SubmitFunction"]
    pids = submit.worker_pids()
    cpu_before = {pid: _cpu_seconds(pid) for pid in pids}
    durations["SubmitFunction"].clear()
    key = f"inbox/{pipeline.face}/large.png"
    pipeline.s3.put_object(Bucket=pipeline.info["bucket"], Key=key, Body=image)
    pipeline.wait_settled([key])
    cpu = sum(_cpu_seconds(pid) - cpu_before[pid] for pid in pids if pid in submit.worker_pids())
    return {
        "sweep_bytes": len(image),
        "sweep_wall": sum(durations["SubmitFunction"]),
        "sweep_cpu": cpu,
        "sweep_rss_mb": max(_peak_rss_mb(pid) for pid in submit.worker_pids()),
    }


# --- money --------------------------------------------------------------------------------------------


def costs(result: dict[str, Any]) -> dict[str, float]:
    """Dollars per 1,000 jobs, per service."""
    jobs = result["jobs"]
    calls = Counter({k: v / jobs for k, v in result["calls"].items()})  # per job
    price = {name: value for name, (value, _) in PRICES.items()}
    gb_seconds = sum(
        sum(times) / jobs * result["memory"][name] / 1024 for name, times in result["durations"].items() if times
    )
    invocations = sum(len(times) for times in result["durations"].values()) / jobs
    by_service = {k[0]: 0.0 for k in calls}
    for (service, operation), count in calls.items():
        if service == "dynamodb":
            if operation in ("PutItem", "UpdateItem", "DeleteItem"):
                by_service[service] += count * result["wu"] * price["dynamodb_write_unit"]
            elif operation in ("GetItem", "Query", "Scan"):
                by_service[service] += count * price["dynamodb_read_unit"]
        elif service == "sqs":
            if operation != "ReceiveMessage":  # the pollers' receives are per poll, not per job: idle cost
                by_service[service] += count * price["sqs_request"]
        elif service == "s3":
            by_service[service] += count * price["s3_get" if operation in ("GET", "HEAD") else "s3_put"]
        elif service == "events":
            by_service[service] += count * price["eventbridge_event"]
        elif service == "secretsmanager":
            by_service[service] += count * price["secrets_api_call"]
    sqs_receives = calls.get(("sqs", "ReceiveMessage"), 0)
    by_service["sqs"] = by_service.get("sqs", 0.0) + min(sqs_receives, 1.0) * price["sqs_request"]
    callbacks = len(result["durations"].get("CallbackFunction", [])) / jobs
    api = len(result["durations"].get("ApiFunction", [])) / jobs
    by_service["lambda"] = gb_seconds * price["lambda_gb_second_arm64"] + invocations * price["lambda_request"]
    by_service["apigateway"] = (callbacks + api) * price["apigw_http_request"]
    by_service.pop("logs", None)  # CloudWatch Logs is priced by ingestion, not requests: left out
    return {service: dollars * 1000 for service, dollars in by_service.items()}


def sweep_table(result: dict[str, Any]) -> list[dict[str, float]]:
    wall, cpu = result["sweep_wall"], min(result["sweep_cpu"], result["sweep_wall"])
    rows = []
    for memory in SWEEP_MEMORY_MB:
        modelled = (wall - cpu) + cpu * max(1.0, VCPU_MEMORY_MB / memory)
        rows.append(
            {
                "memory": memory,
                "seconds": modelled,
                "gb_seconds": modelled * memory / 1024,
                "fits": memory >= result["sweep_rss_mb"] * RSS_MARGIN,
            }
        )
    return rows


def chosen_memory(rows: list[dict[str, float]]) -> int | None:
    fitting = [row for row in rows if row["fits"]]
    return int(min(fitting, key=lambda row: row["gb_seconds"])["memory"]) if fitting else None


def figures(large: bool = False) -> list[Figure]:
    result = measure(large)
    jobs = result["jobs"]
    per_service = costs(result)
    total = sum(per_service.values())
    shown = ", ".join(f"{s} ${v:.4f}" for s, v in sorted(per_service.items(), key=lambda kv: -kv[1]))
    out = [
        Figure(
            f"AWS cost per 1,000 jobs, arm64 (us-east-1 prices of {PRICES_DATE})",
            total,
            "$",
            target=TARGET_DOLLARS_PER_1000,
            note=shown,
        )
    ]
    for name, times in sorted(result["durations"].items()):
        if not times:
            continue
        gbs = sum(times) / jobs * result["memory"][name] / 1024
        out.append(
            Figure(
                f"{name} GB-s per job at {result['memory'][name]} MB",
                gbs,
                "GB-s",
                note=f"{len(times) / jobs:.1f} invocations/job, median {statistics.median(times) * 1000:.0f} ms",
            )
        )
    rows = sweep_table(result)
    choice = chosen_memory(rows)
    sweep = ", ".join(
        f"{int(r['memory'])} MB {r['gb_seconds']:.3f} GB-s{'' if r['fits'] else ' (too small)'}" for r in rows
    )
    out.append(
        Figure(
            f"submit, {result['sweep_bytes'] / 2**20:.1f} MiB target: peak RSS",
            result["sweep_rss_mb"],
            "MB",
            note=f"modelled {sweep}; cheapest that fits x{RSS_MARGIN}: {choice} MB;"
            f" wall {result['sweep_wall']:.2f} s, cpu {result['sweep_cpu']:.2f} s here",
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help=f"{JOBS_LARGE} jobs instead of {JOBS}")
    parser.add_argument("--json", action="store_true", help="the raw measurements and the cost per service")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.json:
        result = measure(args.large)
        calls = {f"{s}:{o}": n / result["jobs"] for (s, o), n in result["calls"].items()}
        summary = {
            "per_job_calls": calls,
            "write_units_per_write": result["wu"],
            "dollars_per_1000": costs(result),
            "sweep": sweep_table(result),
            "sweep_rss_mb": result["sweep_rss_mb"],
            "sweep_wall_s": result["sweep_wall"],
            "sweep_cpu_s": result["sweep_cpu"],
            "medians_ms": {k: statistics.median(v) * 1000 for k, v in result["durations"].items() if v},
            "invocations_per_job": {k: len(v) / result["jobs"] for k, v in result["durations"].items()},
            "prices": {k: {"price": v, "what": w, "date": PRICES_DATE} for k, (v, w) in PRICES.items()},
        }
        print(json.dumps(summary, indent=2))
        return
    print_table(figures(args.large))


if __name__ == "__main__":
    main()
