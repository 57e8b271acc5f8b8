"""jobs: the record, its DynamoDB item, its sparse-index flag and its public view."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from swapdrop.jobs import OPEN_FLAG, Job, JobStatus, iso, parse_iso

from .builders import make_job

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
    assert (item.get("openFlag") == OPEN_FLAG) is open_
    assert ("openFlag" in item) is open_


def test_public_view_hides_internals() -> None:
    view = FULL.public_view()
    for hidden in ("version", "leaseUntil", "eventPending", "openFlag"):
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
    ],
)
def test_terminal_statuses(status: str, terminal: bool) -> None:
    assert JobStatus(status).is_terminal is terminal


def test_status_ranks_order_the_life_of_a_job() -> None:
    ranks = [JobStatus(s).rank for s in ("PENDING", "SUBMITTED", "IN_PROGRESS", "SUCCESS")]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 4
    assert JobStatus.FAILURE.rank == JobStatus.REJECTED.rank == JobStatus.SUCCESS.rank
