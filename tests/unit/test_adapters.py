"""The thin AWS adapters (DynamoDB, S3, EventBridge, SQS, secrets) against recording stand-ins
of the boto3 clients: what they ask AWS, and how they map AWS's errors."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import ConditionExpressionBuilder
from botocore.exceptions import ClientError
from swapdrop.job_events import DETAIL_TYPE, EVENT_SOURCE, EventBridgePublisher, EventPublishFailed
from swapdrop.job_store import DynamoJobStore, VersionConflict
from swapdrop.jobs import OPEN_JOB_ATTRIBUTES, OPEN_SHARDS, JobStatus, OpenJob, open_partitions, open_shard
from swapdrop.media_store import ObjectMissing, ObjectTooLarge, S3MediaStore
from swapdrop.secrets import SECRET_CACHE_SECONDS, secret_reader
from swapdrop.submit_queue import SubmitQueue

from .builders import make_job


def client_error(code: str, operation: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Recorder:
    """A boto3 client/table stand-in: records calls, answers from a script per method."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answers = {name: list(value) if isinstance(value, list) else [value] for name, value in answers.items()}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            script = self._answers.get(name, [{}])
            answer = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


# --- DynamoDB ----------------------------------------------------------------------------------


def test_get_reads_consistently_and_converts_decimals() -> None:
    item = make_job(version=3, progress=40).to_item()
    item["version"], item["progress"] = Decimal(3), Decimal(40)
    table = Recorder(get_item={"Item": item})
    job = DynamoJobStore(table, "OpenJobs").get("job-0001")
    assert job is not None and job.version == 3 and job.progress == 40
    assert table.calls == [("get_item", {"Key": {"jobId": "job-0001"}, "ConsistentRead": True})]
    assert DynamoJobStore(Recorder(get_item={}), "OpenJobs").get("nope") is None


def test_create_is_a_conditional_put_and_a_lost_race_is_false() -> None:
    job = make_job()
    table = Recorder(put_item=[{}, client_error("ConditionalCheckFailedException")])
    store = DynamoJobStore(table, "OpenJobs")
    assert store.create(job) is True
    assert store.create(job) is False
    assert table.calls[0][0] == "put_item"
    _, kwargs = table.calls[0]
    assert kwargs == {"Item": job.to_item(), "ConditionExpression": "attribute_not_exists(jobId)"}


def test_replace_checks_the_version() -> None:
    job = make_job(version=5, status=JobStatus.SUBMITTED, taskId="t")
    table = Recorder(put_item=[{}, client_error("ConditionalCheckFailedException")])
    store = DynamoJobStore(table, "OpenJobs")
    store.replace(job, expected_version=4)
    _, kwargs = table.calls[0]
    assert kwargs["Item"] == job.to_item()
    assert kwargs["ConditionExpression"] == "#v = :expected"
    assert kwargs["ExpressionAttributeNames"] == {"#v": "version"}
    assert kwargs["ExpressionAttributeValues"] == {":expected": 4}
    with pytest.raises(VersionConflict):
        store.replace(job, expected_version=4)


@pytest.mark.parametrize("method", ["create", "replace"])
def test_other_dynamodb_errors_are_not_swallowed(method: str) -> None:
    store = DynamoJobStore(Recorder(put_item=client_error("ProvisionedThroughputExceededException")), "OpenJobs")
    with pytest.raises(ClientError):
        store.create(make_job()) if method == "create" else store.replace(make_job(version=1), 0)


class ShardedTable:
    """Answers a Query by the partition its key condition names (pages scripted per partition)."""

    def __init__(self, pages: dict[str, list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        built = ConditionExpressionBuilder().build_expression(request["KeyConditionExpression"], is_key_condition=True)
        partition = next(v for v in built.attribute_value_placeholders.values() if str(v).startswith("OPEN"))
        script = self.pages.get(f"{request['IndexName']}/{partition}", [{}])
        return script.pop(0) if len(script) > 1 else script[0]


def test_open_jobs_queries_every_shard_page_by_page_and_merges_them_oldest_first() -> None:
    def item(job_id: str, minute: int) -> dict[str, Any]:
        stamp = f"2024-10-16T09:{minute:02d}:00.000Z"
        return make_job(jobId=job_id, updatedAt=stamp, taskId="t-" + job_id).to_item()

    a, b, c = item("a", 1), item("b", 3), item("c", 2)
    shard_a, shard_c = open_shard("a"), open_shard("c")
    assert shard_a != shard_c
    table = ShardedTable(
        {
            f"OpenJobsByShard/{shard_a}": [{"Items": [a], "LastEvaluatedKey": {"jobId": "a"}}, {"Items": [b]}],
            f"OpenJobsByShard/{shard_c}": [{"Items": [c]}],
        }
    )
    store = DynamoJobStore(table, "OpenJobsByShard")
    jobs = list(store.open_jobs(updated_before="2024-10-16T10:00:00.000Z"))
    assert [j.jobId for j in jobs] == ["a", "c", "b"]  # oldest news first across the shards
    assert all(isinstance(j, OpenJob) for j in jobs) and jobs[0].taskId == "t-a"
    assert len(table.calls) == OPEN_SHARDS + 1  # one query a shard, one more page for shard_a
    partitions = []
    for request in table.calls:
        assert request["IndexName"] == "OpenJobsByShard"
        built = ConditionExpressionBuilder().build_expression(request["KeyConditionExpression"], is_key_condition=True)
        assert sorted(built.attribute_name_placeholders.values()) == ["openShard", "updatedAt"]
        assert "<=" in built.condition_expression
        partitions.append(next(v for v in built.attribute_value_placeholders.values() if v.startswith("OPEN")))
        asked = set(request["ExpressionAttributeNames"].values())
        assert asked == {"jobId", "updatedAt", "openShard", *OPEN_JOB_ATTRIBUTES}
    assert set(partitions) == set(open_partitions())
    assert table.calls[-1]["ExclusiveStartKey"] == {"jobId": "a"}


def test_open_jobs_also_reads_the_legacy_index_while_there_is_one_and_yields_a_job_once() -> None:
    legacy_item = make_job(jobId="old", updatedAt="2024-10-16T09:00:00.000Z").to_item()
    legacy_item.pop("openShard")
    legacy_item["openFlag"] = "OPEN"  # written by the code before the shards
    both = make_job(jobId="both", updatedAt="2024-10-16T09:05:00.000Z").to_item()
    table = ShardedTable(
        {
            f"OpenJobsByShard/{open_shard('both')}": [{"Items": [both]}],
            "OpenJobs/OPEN": [{"Items": [legacy_item, both]}],
        }
    )
    jobs = list(DynamoJobStore(table, "OpenJobsByShard", "OpenJobs").open_jobs("2024-10-16T10:00:00.000Z"))
    assert [j.jobId for j in jobs] == ["old", "both"]
    assert [r["IndexName"] for r in table.calls].count("OpenJobs") == 1
    assert [r["IndexName"] for r in table.calls].count("OpenJobsByShard") == OPEN_SHARDS


# --- S3 ----------------------------------------------------------------------------------------


class Body(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.was_read = False
        self.was_closed = False

    def read(self, size: int | None = -1) -> bytes:
        self.was_read = True
        return super().read(size)

    def close(self) -> None:
        self.was_closed = True
        super().close()


def test_read_gets_the_object_and_closes_the_body() -> None:
    body = Body(b"abc")
    s3 = Recorder(get_object={"Body": body, "ContentLength": 3})
    assert S3MediaStore(s3, "bkt").read("inbox/a/b.jpg", 10) == b"abc"
    assert s3.calls == [("get_object", {"Bucket": "bkt", "Key": "inbox/a/b.jpg"})]
    assert body.was_closed


def test_read_a_given_version() -> None:
    s3 = Recorder(get_object={"Body": Body(b"v1"), "ContentLength": 2})
    S3MediaStore(s3, "bkt").read("inbox/a/b.jpg", 10, "v1")
    assert s3.calls == [("get_object", {"Bucket": "bkt", "Key": "inbox/a/b.jpg", "VersionId": "v1"})]


def test_a_large_object_is_refused_before_its_body_is_read() -> None:
    body = Body(b"x" * 20)
    with pytest.raises(ObjectTooLarge) as raised:
        S3MediaStore(Recorder(get_object={"Body": body, "ContentLength": 20}), "bkt").read("k", 10)
    assert (raised.value.key, raised.value.size, raised.value.limit) == ("k", 20, 10)
    assert not body.was_read and body.was_closed


def test_a_body_longer_than_declared_is_still_capped() -> None:
    body = Body(b"x" * 20)
    with pytest.raises(ObjectTooLarge):
        S3MediaStore(Recorder(get_object={"Body": body, "ContentLength": 5}), "bkt").read("k", 10)
    assert body.was_closed


# AccessDenied too: without an unconditional s3:ListBucket, S3 answers a missing key that way
@pytest.mark.parametrize("code", ["NoSuchKey", "NoSuchVersion", "404", "NotFound", "AccessDenied", "403"])
def test_a_missing_object_is_object_missing(code: str) -> None:
    with pytest.raises(ObjectMissing):
        S3MediaStore(Recorder(get_object=client_error(code, "GetObject")), "bkt").read("k", 10)


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "KMS.DisabledException"])
def test_other_s3_errors_are_not_swallowed(code: str) -> None:
    with pytest.raises(ClientError):
        S3MediaStore(Recorder(get_object=client_error(code, "GetObject")), "bkt").read("k", 10)


def test_list_keys_and_write() -> None:
    s3 = Recorder(list_objects_v2={"Contents": [{"Key": "faces/alice.jpg"}, {"Key": "faces/alice.png"}]})
    store = S3MediaStore(s3, "bkt")
    assert store.list_keys("faces/alice.") == ["faces/alice.jpg", "faces/alice.png"]
    assert S3MediaStore(Recorder(list_objects_v2={}), "bkt").list_keys("faces/x.") == []
    store.write("results/a/b.png", b"png", "image/png", {"job-id": "j"})
    assert s3.calls == [
        ("list_objects_v2", {"Bucket": "bkt", "Prefix": "faces/alice."}),
        (
            "put_object",
            {
                "Bucket": "bkt",
                "Key": "results/a/b.png",
                "Body": b"png",
                "ContentType": "image/png",
                "Metadata": {"job-id": "j"},
            },
        ),
    ]


# --- EventBridge, SQS, secrets -----------------------------------------------------------------------


def test_job_finished_puts_one_event_with_the_public_view() -> None:
    job = make_job(status=JobStatus.REJECTED, failReason="no face", eventPending=True, leaseUntil=5, version=2)
    events = Recorder(put_events={"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]})
    EventBridgePublisher(events, "swapdrop-bus").job_finished(job)
    ((_, kwargs),) = events.calls
    (entry,) = kwargs["Entries"]
    assert entry["Source"] == EVENT_SOURCE == "swapdrop"
    assert entry["DetailType"] == DETAIL_TYPE
    assert entry["EventBusName"] == "swapdrop-bus"
    detail = json.loads(entry["Detail"])
    assert detail == job.public_view()
    assert detail["status"] == "REJECTED" and "leaseUntil" not in detail


def test_a_failed_entry_raises() -> None:
    events = Recorder(
        put_events={"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"}]}
    )
    with pytest.raises(EventPublishFailed, match="ThrottlingException: slow"):
        EventBridgePublisher(events, "bus").job_finished(make_job())


def test_defer_sets_the_visibility_and_looks_the_queue_up_once() -> None:
    sqs = Recorder(get_queue_url={"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"})
    queue = SubmitQueue(sqs)
    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    queue.defer(arn, "r1", 60)
    queue.defer(arn, "r2", 120)
    assert sqs.calls == [
        ("get_queue_url", {"QueueName": "q", "QueueOwnerAWSAccountId": "123456789012"}),
        (
            "change_message_visibility",
            {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                "ReceiptHandle": "r1",
                "VisibilityTimeout": 60,
            },
        ),
        (
            "change_message_visibility",
            {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                "ReceiptHandle": "r2",
                "VisibilityTimeout": 120,
            },
        ),
    ]


class FakeSecrets:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls: list[tuple[str, int]] = []

    def get(self, name: str, max_age: int) -> Any:
        self.calls.append((name, max_age))
        return self.value


def test_secret_reader_strips_and_caches_through_the_provider() -> None:
    provider = FakeSecrets("  sk-abc\n")
    read = secret_reader("swapdrop/api-key", provider)  # type: ignore[arg-type]
    assert read() == "sk-abc"
    assert provider.calls == [("swapdrop/api-key", SECRET_CACHE_SECONDS)]


@pytest.mark.parametrize("value", ["", None, b"bytes"])
def test_secret_reader_refuses_an_empty_or_odd_secret(value: Any) -> None:
    read = secret_reader("swapdrop/api-key", FakeSecrets(value))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="swapdrop/api-key is empty or not a string"):
        read()


def test_list_keys_follows_continuation_tokens() -> None:
    """A face folder with many look-alike keys must not hide faces/<face>.jpg behind the first page."""
    s3 = Recorder(
        list_objects_v2=[
            {
                "Contents": [{"Key": f"faces/alice.{i:04d}.jpg"} for i in range(1000)],
                "IsTruncated": True,
                "NextContinuationToken": "t1",
            },
            {"Contents": [{"Key": "faces/alice.jpg"}], "IsTruncated": False},
        ]
    )
    keys = S3MediaStore(s3, "bkt").list_keys("faces/alice.")
    assert keys[-1] == "faces/alice.jpg" and len(keys) == 1001
    assert s3.calls[1] == ("list_objects_v2", {"Bucket": "bkt", "Prefix": "faces/alice.", "ContinuationToken": "t1"})
