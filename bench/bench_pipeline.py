"""Pipeline overhead: what the local stack's plumbing adds to the AWS calls a job needs.

One run, one moto server. First a bare loop on one thread makes, per job, the calls the work
needs (BARE_CALLS: the issue's thirteen, plus the upload and the SQS hand-over) against a bucket,
queue and table of its own on that server. Then the whole stack (`swapdrop local`: S3 notification ->
SQS event source -> SubmitFunction worker -> the emulator with the echo engine and no step delay ->
callbacks over HTTP -> CallbackFunction workers -> DynamoDB, S3, EventBridge) runs:

- latency: one upload a second, upload -> settled (terminal, outbox empty) per job, p50 and p99,
  against the bare loop's per-job time (target: p50 <= 1.5x);
- throughput: every upload at once, first upload -> last job settled, against the bare loop's
  jobs per second on one thread (target: >= 0.5x).

A job's end is its record's own `updatedAt` (its last write), so the bench's polling never adds to
a latency. Per-stage medians (upload -> created, -> submitted, -> terminal, -> settled) from the
records say where the time goes. The machine is shared: read the ratios, not the times.

    python bench/bench_pipeline.py [--large]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, print_table
from swapdrop.jobs import OPEN_KEY

SMALL = {"latency_jobs": 20, "burst": 100, "bare_jobs": 50}
LARGE = {"latency_jobs": 100, "burst": 500, "bare_jobs": 200}
LATENCY_P50_TARGET = 1.5
THROUGHPUT_TARGET = 0.5
SETTLE_DEADLINE_SECONDS = 300.0
INSTANT_CALLBACK_WORKERS = 16
"""The instant upstream's callback threads: enough that a burst's callbacks leave as they happen (the
emulator's default of 4 held a job's fifth callback, often its SUCCESS, behind the other four)."""
PACED_BARE_OFFSET = 0.5
"""Seconds after each latency upload that the paced bare-loop job starts (the pipeline's job has settled)."""
UPLOAD_THREADS = 10
"""The burst's uploaders: as many as the upload client's connection pool holds (botocore's default)."""
POLL_SECONDS = 1.0
"""How often the bench scans the table for settled jobs: rarely, since the scan loads the same moto server
(the figures come from the records' own times, so the interval does not shift them)."""

BARE_CALLS = (
    "s3:PutObject (the upload)",
    "sqs:SendMessage (S3's notification)",
    "sqs:ReceiveMessage",
    "dynamodb:PutItem (create)",
    "dynamodb:UpdateItem (lease)",
    "s3:ListObjectsV2 (face lookup)",
    "dynamodb:GetItem x2 (two reads)",
    "dynamodb:PutItem x4 (SUBMITTED, two progress steps, SUCCESS)",
    "s3:PutObject (the result)",
    "events:PutEvents",
    "dynamodb:UpdateItem (outbox clear)",
    "sqs:DeleteMessage",
)
"""What one job needs at the least, made one after another by the bare loop."""

_deserialize = TypeDeserializer().deserialize


def _png(colour: tuple[int, int, int] = (200, 120, 80), size: int = 64) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- the bare loop -------------------------------------------------------------------------------


class BareLoop:
    """BARE_CALLS for one job at a time, on one thread, with clients made once (as a warm function's are),
    against a bucket and queue of its own and the stack's jobs table."""

    def __init__(self, endpoint: str, region: str, table: str) -> None:
        from swapdrop_local.provision import local_client

        self.s3, self.sqs = local_client("s3", region, endpoint), local_client("sqs", region, endpoint)
        self.dynamodb, self.events = (
            local_client("dynamodb", region, endpoint),
            local_client("events", region, endpoint),
        )
        self.table = table
        self.bucket = f"bare-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue = self.sqs.create_queue(QueueName=f"bare-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.image = _png()
        self.s3.put_object(Bucket=self.bucket, Key="faces/ann.png", Body=self.image)
        self._jobs = 0

    def job(self) -> float:
        """Seconds for one job's BARE_CALLS."""
        s3, sqs, dynamodb, table, bucket = self.s3, self.sqs, self.dynamodb, self.table, self.bucket
        n, self._jobs = self._jobs, self._jobs + 1
        started = time.perf_counter()
        job_id = f"bare-{uuid.uuid4().hex}"
        key = {"jobId": {"S": job_id}}
        s3.put_object(Bucket=bucket, Key=f"inbox/ann/{n}.png", Body=self.image)
        sqs.send_message(QueueUrl=self.queue, MessageBody=json.dumps({"key": f"inbox/ann/{n}.png"}))
        message = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1)["Messages"][0]
        item = {**key, "status": {"S": "PENDING"}, "version": {"N": "1"}, "targetKey": {"S": f"inbox/ann/{n}.png"}}
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(jobId)")
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET leaseUntil = :l, #v = :v",
            ConditionExpression="#v = :old",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":l": {"N": "1"}, ":v": {"N": "2"}, ":old": {"N": "1"}},
        )
        s3.list_objects_v2(Bucket=bucket, Prefix="faces/ann.")
        dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        for version, status in enumerate(("SUBMITTED", "IN_PROGRESS", "IN_PROGRESS", "SUCCESS"), start=3):
            item = {**item, "status": {"S": status}, "version": {"N": str(version)}}
            dynamodb.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="#v = :old",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":old": {"N": str(version - 1)}},
            )
        s3.put_object(Bucket=bucket, Key=f"results/ann/{n}.png", Body=self.image)
        detail = json.dumps({"jobId": job_id})
        self.events.put_events(Entries=[{"Source": "swapdrop.bench", "DetailType": "Job Finished", "Detail": detail}])
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="REMOVE deliveries SET #v = :v",
            ConditionExpression="#v = :old",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": {"N": "7"}, ":old": {"N": "6"}},
        )
        sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return time.perf_counter() - started


def bare_loop(endpoint: str, region: str, table: str, jobs: int) -> list[float]:
    """Seconds per job for `jobs` jobs made back to back (the throughput comparison)."""
    loop = BareLoop(endpoint, region, table)
    return [loop.job() for _ in range(jobs)]


# --- the pipeline --------------------------------------------------------------------------------


class Pipeline:
    """A local stack with the echo engine and no step delay, and what its job records say."""

    def __init__(self, log_file: Path | None = None, moto_in_process: bool = False) -> None:
        from swapdrop_emulator.engines import echo_engine
        from swapdrop_local.provision import local_client
        from swapdrop_local.stack import RunningStack, StackOptions

        options = StackOptions(
            api_key="bench-key",
            reconcile_interval=0,  # callbacks only: the reconciler is not part of the happy path
            emulator={
                "engine": echo_engine,
                "step_delay": 0.0,
                "concurrency": 64,
                "queue_size": 1000,
                "callback_workers": INSTANT_CALLBACK_WORKERS,
            },
            function_environment={"POWERTOOLS_LOG_LEVEL": "WARNING"},
            log_file=log_file,
            moto_in_process=moto_in_process,
        )
        self.stack = RunningStack(options).start()
        info = self.stack.info()
        self.info = info
        self.s3 = local_client("s3", info["region"], info["endpoint_url"])
        self.dynamodb = local_client("dynamodb", info["region"], info["endpoint_url"])
        self.image = _png()
        self.face = f"bench{uuid.uuid4().hex[:6]}"
        self.s3.put_object(Bucket=info["bucket"], Key=f"faces/{self.face}.png", Body=_png((90, 160, 210)))

    def close(self) -> None:
        self.stack.stop()

    def upload(self, name: str) -> tuple[str, float]:
        key = f"inbox/{self.face}/{name}.png"
        started = time.time()
        self.s3.put_object(Bucket=self.info["bucket"], Key=key, Body=self.image)
        return key, started

    def records(self, projection: str | None = None) -> dict[str, dict[str, Any]]:
        items, start = [], None
        while True:
            kwargs: dict[str, Any] = {"TableName": self.info["jobs_table"], "ConsistentRead": True}
            if projection:
                kwargs["ProjectionExpression"] = projection
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.dynamodb.scan(**kwargs)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        records = [{k: _deserialize(v) for k, v in item.items()} for item in items]
        return {r["targetKey"]: r for r in records if "targetKey" in r}

    def wait_settled(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The jobs' records once each is settled: terminal, with nothing left for the reconciler (no
        OpenJobs key: `Job.needs_attention`). Polling reads only those two attributes: whole records from
        the same moto server cost it more CPU than the jobs themselves (a scan of 200 records: 250 ms)."""
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        while True:
            seen = self.records(projection=f"targetKey, {OPEN_KEY}")
            waiting = sum(1 for key in keys if key not in seen or OPEN_KEY in seen[key])
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{waiting} of {len(keys)} jobs not settled in time")
            time.sleep(POLL_SECONDS)
        records = self.records()
        return {key: records[key] for key in keys}


def stages(uploads: dict[str, float], records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Median seconds from the upload to each milestone a record carries."""
    marks: dict[str, list[float]] = {"created": [], "submitted": [], "terminal": [], "settled": []}
    for key, started in uploads.items():
        record = records[key]
        marks["created"].append(_at(record["createdAt"]) - started)
        history = record.get("history") or []
        for entry in history:
            if entry.get("to") == "SUBMITTED":
                marks["submitted"].append(_at(entry["at"]) - started)
            if entry.get("to") in ("SUCCESS", "FAILURE", "REJECTED", "CANCELLED"):
                marks["terminal"].append(_at(entry["at"]) - started)
        marks["settled"].append(_at(record["updatedAt"]) - started)
    return {name: statistics.median(values) for name, values in marks.items() if values}


def measure(large: bool, log_file: Path | None = None) -> dict[str, Any]:
    sizes = LARGE if large else SMALL
    pipeline = Pipeline(log_file)
    try:
        info = pipeline.info
        bare = bare_loop(info["endpoint_url"], info["region"], info["jobs_table"], sizes["bare_jobs"])
        # One job first, not counted: a worker's first invocation creates its clients (a cold path, which
        # bench_cold_start measures); at 1 job/s the later jobs still meet a few workers' first calls.
        pipeline.wait_settled([pipeline.upload("warm-up")[0]])
        # Latency: one upload a second, and half a second later (the job long settled) one bare-loop job,
        # so both meet the same machine: one job a second leaves every process idle in between, and an idle
        # process's first work after a pause runs slower than the same work back to back.
        paced = BareLoop(info["endpoint_url"], info["region"], info["jobs_table"])
        paced.job()  # its clients' first calls, not counted
        uploads: dict[str, float] = {}
        paced_bare: list[float] = []
        for n in range(sizes["latency_jobs"]):
            tick = time.monotonic()
            key, started = pipeline.upload(f"lat-{n}")
            uploads[key] = started
            time.sleep(max(0.0, PACED_BARE_OFFSET - (time.monotonic() - tick)))
            paced_bare.append(paced.job())
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        records = pipeline.wait_settled(list(uploads))
        statuses = {r["status"] for r in records.values()}
        latencies = [_at(records[k]["updatedAt"]) - uploads[k] for k in uploads]
        latency_stages = stages(uploads, records)
        # Throughput: every upload at once.
        burst: dict[str, float] = {}
        lock = threading.Lock()

        def put(n: int) -> None:
            key, started = pipeline.upload(f"burst-{n}")
            with lock:
                burst[key] = started

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            list(pool.map(put, range(sizes["burst"])))
        burst_records = pipeline.wait_settled(list(burst))
        statuses |= {r["status"] for r in burst_records.values()}
        reasons = sorted({r.get("failReason") or "" for r in [*records.values(), *burst_records.values()]} - {""})
        first = min(burst.values())
        last = max(_at(r["updatedAt"]) for r in burst_records.values())
        burst_stages = stages(burst, burst_records)
    finally:
        pipeline.close()
    return {
        "sizes": sizes,
        "statuses": sorted(statuses),
        "fail_reasons": reasons,
        "bare_p50": statistics.median(bare),
        "bare_paced_p50": statistics.median(paced_bare),
        "bare_rate": len(bare) / sum(bare),
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "latency_stages": latency_stages,
        "rate": len(burst) / (last - first),
        "drain": last - first,
        "burst_stages": burst_stages,
    }


def figures(large: bool = False) -> list[Figure]:
    result = measure(large)
    if result["statuses"] != ["SUCCESS"]:
        raise RuntimeError(f"every bench job should succeed: {result['statuses']} {result['fail_reasons']}")
    sizes = result["sizes"]
    stages_text = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result["latency_stages"].items())
    return [
        Figure(
            f"pipeline latency p50, upload -> settled ({sizes['latency_jobs']} jobs at 1/s)",
            result["p50"] * 1000,
            "ms",
            "bare loop per job, also one a second",
            result["bare_paced_p50"] * 1000,
            target=LATENCY_P50_TARGET,
            note=f"medians from upload: {stages_text}",
        ),
        Figure(
            "pipeline latency p99, upload -> settled",
            result["p99"] * 1000,
            "ms",
            "bare loop per job, also one a second",
            result["bare_paced_p50"] * 1000,
        ),
        Figure(
            "pipeline latency p50 against the bare loop back to back (not a target: see bench_pipeline)",
            result["p50"] * 1000,
            "ms",
            "bare loop per job, back to back",
            result["bare_p50"] * 1000,
        ),
        Figure(
            f"pipeline throughput, {sizes['burst']} uploads at once",
            result["rate"],
            "jobs/s",
            "bare loop, one thread",
            result["bare_rate"],
            target=THROUGHPUT_TARGET,
            higher_is_better=True,
            note=f"drained in {result['drain']:.1f} s",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="100 jobs at 1/s and a burst of 500")
    parser.add_argument("--json", action="store_true", help="print the raw measurements too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    if args.json:
        result = measure(args.large)
        print(json.dumps(result, indent=2, default=str))
        return
    print_table(figures(args.large))


if __name__ == "__main__":
    main()
