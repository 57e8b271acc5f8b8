"""The reconciler's cost follows open jobs, not history: the sparse OpenJobs index,
side by side with scanning the table, on moto's server with the template's table.

Fills the table with finished jobs and a few open ones (real Job records through the
real DynamoJobStore), then counts the items each way reads and times both.
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid

from moto.server import ThreadedMotoServer
from swapdrop.job_store import DynamoJobStore
from swapdrop.jobs import Job, JobStatus, iso, utc_now
from swapdrop_local.provision import local_table, provision

FINISHED = 3000
OPEN = 30
ROUNDS = 5


def job(status: JobStatus, index: int) -> Job:
    stamp = iso(utc_now())
    return Job(
        jobId=uuid.uuid4().hex,
        status=status,
        bucket="b",
        targetKey=f"inbox/a/{index}.jpg",
        createdAt=stamp,
        updatedAt=stamp,
        taskId=str(10**15 + index),
    )


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        stack = provision(endpoint, "us-east-1", callback_base_url="http://127.0.0.1:9")
        table = local_table(stack.jobs_table, "us-east-1", endpoint)
        with table.batch_writer() as batch:
            for i in range(FINISHED):
                batch.put_item(Item=job(JobStatus.FAILURE, i).to_item())
            for i in range(OPEN):
                batch.put_item(Item=job(JobStatus.SUBMITTED, FINISHED + i).to_item())
        store = DynamoJobStore(table, "OpenJobs")
        cutoff = iso(utc_now())

        def via_index() -> int:
            return sum(1 for _ in store.open_jobs(updated_before=cutoff))

        def via_scan() -> int:
            read, query = 0, {}
            while True:
                page = table.scan(**query)
                read += len(page["Items"])
                if "LastEvaluatedKey" not in page:
                    return read
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        results = {}
        for name, fn in (("OpenJobs index", via_index), ("table scan", via_scan)):
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                items = fn()
                times.append(time.perf_counter() - started)
            results[name] = (items, statistics.median(times))
        print(f"{FINISHED} finished jobs, {OPEN} open; items read and median time of {ROUNDS}:")
        for name, (items, seconds) in results.items():
            print(f"  {name:<15} {items:6d} items  {seconds * 1000:8.1f} ms")
        (index_items, index_time), (scan_items, scan_time) = results.values()
        assert index_items == OPEN, f"the index must hold exactly the open jobs, not {index_items}"
        print(f"  ratio (scan / index): items {scan_items / index_items:.0f}x, time {scan_time / index_time:.1f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
