"""Compute and money per job: each function invocation's wall time on the local stack, turned into
GB-seconds at the template's MemorySize, and the dollar cost of 1,000 jobs on arm64 per service.

One local stack (echo engine, no step delay), JOBS jobs uploaded one a second (the trickle case: one
job per SubmitFunction batch, the dearest). Measured per job, where the work lands:
- each invocation's wall time at the supervisor (handler plus the pipe to the worker: a little more
  than Lambda bills), per function, and the invocations per job;
- every AWS request moto answers, by service and operation (a WSGI wrapper in front of moto's app,
  this bench only), the bench's own requests left out;
- every DynamoDB write moto applies, with the item before and after it (a hook on moto's backend): write
  units by DynamoDB's rules, for the table and for each GSI from the table's real key schemas and
  projections (an index is written only when the write changes its key or a projected attribute: a
  moved key is a delete and a put); a refused conditional write costs the table the existing item;
- the user's own requests (their upload's PUT, sent without a Swapdrop function's app id) apart from
  Swapdrop's: both are shown, the target is Swapdrop's.
Idle costs (the reconciler's schedule, the SQS pollers' empty receives, the secrets' monthly fee,
storage, CloudWatch Logs ingestion) do not depend on the job count and are left out of the per-job
figure; the swap API is excluded, as the issue asks.

Memory sweep (submit, a 10 MiB target): Lambda gives a function CPU in proportion to its memory
(1,769 MB = one vCPU); this machine does not, so the same run takes the same time at every size here.
What is measured: the submit worker's CPU time and wall time for the job and its peak RSS (VmHWM), then
its peak RSS after the worst accepted input: a flat WebP of image_check.WEBP_DECODE_MAX_PIXELS (the
largest WebP decoded in full; larger ones are chunk-checked, a large PNG only verified, a JPEG decoded at
1/8 scale), which is what the memory size must hold.
What is modelled: wall(M) = (wall - cpu) + cpu * max(1, 1769 / M), the CPU part slowed by the share of a
vCPU that M MB buys (one local core counted as one vCPU), and GB-s(M) = wall(M) * M / 1024. The size
chosen is the cheapest whose memory holds the peak RSS with a 1.5x margin.

    python bench/bench_cost.py [--large]
"""

from __future__ import annotations

import argparse
import base64
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
from dataclasses import dataclass
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
_APP_ID = re.compile(r"(?:^|\s)app/[^\s]+")
"""Swapdrop's functions send app/<FunctionName> in their User-Agent (swapdrop_local.aws_calls)."""
BENCH_OPERATIONS = {("dynamodb", "Scan")}
"""The bench's own polling (the stack never scans: the reconciler is off); the uploads are counted."""


# --- DynamoDB write units, exactly ----------------------------------------------------------------------
# DynamoDB's rules (Developer Guide: "Item sizes and formats", "Global secondary indexes: provisioned
# throughput considerations", "Read/write capacity mode"): a write costs 1 unit per KB of the larger of the
# item before and after it on the table, and on each GSI: nothing when the item is in the index neither
# before nor after, or when the write changes none of the index's key or projected attributes; one put or
# delete (1 unit per KB of the index entry) when the item enters or leaves the index; an update of the entry
# when a projected attribute changes; a delete plus a put when an index key attribute changes. A write whose
# condition fails still costs the table the existing item's units (and no index anything).

KB = 1024


def number_size(text: str) -> int:
    """A Number's bytes: 1 per two significant digits, plus 1 (leading and trailing zeros do not count)."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    """One DynamoDB JSON value's bytes (without its attribute name)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "B":
        return len(base64.b64decode(content)) if isinstance(content, str) else len(content)
    if kind == "N":
        return number_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) if isinstance(b, str) else len(b) for b in content)
    if kind == "L":  # 3 bytes of overhead, 1 per element
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in content.items())
    raise ValueError(f"not a DynamoDB value type: {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str
    """ALL, KEYS_ONLY or INCLUDE."""
    include: tuple[str, ...] = ()


def index_entry(item: dict[str, Any] | None, table_keys: tuple[str, ...], index: Index) -> dict[str, Any] | None:
    """What `index` holds for `item`: None when the item lacks one of its key attributes (sparse)."""
    if item is None or any(key not in item for key in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    kept = {*table_keys, *index.keys, *(index.include if index.projection == "INCLUDE" else ())}
    return {name: value for name, value in item.items() if name in kept}


def write_units(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    table_keys: tuple[str, ...],
    indexes: list[Index],
    failed: bool = False,
) -> dict[str, int]:
    """Write units of one PutItem/UpdateItem/DeleteItem (after None: a delete), by table and index."""
    if failed:
        return {"table": units(item_size(before))}
    spent = {"table": units(max(item_size(before), item_size(after)))}
    for index in indexes:
        old, new = index_entry(before, table_keys, index), index_entry(after, table_keys, index)
        if old == new:
            cost = 0  # not in the index, or nothing it holds changed
        elif old is None or new is None:
            cost = units(item_size(old if new is None else new))
        elif any(old[key] != new[key] for key in index.keys):
            cost = units(item_size(old)) + units(item_size(new))  # the entry moves: delete and put
        else:
            cost = units(max(item_size(old), item_size(new)))
        spent[index.name] = cost
    return spent


# --- counting AWS requests at moto ------------------------------------------------------------------


class RequestCounter:
    """(service, operation) of every request moto answers while `on`."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self.counts: Counter[tuple[str, str]] = Counter()
        self.user: Counter[tuple[str, str]] = Counter()
        """The user's own requests: their upload's PUT (no app id: not a Swapdrop function's)."""
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
        users = service == "s3" and operation == "PUT" and not _APP_ID.search(environ.get("HTTP_USER_AGENT", ""))
        with self._lock:
            (self.user if users else self.counts)[(service, operation)] += 1


class WriteLedger:
    """Every write moto's DynamoDB applies while `on`: (table, item before, item after, failed), as
    DynamoDB JSON, from moto's backend in this process (the bench's moto server runs here)."""

    def __init__(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        self.writes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, bool]] = []
        self.first_job: list[dict[str, Any]] = []
        """Filled by _ledger_units: the first job's writes, what each changed and cost (for --json)."""
        self.on = False
        self._lock = threading.Lock()
        self._originals = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item")}
        for name, original in self._originals.items():
            setattr(DynamoDBBackend, name, self._wrap(original, deletes=name == "delete_item"))

    def close(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        for name, original in self._originals.items():
            setattr(DynamoDBBackend, name, original)

    def _wrap(self, original: Any, deletes: bool) -> Any:
        ledger = self

        def wrapped(backend: Any, table_name: str, item_or_key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if not ledger.on:
                return original(backend, table_name, item_or_key, *args, **kwargs)
            table = backend.get_table(table_name)
            key = {k: item_or_key[k] for k in (table.hash_key_attr, table.range_key_attr) if k}
            before = _item_json(backend.get_item(table_name, key))
            try:
                result = original(backend, table_name, item_or_key, *args, **kwargs)
            except Exception as error:
                if type(error).__name__ == "ConditionalCheckFailed":  # billed: the existing item's size
                    with ledger._lock:
                        ledger.writes.append((table_name, before, before, True))
                raise
            after = None if deletes else _item_json(backend.get_item(table_name, key))
            with ledger._lock:
                ledger.writes.append((table_name, before, after, False))
            return result

        return wrapped


def _item_json(item: Any) -> dict[str, Any] | None:
    return None if item is None else item.to_json()["Attributes"]


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


def measure(large: bool) -> dict[str, Any]:
    counter = RequestCounter()
    ledger = WriteLedger()
    durations: dict[str, list[float]] = defaultdict(list)
    jobs = JOBS_LARGE if large else JOBS
    pipeline = Pipeline(moto_in_process=True)  # the ledger and the counter hook moto's backend in this process
    try:
        warm = [pipeline.upload("warm")[0]]  # the first invocations of each worker set up clients and caches
        pipeline.wait_settled(warm)
        _timed(pipeline, durations)
        counter.on = ledger.on = True
        keys = []
        for n in range(jobs):
            keys.append(pipeline.upload(f"cost-{n}")[0])
            time.sleep(1.0)
        pipeline.wait_settled(keys)
        counter.on = ledger.on = False
        calls = {k: v for k, v in counter.counts.items() if k not in BENCH_OPERATIONS}
        per_job = {name: list(times) for name, times in durations.items()}
        memory = {name: f.spec.memory for name, f in pipeline.stack.functions.items()}
        write_units = _ledger_units(ledger, pipeline)
        sweep = _sweep(pipeline, durations)
    finally:
        pipeline.close()
        counter.close()
        ledger.close()
    return {
        "jobs": jobs,
        "durations": per_job,
        "calls": calls,
        "user_calls": dict(counter.user),
        "memory": memory,
        "write_units": write_units,
        "first_job_writes": ledger.first_job,
        **sweep,
    }


def _ledger_units(ledger: WriteLedger, pipeline: Pipeline) -> dict[str, int]:
    """Write units of every write the ledger saw, by table ("table") and by index, from the tables' real
    key schemas and projections (as provisioned from the template)."""
    from swapdrop_local.provision import local_client

    info = pipeline.info
    dynamodb = local_client("dynamodb", info["region"], info["endpoint_url"])
    schemas: dict[str, tuple[tuple[str, ...], list[Index]]] = {}
    total: Counter[str] = Counter()
    first_job: list[dict[str, Any]] = []
    for table_name, before, after, failed in ledger.writes:
        if table_name not in schemas:
            schemas[table_name] = _schema(dynamodb.describe_table(TableName=table_name)["Table"])
        table_keys, indexes = schemas[table_name]
        spent = write_units(before, after, table_keys, indexes, failed)
        total.update(spent)
        key = (after or before or {}).get(table_keys[0])
        if not first_job or first_job[0]["key"] == key:  # one job's writes, for --json: what each one cost
            old, new = before or {}, after or {}
            changed = sorted(name for name in {*old, *new} if old.get(name) != new.get(name))
            first_job.append({"key": key, "changed": changed, "units": {k: v for k, v in spent.items() if v}})
    total["writes"] = len(ledger.writes)
    ledger.first_job = first_job
    return dict(total)


def _schema(table: dict[str, Any]) -> tuple[tuple[str, ...], list[Index]]:
    table_keys = tuple(key["AttributeName"] for key in table["KeySchema"])
    indexes = [
        Index(
            name=index["IndexName"],
            keys=tuple(key["AttributeName"] for key in index["KeySchema"]),
            projection=index["Projection"]["ProjectionType"],
            include=tuple(index["Projection"].get("NonKeyAttributes", [])),
        )
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    return table_keys, indexes


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
    png_rss = max(_peak_rss_mb(pid) for pid in submit.worker_pids())
    # The most memory an accepted input takes: image_check decodes a WebP in full up to its decode limit
    # (libwebp cannot just verify; ~16 bytes a pixel), so a flat WebP at that limit (a few KB on S3) is the
    # submit's worst case, not the largest file. Larger WebPs are checked by their chunks, not decoded.
    webp_key = f"inbox/{pipeline.face}/widest.webp"
    pipeline.s3.put_object(Bucket=pipeline.info["bucket"], Key=webp_key, Body=_flat_webp())
    pipeline.wait_settled([webp_key])
    return {
        "sweep_bytes": len(image),
        "sweep_wall": sum(durations["SubmitFunction"][:1]),
        "sweep_cpu": cpu,
        "sweep_png_rss_mb": png_rss,
        "sweep_rss_mb": max(_peak_rss_mb(pid) for pid in submit.worker_pids()),
    }


def _flat_webp() -> bytes:
    """A one-colour WebP of (nearly) image_check.WEBP_DECODE_MAX_PIXELS: tiny to upload, the most to decode."""
    from PIL import Image
    from swapdrop.image_check import WEBP_DECODE_MAX_PIXELS

    side = int(math.sqrt(WEBP_DECODE_MAX_PIXELS)) - 8
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 30, 200)).save(buffer, format="WEBP", quality=50)
    return buffer.getvalue()


# --- money --------------------------------------------------------------------------------------------


def _s3_price(operation: str, price: dict[str, float]) -> float:
    return price["s3_get" if operation in ("GET", "HEAD") else "s3_put"]


def user_costs(result: dict[str, Any]) -> dict[str, float]:
    """Dollars per 1,000 jobs that the user pays whatever Swapdrop does: their own upload's PUT."""
    price = {name: value for name, (value, _) in PRICES.items()}
    spent: dict[str, float] = defaultdict(float)
    for (service, operation), count in result["user_calls"].items():
        spent[service] += count / result["jobs"] * _s3_price(operation, price) * 1000
    return dict(spent)


def costs(result: dict[str, Any]) -> dict[str, float]:
    """Swapdrop's own dollars per 1,000 jobs, per service (the user's upload is in `user_costs`)."""
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
            if operation in ("GetItem", "Query"):  # strong reads of items under 4 KB: one unit each
                by_service[service] += count * price["dynamodb_read_unit"]
        elif service == "sqs":
            if operation != "ReceiveMessage":  # the pollers' receives are per poll, not per job: idle cost
                by_service[service] += count * price["sqs_request"]
        elif service == "s3":
            by_service[service] += count * _s3_price(operation, price)
        elif service == "events":
            by_service[service] += count * price["eventbridge_event"]
        elif service == "secretsmanager":
            by_service[service] += count * price["secrets_api_call"]
    written = sum(n for name, n in result["write_units"].items() if name != "writes") / jobs
    by_service["dynamodb"] = by_service.get("dynamodb", 0.0) + written * price["dynamodb_write_unit"]
    sqs_receives = calls.get(("sqs", "ReceiveMessage"), 0)
    # S3's notification is a SendMessage on Swapdrop's queue (moto makes it in-process, uncounted above).
    by_service["sqs"] = by_service.get("sqs", 0.0) + (min(sqs_receives, 1.0) + 1) * price["sqs_request"]
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
    users = sum(user_costs(result).values())
    shown = ", ".join(f"{s} ${v:.4f}" for s, v in sorted(per_service.items(), key=lambda kv: -kv[1]))
    units = result["write_units"]
    by_index = ", ".join(f"{name} {n / jobs:.1f}" for name, n in units.items() if name != "writes")
    out = [
        Figure(
            f"Swapdrop's AWS cost per 1,000 jobs, arm64 (us-east-1 prices of {PRICES_DATE})",
            total,
            "$",
            target=TARGET_DOLLARS_PER_1000,
            note=shown,
        ),
        Figure(
            "the user's own cost per 1,000 jobs (their upload's PUT), not Swapdrop's",
            users,
            "$",
            note=f"with it: ${total + users:.4f} per 1,000 jobs",
        ),
        Figure(
            "DynamoDB write units per job (exact: table and each index the write changes)",
            sum(n for name, n in units.items() if name != "writes") / jobs,
            "WRU",
            note=f"{units.get('writes', 0) / jobs:.1f} writes/job; {by_index}",
        ),
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
            "submit's peak RSS, worst accepted input (a 4 MP WebP, the largest decoded in full)",
            result["sweep_rss_mb"],
            "MB",
            note=f"{result['sweep_bytes'] / 2**20:.1f} MiB noise PNG: {result['sweep_png_rss_mb']:.0f} MB;"
            f" modelled {sweep}; cheapest that fits x{RSS_MARGIN}: {choice} MB;"
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
            "write_units_per_job": {k: v / result["jobs"] for k, v in result["write_units"].items()},
            "first_job_writes": [{"changed": w["changed"], "units": w["units"]} for w in result["first_job_writes"]],
            "dollars_per_1000": costs(result),
            "user_dollars_per_1000": user_costs(result),
            "sweep": sweep_table(result),
            "sweep_rss_mb": result["sweep_rss_mb"],
            "sweep_png_rss_mb": result["sweep_png_rss_mb"],
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
