"""GET /jobs and GET /jobs/{id} cost items read, not table size: each list filter's page through the
real JobsService (list GSIs, shard merge, cursor) side by side with what a Scan needs for the same page.

On moto in-process (mock_aws, no sockets): the Jobs table exactly as template.yaml declares it,
N jobs written through the real DynamoJobStore. Items read are DynamoDB's own ScannedCount, summed
by a botocore hook over every Query a page makes (and checked against the ListItemsRead metric).
Ratios only: moto's speed says nothing about DynamoDB's.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr
from botocore.config import Config
from moto import mock_aws
from swapdrop.job_store import DynamoJobStore
from swapdrop.jobs import LIST_SORT_KEY, Job, JobStatus, iso
from swapdrop.jobs_api.caller import Caller
from swapdrop.jobs_api.cursor import CursorSigner
from swapdrop.jobs_api.service import ApiPolicy, JobsService
from swapdrop.media_store import S3MediaStore
from swapdrop.observability import metrics
from swapdrop_local.template import Resolver, load_template, resources_of_type

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure

JOBS = 5000
FACES = [f"face-{n:02d}" for n in range(20)]
OWNERS = ["user-a", "user-b", "user-c"]
OWNER_SHARE = 0.1
LIST_TARGET = 0.05
"""A page reads at most 5 % of what a Scan reads for it."""
"""Jobs created by JWT callers (the rest by an IAM operator or the drop folder)."""
STATUS_WEIGHTS = {
    JobStatus.SUCCESS: 60,
    JobStatus.FAILURE: 15,
    JobStatus.REJECTED: 5,
    JobStatus.CANCELLED: 3,
    JobStatus.IN_PROGRESS: 5,
    JobStatus.SUBMITTED: 5,
    JobStatus.PENDING: 4,
    JobStatus.AWAITING_UPLOAD: 3,
}
LIMITS = (20, 100)
PAGES = 3
WAIT = 20
REGION = "us-east-1"
BUCKET = "bench-media"
START = datetime(2024, 10, 1, tzinfo=UTC)


@dataclass
class Reads:
    """What DynamoDB was asked and read, from botocore's after-call events."""

    calls: Counter[str]
    scanned: int = 0

    def hook(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] += 1
        self.scanned += int(parsed.get("ScannedCount", 0))

    def take(self) -> tuple[int, int, int]:
        """(items read, queries, get_items) since the last take."""
        taken = (self.scanned, self.calls["Query"], self.calls["GetItem"])
        self.scanned, self.calls = 0, Counter()
        return taken


@dataclass(frozen=True)
class Case:
    name: str
    caller: Caller
    face: str | None = None
    status: JobStatus | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, job: Job) -> bool:
        created = datetime.fromisoformat(job.createdAt)
        return (
            (self.caller.is_operator or (job.requesterKind == "jwt" and job.requestedBy == self.caller.id))
            and (self.face is None or job.face == self.face)
            and (self.status is None or job.status is self.status)
            and (self.since is None or created >= self.since)
            and (self.until is None or created < self.until)
        )


def jobs_table() -> Any:
    """The JobsTable resource of template.yaml: its keys and every GSI, as declared."""
    template = load_template()
    spec = resources_of_type(template, "AWS::DynamoDB::Table")["JobsTable"]
    properties = Resolver(template, region=REGION, stack_name="bench").resolve(spec["Properties"])
    return boto3.resource("dynamodb", region_name=REGION).create_table(
        TableName="bench-jobs",
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        BillingMode="PAY_PER_REQUEST",
    )


def make_jobs(rng: random.Random) -> list[Job]:
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
    jobs = []
    for n in range(JOBS):
        status = rng.choices(statuses, weights)[0]
        created = iso(START + timedelta(minutes=n, seconds=rng.randrange(60)))
        owner = rng.choice(OWNERS) if rng.random() < OWNER_SHARE else None
        face = rng.choice(FACES)
        job_id = f"{rng.getrandbits(128):032x}"
        jobs.append(
            Job(
                jobId=job_id,
                status=status,
                bucket=BUCKET,
                targetKey=f"uploads/{job_id}/target.jpg",
                createdAt=created,
                updatedAt=created,
                face=face,
                origin="api",
                requestedBy=owner or "arn:aws:iam::123456789012:user/ops",
                requesterKind="jwt" if owner else "iam",
                finishedAt=created if status.is_terminal else None,
                resultKey=f"results/{face}/jobs/{job_id}.png" if status is JobStatus.SUCCESS else None,
            )
        )
    rng.shuffle(jobs)  # written in no particular order, as traffic would
    return jobs


def scan_page(table: Any, case: Case, reads: Reads) -> tuple[list[str], int]:
    """The same pages by Scan + filter: a Scan has no order, so every item must be read to know
    which ones are newest. Answers the matches' sort keys, newest first, and the items read."""
    terms = []
    if not case.caller.is_operator:
        terms += [Attr("requesterKind").eq("jwt"), Attr("requestedBy").eq(case.caller.id)]
    if case.face is not None:
        terms.append(Attr("face").eq(case.face))
    if case.status is not None:
        terms.append(Attr("status").eq(case.status.value))
    if case.since is not None:
        terms.append(Attr(LIST_SORT_KEY).gte(iso(case.since)))
    if case.until is not None:
        terms.append(Attr(LIST_SORT_KEY).lt(iso(case.until)))
    # The projection only trims the answer: a Scan reads (and is billed for) every item either way.
    request: dict[str, Any] = {"ProjectionExpression": LIST_SORT_KEY}
    if terms:
        request["FilterExpression"] = functools.reduce(operator.and_, terms)
    found: list[str] = []
    reads.take()
    while True:
        page = table.scan(**request)
        found += [item[LIST_SORT_KEY] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    read, _, _ = reads.take()
    return sorted(found, reverse=True), read


def scan_until_matches(scan_order: list[Job], case: Case, limit: int) -> int:
    """A scan's best case: items read, in the table's own order, until any `limit` matches (unordered)."""
    seen = 0
    for position, job in enumerate(scan_order, 1):
        seen += case.matches(job)
        if seen == limit:
            return position
    return len(scan_order)


def run(say: Callable[..., None] = print) -> list[tuple[str, int, int, int]]:
    """Every case's pages, printed through `say`; per case and limit: (name, limit, most read, first page size)."""
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SwapdropBench")
    began = time.monotonic()
    with mock_aws():
        table = jobs_table()
        reads = Reads(Counter())
        table.meta.client.meta.events.register("after-call.dynamodb", reads.hook)
        s3 = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket=BUCKET)
        store = DynamoJobStore(table, "OpenJobs")
        jobs = make_jobs(random.Random(7))  # noqa: S311 - reproducible data, not secrets
        for chunk in itertools.batched(jobs, 500, strict=False):
            store.create_many(list(chunk))
        by_id = {job.jobId: job for job in jobs}
        scan_order = [by_id[item["jobId"]] for item in _scan_all(table)]
        reads.take()
        clock, during_wait = [0.0], []

        def sleep(seconds: float) -> None:
            clock[0] += seconds
            for hook in during_wait:
                hook()

        service = JobsService(
            jobs=store,
            media=S3MediaStore(s3, BUCKET),
            sender=None,  # type: ignore[arg-type]  # list and get send nothing
            finisher=None,  # type: ignore[arg-type]
            cancel_upstream=lambda _task: None,
            cursors=CursorSigner(lambda: "bench-secret"),
            api_key_set=lambda: True,
            policy=ApiPolicy(bucket=BUCKET, max_image_bytes=10 << 20),
            sleep=sleep,
            monotonic=lambda: clock[0],
        )
        ops = Caller("iam", "arn:aws:iam::123456789012:user/ops")
        owner = Caller("jwt", OWNERS[0])
        window = (START + timedelta(days=1), START + timedelta(days=1, hours=6))
        cases = [
            Case("none (JobsByTime)", ops),
            Case("status=FAILURE (JobsByStatus)", ops, status=JobStatus.FAILURE),
            Case("status=CANCELLED (JobsByStatus)", ops, status=JobStatus.CANCELLED),
            Case("face (JobsByFace)", ops, face=FACES[3]),
            Case("face+status=FAILURE (face, filter)", ops, face=FACES[3], status=JobStatus.FAILURE),
            Case("face+status=CANCELLED (face, filter)", ops, face=FACES[3], status=JobStatus.CANCELLED),
            Case("owner (JWT: JobsByOwner)", owner),
            Case("owner+status=FAILURE (owner, filter)", owner, status=JobStatus.FAILURE),
            Case("since/until 6 h (JobsByTime)", ops, since=window[0], until=window[1]),
        ]
        say(
            f"{JOBS:,} jobs, {len(FACES)} faces, {len(STATUS_WEIGHTS)} statuses, {len(OWNERS)} JWT owners "
            f"({OWNER_SHARE:.0%} of jobs); moto in-process"
        )
        say(
            "items read per page (DynamoDB ScannedCount summed over the page's queries) for pages 1-3, "
            "against a Scan for the same page\n(a Scan has no order: newest-first needs all "
            f"{JOBS:,} items; 'scan any' = its best case, the first `limit` matches in no order)"
        )
        header = (
            f"{'filter':<38}{'match':>6}{'limit':>6}{'got':>5}{'p1':>6}{'p2':>6}{'p3':>6}"
            f"{'queries':>8}{'scan':>6}{'scan/p1':>9}{'scan any':>9}"
        )
        say(header)
        say("-" * len(header))
        firsts: list[tuple[str, int, int, int]] = []
        for case in cases:
            matching = sum(1 for job in jobs if case.matches(job))
            expected, scan_reads = scan_page(table, case, reads)
            assert len(expected) == matching, f"{case.name}: the scan found {len(expected)} of {matching}"
            for limit in LIMITS:
                cursor, page_reads, queries, got, first = None, [], 0, [], 0
                for _ in range(PAGES):
                    metrics.clear_metrics()
                    page = service.list(case.caller, case.face, case.status, case.since, case.until, limit, cursor)
                    read, asked, _ = reads.take()
                    recorded = int(sum(metrics.metric_set.get("ListItemsRead", {}).get("Value", [0])))
                    assert recorded == read, f"ListItemsRead says {recorded}, DynamoDB read {read}"
                    page_reads.append(read)
                    queries = max(queries, asked)
                    got += [f"{job.createdAt}#{job.jobId}" for job in page.jobs]
                    first = first or len(page.jobs)
                    cursor = page.cursor
                    if cursor is None:
                        break
                assert got == expected[: len(got)], f"{case.name}: the pages are not the newest matches in order"
                assert len(got) == min(matching, limit * PAGES), f"{case.name}: {len(got)} of {matching} listed"
                shown = [str(r) for r in page_reads] + ["-"] * (PAGES - len(page_reads))
                say(
                    f"{case.name:<38}{matching:>6}{limit:>6}{first:>5}{shown[0]:>6}{shown[1]:>6}{shown[2]:>6}"
                    f"{queries:>8}{scan_reads:>6}{scan_reads / page_reads[0]:>8.0f}x"
                    f"{scan_until_matches(scan_order, case, limit):>9}"
                )
                firsts.append((case.name, limit, max(page_reads), first))
        metrics.clear_metrics()

        say()
        say("GET /jobs/{id}: Jobs table reads (a result adds one S3 HeadObject; its URL is signed locally)")
        done = next(job for job in jobs if job.status is JobStatus.SUCCESS)
        s3.put_object(Bucket=BUCKET, Key=done.resultKey or "", Body=b"png", ContentType="image/png")
        running = next(job for job in jobs if job.status is JobStatus.IN_PROGRESS)
        s3_calls: Counter[str] = Counter()
        s3.meta.events.register("after-call.s3", lambda model, **_: s3_calls.update([model.name]))

        # The job's end comes from elsewhere (a callback): its own client, so its reads are not counted.
        callback = DynamoJobStore(boto3.resource("dynamodb", region_name=REGION).Table(table.name), "OpenJobs")

        def measure(label: str, job_id: str, wait: int, finish_at: float | None = None) -> None:
            clock[0] = 0.0
            during_wait.clear()
            if finish_at is not None:
                during_wait.append(lambda: clock[0] >= finish_at and _fail(callback, job_id))
            reads.take()
            s3_calls.clear()
            view = service.get(ops, job_id, wait)
            _, _, gets = reads.take()
            rate = f"{gets / clock[0]:.2f}/s waited" if clock[0] else "-"
            s3_text = ", ".join(f"{n} {name}" for name, n in sorted(s3_calls.items())) or "no S3 call"
            say(f"  {label:<40}{gets:3d} GetItem  {rate:<16}{s3_text:<16} -> {view.status.value}")

        measure("finished job", done.jobId, 0)
        measure("running job", running.jobId, 0)
        measure(f"running job, ?wait={WAIT}, still running", running.jobId, WAIT)
        measure(f"running job, ?wait={WAIT}, fails at 5 s", running.jobId, WAIT, finish_at=5)

    say()
    worst = max(firsts, key=lambda row: row[2] / max(row[3], 1))
    say(
        f"every page read at most {max(row[2] for row in firsts)} items (a scan: {JOBS:,}); most read per item "
        f"returned: {worst[2] / max(worst[3], 1):.1f} ({worst[0]}, limit {worst[1]}); {time.monotonic() - began:.0f} s"
    )
    return firsts


def figures(large: bool) -> list[Figure]:
    firsts = run(say=lambda *_, **__: None)
    most = max(row[2] for row in firsts)
    worst = max(firsts, key=lambda row: row[2] / max(row[3], 1))
    return [
        Figure(
            "GET /jobs items read per page, worst filter",
            most,
            "items",
            "a Scan (newest first)",
            JOBS,
            target=LIST_TARGET,
            note=f"{JOBS:,} jobs, moto",
        ),
        Figure(
            "GET /jobs items read per job listed, worst",
            worst[2] / max(worst[3], 1),
            "items",
            note=f"{worst[0]}, limit {worst[1]}",
        ),
    ]


def main() -> None:
    run()


def _scan_all(table: Any) -> list[dict[str, Any]]:
    items, request = [], {"ProjectionExpression": "jobId"}
    while True:
        page = table.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _fail(store: DynamoJobStore, job_id: str) -> None:
    """The job ends (a callback would do this) while a GET waits on it."""
    job = store.get(job_id)
    assert job is not None
    if not job.status.is_terminal:
        store.replace(dataclasses.replace(job, status=JobStatus.FAILURE, version=job.version + 1), job.version)


if __name__ == "__main__":
    main()
