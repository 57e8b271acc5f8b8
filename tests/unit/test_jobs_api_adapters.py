"""The jobs API's new adapter calls on moto in-process (mock_aws: no sockets): list queries on the
four list GSIs (key conditions, shard merge, filters), batch create, S3 head/list/delete/presign, SQS."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from swapdrop.job_store import DynamoJobStore, ListQuery
from swapdrop.jobs import LIST_INDEXES, LIST_SORT_KEY, JobStatus, iso
from swapdrop.jobs_api import listing
from swapdrop.jobs_api.caller import Caller
from swapdrop.media_store import S3MediaStore
from swapdrop.submit_queue import JobMessages

from .builders import BUCKET, make_job
from .conftest import World

PROJECTED = ["status", "face", "createdAt", "finishedAt", "targetKey", "resultKey", "failReason"]
PROJECTED += ["requestedBy", "requesterKind", "origin"]


def jobs_table() -> Any:
    """The Jobs table with the list GSIs as ISSUE7.md specifies them."""
    attributes = [{"AttributeName": name, "AttributeType": "S"} for name in ("jobId", LIST_SORT_KEY)]
    attributes += [{"AttributeName": attr, "AttributeType": "S"} for attr in LIST_INDEXES.values()]
    indexes = [
        {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": attr, "KeyType": "HASH"},
                {"AttributeName": LIST_SORT_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": PROJECTED},
        }
        for name, attr in LIST_INDEXES.items()
    ]
    return boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName="jobs",
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        AttributeDefinitions=attributes,
        GlobalSecondaryIndexes=indexes,
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


def test_list_queries_merge_shards_newest_first_with_bounds_and_filters(aws: None, world: World) -> None:
    store = DynamoJobStore(jobs_table(), "OpenJobs")
    start = world.clock.now
    jobs = [
        make_job(
            jobId=f"{n:04d}" + "b" * 28,
            face="alice" if n % 2 else "bob",
            status=JobStatus.FAILURE if n % 3 else JobStatus.PENDING,
            createdAt=iso(start + timedelta(seconds=n)),
            updatedAt=iso(start + timedelta(seconds=n)),
        )
        for n in range(40)
    ]
    store.create_many(jobs)
    newest_first = [j.jobId for j in reversed(jobs)]
    operator = Caller("iam", "arn")
    plan = listing.plan_for(operator, None, None)
    first = listing.list_items(store, plan, 15, None, None)
    assert [i["jobId"] for i in first.items] == newest_first[:15] and first.more
    assert "progress" not in first.items[0] and "updatedAt" not in first.items[0]  # the projection
    after = first.items[-1][LIST_SORT_KEY]
    second = listing.list_items(store, plan, 15, after, None)
    assert [i["jobId"] for i in second.items] == newest_first[15:30]
    since = iso(start + timedelta(seconds=10))
    bounded = listing.list_items(store, plan, 100, after, since)  # BETWEEN; the cursor's own item dropped
    assert [i["jobId"] for i in bounded.items] == [j for j in newest_first[15:] if int(j[:4]) >= 10]
    face_status = listing.list_items(store, listing.plan_for(operator, "alice", "FAILURE"), 100, None, None)
    assert [i["jobId"] for i in face_status.items] == [j for j in newest_first if int(j[:4]) % 2 and int(j[:4]) % 3]
    assert face_status.scanned == 20  # the face's items only, never the table


def test_list_page_reports_what_it_read(aws: None) -> None:
    store = DynamoJobStore(jobs_table(), "OpenJobs")
    store.create_many([make_job(jobId=f"j{n}", requestedBy="u", requesterKind="jwt") for n in range(5)])
    page = store.list_page(
        ListQuery(index="JobsByOwner", partition_attribute="listOwner", partition="u", limit=3, filters={"face": "x"})
    )
    assert (page.items, page.scanned, page.next_key is not None) == ([], 3, True)


def test_s3_head_list_delete_and_presign(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))  # as wiring builds it
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="faces/a.jpg", Body=b"123", ContentType="image/jpeg")
    s3.put_object(Bucket=BUCKET, Key="faces/b.png", Body=b"12345")
    media = S3MediaStore(s3, BUCKET)
    info = media.head("faces/a.jpg")
    assert info is not None and (info.size, info.content_type) == (3, "image/jpeg")
    assert media.head("faces/none.jpg") is None
    page = media.list_objects("faces/", None, 1)
    assert [o.key for o in page.objects] == ["faces/a.jpg"] and page.next_after == "faces/a.jpg"
    assert [o.key for o in media.list_objects("faces/", page.next_after, 1).objects] == ["faces/b.png"]
    form = media.presigned_post("uploads/x/target.png", "image/png", 1000, 900)
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert ["content-length-range", 1, 1000] in policy["conditions"]
    assert form["fields"]["key"] == "uploads/x/target.png" and form["fields"]["Content-Type"] == "image/png"
    assert "X-Amz-Expires=60" in media.presigned_get("faces/a.jpg", 60)
    media.delete_keys(["faces/a.jpg"])
    assert media.head("faces/a.jpg") is None


def test_job_messages_send_job_ids_in_batches_of_ten(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="submit")["QueueUrl"]
    ids = [f"{n:032x}" for n in range(23)]
    assert JobMessages(sqs, url).send_jobs(ids) == []
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    assert sorted(b["jobId"] for b in bodies) == ids and all(set(b) == {"jobId"} for b in bodies)
