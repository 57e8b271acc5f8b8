"""The reconciler's cost follows open jobs, not history: the sparse OpenJobsByShard index, side by side
with scanning the table, on moto's server with the template's table.

Fills the table with finished jobs and open ones (real Job records, a realistic history and outbox, through
the real DynamoJobStore), then per reconciler run: the items read each way, the bytes of what the index
returns (INCLUDE: what the reconciler decides on) against the whole items (what the unsharded index's ALL
projection returned), and how evenly the open jobs, whose every progress write the index takes too, spread
over its 16 partitions (the unsharded index had one). Job ids are fixed, so the spread is the same every run.

    python bench/bench_open_jobs_index.py [--large]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, print_table

SMALL = {"finished": 3000, "open": 320}
LARGE = {"finished": 20000, "open": 2000}
ROUNDS = 5
SPREAD_TARGET = 2.0
"""The busiest partition's share of open jobs, against a fair share (1/16): at most twice it."""


def job(status: Any, index: int) -> Any:
    from swapdrop.jobs import Job, Transition, iso, utc_now

    created = utc_now() - timedelta(minutes=30)
    stamp = iso(created + timedelta(seconds=index % 600))
    job_id = uuid.uuid5(uuid.NAMESPACE_URL, f"swapdrop-bench/{index}").hex
    history = (
        Transition(from_="PENDING", to="SUBMITTED", at=stamp, via="submit"),
        Transition(from_="SUBMITTED", to="IN_PROGRESS", at=stamp, via="callback"),
    )
    return Job(
        jobId=job_id,
        status=status,
        bucket="swapdrop-media-bucket",
        targetKey=f"inbox/alice/holidays 2024/beach photo {index}.jpg",
        targetVersionId="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
        targetSequencer="00670F8E19D1F5E2A1",
        targetEventTime=stamp,
        face="alice",
        sourceKey="faces/alice.jpg",
        createdAt=iso(created),
        updatedAt=stamp,
        taskId=str(10**15 + index),
        progress=45,
        attempts=1,
        history=history,
        metadata={"album": "holidays", "camera": "phone"},
    )


def _size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, near enough: attribute names plus their JSON values."""
    return sum(len(name) + len(json.dumps(value, default=str)) for name, value in item.items())


def measure(large: bool) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer
    from swapdrop.job_store import DynamoJobStore
    from swapdrop.jobs import OPEN_KEY, OPEN_SHARDS, JobStatus, iso, utc_now
    from swapdrop_local.provision import local_table, provision

    sizes = LARGE if large else SMALL
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # A name of its own: bench/run.py runs every bench in one process, and moto's state is per process.
        stack_name = f"bench-open-jobs-{uuid.uuid4().hex[:8]}"
        stack = provision(endpoint, "us-east-1", callback_base_url="http://127.0.0.1:9", stack_name=stack_name)
        table = local_table(stack.jobs_table, "us-east-1", endpoint)
        open_items = []
        with table.batch_writer() as batch:
            for i in range(sizes["finished"]):
                batch.put_item(Item=job(JobStatus.FAILURE, i).to_item())
            for i in range(sizes["open"]):
                item = job(JobStatus.IN_PROGRESS, sizes["finished"] + i).to_item()
                open_items.append(item)
                batch.put_item(Item=item)
        store = DynamoJobStore(table, "OpenJobsByShard", "OpenJobs")
        cutoff = iso(utc_now())
        queries = Counter[str]()
        original_query = table.query

        def counting_query(**request: Any) -> Any:
            queries[request["IndexName"]] += 1
            return original_query(**request)

        def via_index() -> tuple[int, int]:
            table.query = counting_query
            try:
                read = list(store.open_jobs(updated_before=cutoff))
            finally:
                table.query = original_query
            return len(read), 0

        def via_scan() -> tuple[int, int]:
            read, query = 0, {}
            while True:
                page = table.scan(**query)
                read += len(page["Items"])
                if "LastEvaluatedKey" not in page:
                    return read, 0
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        results = {}
        for name, fn in (("index", via_index), ("scan", via_scan)):
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                items, _ = fn()
                times.append(time.perf_counter() - started)
            results[name] = (items, statistics.median(times))
        projected = table.query(
            IndexName="OpenJobsByShard",
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": OPEN_KEY},
            ExpressionAttributeValues={":v": open_items[0][OPEN_KEY]},
        )["Items"]
    finally:
        server.stop()
    per_shard = Counter(item[OPEN_KEY] for item in open_items)
    return {
        "sizes": sizes,
        "index_items": results["index"][0],
        "scan_items": results["scan"][0],
        "index_seconds": results["index"][1],
        "scan_seconds": results["scan"][1],
        "queries_per_run": {name: count // ROUNDS for name, count in queries.items()},
        "projected_bytes": statistics.mean(_size(item) for item in projected),
        "whole_bytes": statistics.mean(_size(item) for item in open_items),
        "busiest_share": max(per_shard.values()) / len(open_items),
        "fair_share": 1 / OPEN_SHARDS,
        "shards_used": len(per_shard),
    }


def figures(large: bool = False) -> list[Figure]:
    result = measure(large)
    sizes = result["sizes"]
    if result["index_items"] != sizes["open"]:
        raise RuntimeError(f"the index must hold exactly the {sizes['open']} open jobs, not {result['index_items']}")
    queries = ", ".join(f"{name} x{count}" for name, count in sorted(result["queries_per_run"].items()))
    speed = result["scan_seconds"] / result["index_seconds"]
    return [
        Figure(
            f"OpenJobs: items read per reconciler run ({sizes['open']} open of {sizes['open'] + sizes['finished']})",
            result["index_items"],
            "items",
            "table scan",
            result["scan_items"],
            note=f"exactly the open jobs; queries {queries}; {speed:.1f}x faster than a scan",
        ),
        Figure(
            "OpenJobs: bytes per index item (INCLUDE)",
            result["projected_bytes"],
            "B",
            "whole item (ALL)",
            result["whole_bytes"],
            note="what each run reads and each progress write copies to the index",
        ),
        Figure(
            "OpenJobs: busiest partition's share of open jobs",
            result["busiest_share"],
            "",
            "fair share of 16",
            result["fair_share"],
            target=SPREAD_TARGET,
            note=f"{result['shards_used']} of 16 partitions used; the unsharded index: one partition, share 1",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="20,000 finished jobs and 2,000 open ones")
    args = parser.parse_args()
    print_table(figures(args.large))


if __name__ == "__main__":
    main()
