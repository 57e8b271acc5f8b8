"""jobs: the record, its DynamoDB item, its sparse-index flag and its public view."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from swapdrop import state_machine as sm
from swapdrop.jobs import COPY, MAX_HISTORY, Job, JobStatus, Transition, iso, open_shard, parse_iso
from swapdrop.result_download import DownloadedImage
from swapdrop.upstream import Accepted

from .builders import TASK_ID, make_job, snap, upload
from .conftest import World

FULL = make_job(
    jobId="j-full",
    status=JobStatus.SUCCESS,
    sourceKey="faces/alice.jpg",
    taskId="1729072764329123",
    progress=100,
    imageUrl="https://cdn.example/r.png",
    resultKey="results/alice/trip/beach.png",
    failReason=None,
    attempts=2,
    finishedAt="2024-10-16T10:00:00.000Z",
    queuePosition=3,
    lastError="earlier hiccup",
    leaseUntil=1729072900,
    resultCopyAttempts=1,
    resultCopyError=None,
    eventPending=True,
    version=7,
)


@pytest.mark.parametrize(
    "job",
    [
        make_job(),
        FULL,
        make_job(status=JobStatus.REJECTED, face=None, failReason="bad key", eventPending=False),
    ],
)
def test_item_round_trip(job: Job) -> None:
    assert Job.from_item(job.to_item()) == job


def test_from_item_accepts_dynamodb_decimals_and_keeps_unknown_attributes() -> None:
    item = FULL.to_item() | {"someFutureAttribute": "x"}
    for name in ("version", "progress", "attempts", "queuePosition", "leaseUntil", "resultCopyAttempts"):
        item[name] = Decimal(item[name])
    job = Job.from_item(item)
    assert job == dataclasses.replace(FULL, extra={"someFutureAttribute": "x"})
    assert job.to_item()["someFutureAttribute"] == "x"
    assert type(job.version) is int
    assert type(job.leaseUntil) is int
    assert job.status is JobStatus.SUCCESS


def test_item_omits_absent_attributes_and_a_false_outbox_flag() -> None:
    item = make_job(status=JobStatus.FAILURE, failReason="x").to_item()
    assert "taskId" not in item
    assert "imageUrl" not in item
    assert "eventPending" not in item
    assert item["status"] == "FAILURE"


@pytest.mark.parametrize(
    ("job", "open_"),
    [
        (make_job(status=JobStatus.PENDING), True),
        (make_job(status=JobStatus.SUBMITTED, taskId="t"), True),
        (make_job(status=JobStatus.IN_PROGRESS, taskId="t"), True),
        (make_job(status=JobStatus.SUCCESS, imageUrl="https://x/r.png"), True),  # result not yet copied
        (make_job(status=JobStatus.SUCCESS, imageUrl="https://x/r.png", resultKey="results/a/b.png"), False),
        (make_job(status=JobStatus.SUCCESS, imageUrl="https://x/r.png", resultCopyError="gave up"), False),
        (make_job(status=JobStatus.SUCCESS, imageUrl="https://x/r.png", resultKey="r", eventPending=True), True),
        (make_job(status=JobStatus.FAILURE, failReason="x"), False),
        (make_job(status=JobStatus.FAILURE, failReason="x", eventPending=True), True),
        (make_job(status=JobStatus.REJECTED, failReason="x"), False),
        (make_job(status=JobStatus.REJECTED, failReason="x", eventPending=True), True),
    ],
)
def test_open_flag_is_present_exactly_when_the_job_needs_attention(job: Job, open_: bool) -> None:
    assert job.needs_attention is open_
    item = job.to_item()
    assert (item.get("openShard") == open_shard(job.jobId)) is open_
    assert ("openShard" in item) is open_
    assert "openFlag" not in item  # the unsharded index's key: read until it drains, never written


def test_public_view_hides_internals() -> None:
    view = FULL.public_view()
    for hidden in ("version", "leaseUntil", "eventPending", "openFlag", "openShard"):
        assert hidden not in view
    assert view["jobId"] == "j-full"
    assert view["status"] == "SUCCESS"
    assert view["resultKey"] == "results/alice/trip/beach.png"
    assert view["taskId"] == "1729072764329123"


def test_iso_is_utc_with_milliseconds_and_sorts_like_time() -> None:
    moment = datetime(2024, 10, 16, 9, 59, 21, 123_456, tzinfo=UTC)
    assert iso(moment) == "2024-10-16T09:59:21.123Z"
    assert parse_iso(iso(moment)) == moment.replace(microsecond=123_000)
    assert iso(datetime(2024, 10, 16, 9, 59, 3, tzinfo=UTC)) < iso(datetime(2024, 10, 16, 9, 59, 21, tzinfo=UTC))


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("PENDING", False),
        ("SUBMITTED", False),
        ("IN_PROGRESS", False),
        ("SUCCESS", True),
        ("FAILURE", True),
        ("REJECTED", True),
        ("CANCELLED", True),
    ],
)
def test_terminal_statuses(status: str, terminal: bool) -> None:
    assert JobStatus(status).is_terminal is terminal


def test_status_ranks_order_the_life_of_a_job() -> None:
    ranks = [JobStatus(s).rank for s in ("PENDING", "SUBMITTED", "IN_PROGRESS", "SUCCESS")]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 4
    assert JobStatus.FAILURE.rank == JobStatus.REJECTED.rank == JobStatus.SUCCESS.rank == JobStatus.CANCELLED.rank


# --- what another code version wrote survives every update (issue 6, item 7) -----------------------

FOREIGN = {"ownerId": "user-7", "ownerStatusShard": "user-7#OPEN#3", "notes": {"a": [1, 2]}}


def _with_foreign(world: World, job: Job) -> None:
    world.jobs.put(job)
    world.jobs.items[job.jobId] |= FOREIGN


def _assert_foreign_kept(world: World, job_id: str) -> None:
    item = world.jobs.item(job_id)
    assert {k: item.get(k) for k in FOREIGN} == FOREIGN


def test_unknown_attributes_survive_every_kind_of_update(world: World, images: SimpleNamespace) -> None:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put("inbox/alice/a.jpg", images.png)
    item = upload("inbox/alice/a.jpg")
    _with_foreign(world, make_job(jobId=item.job_id, targetKey=item.key))
    world.gateway.script(Accepted(TASK_ID, None, 1, ""))
    writes = len(world.jobs.writes)
    world.submitter().submit(item, 900)  # start attempt, note inputs, accept
    _assert_foreign_kept(world, item.job_id)
    world.applier().apply(item.job_id, snap("IN_PROGRESS", "40%"), via="callback")  # a snapshot
    _assert_foreign_kept(world, item.job_id)
    world.downloader.results["https://cdn/r.png"] = DownloadedImage(images.png, "png", "image/png")
    world.applier().apply(item.job_id, snap("SUCCESS", "100%", imageUrl="https://cdn/r.png"), via="poll")
    _assert_foreign_kept(world, item.job_id)  # terminal, result copied, event published
    job = world.jobs.get(item.job_id)
    assert job is not None and job.resultKey and not job.needs_attention and world.events.published
    # start, inputs, accepted, progress, SUCCESS (+ copy claim), copied and published (one write)
    assert len(world.jobs.writes) - writes == 6
    assert not {"openFlag", "openShard"} & set(world.jobs.item(item.job_id))  # index keys are derived, not kept

    world.media.put("inbox/nobody/b.jpg", images.png)  # a rejection
    rejected = upload("inbox/nobody/b.jpg")
    _with_foreign(world, make_job(jobId=rejected.job_id, targetKey=rejected.key, face="nobody"))
    assert world.submitter().submit(rejected, 900).outcome.value == "REJECTED"
    _assert_foreign_kept(world, rejected.job_id)

    old = iso(world.clock() - timedelta(hours=2))  # a time-out
    _with_foreign(world, make_job(jobId="late", targetKey="inbox/alice/late.jpg", createdAt=old, updatedAt=old))
    world.reconciler().run()
    late = world.jobs.get("late")
    assert late is not None and late.status is JobStatus.FAILURE
    _assert_foreign_kept(world, "late")


def test_an_item_written_before_deliveries_existed_reads_and_writes_back_compatibly() -> None:
    old_item = {
        "jobId": "j-old",
        "status": "SUCCESS",
        "bucket": "bkt",
        "targetKey": "inbox/alice/x.jpg",
        "createdAt": "2024-10-16T09:59:21.500Z",
        "updatedAt": "2024-10-16T09:59:21.500Z",
        "imageUrl": "https://cdn/r.png",
        "resultCopyAttempts": Decimal(2),
        "eventPending": True,
        "openFlag": "OPEN",
        "version": Decimal(4),
    }
    job = Job.from_item(old_item)
    assert job.needs_result_copy and job.eventPending and job.resultCopyAttempts == 2
    assert job.next_delivery == COPY and job.extra == {}
    item = job.to_item()
    assert item["eventPending"] is True and item["resultCopyAttempts"] == 2
    assert item["openShard"] == open_shard("j-old") and "openFlag" not in item  # moved to the sharded index
    assert item["deliveries"]["copy"]["state"] == "pending"


def test_history_is_bounded_and_kept_in_the_item() -> None:
    job = make_job(history=tuple(Transition(from_="A", to="B", at=f"t{i}", via="poll") for i in range(MAX_HISTORY)))
    decision = sm.time_out(job, datetime(2024, 10, 16, 11, tzinfo=UTC), 60)
    assert len(decision.job.history) == MAX_HISTORY
    assert decision.job.history[-1].to_item() == {
        "from": "PENDING",
        "to": "FAILURE",
        "at": "2024-10-16T11:00:00.000Z",
        "via": "reconciler",
    }
    assert Job.from_item(decision.job.to_item()).history == decision.job.history


def test_public_view_never_carries_a_urls_query_userinfo_or_fragment() -> None:
    """The view goes to EventBridge consumers and webhook receivers: a webhook's token or a presigned
    target's signature must not travel with it."""
    job = dataclasses.replace(
        FULL,
        targetUrl="https://user:pw@cdn.example/t.jpg?X-Amz-Signature=abc#frag",
        webhook={"url": "https://hooks.example/in?token=s3cr3t", "events": ["completed"]},
    )
    view = job.public_view()
    assert view["targetUrl"] == "https://cdn.example/t.jpg"
    assert view["webhook"] == {"url": "https://hooks.example/in", "events": ["completed"]}
    assert "s3cr3t" not in str(view) and "X-Amz-Signature" not in str(view)
    assert job.to_item()["webhook"]["url"].endswith("token=s3cr3t"), "the record keeps what delivery needs"
