"""The local stack's resources come from template.yaml: the jobs API's table, indexes, notification
and environment included (on moto's server)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from swapdrop.config import Settings
from swapdrop.jobs import LIST_INDEXES, LIST_SORT_KEY, Job, JobStatus, open_shard
from swapdrop.layout import decode_event_key
from swapdrop_local.provision import LocalStack, provision
from swapdrop_local.template import load_template, resources_of_type

REGION = "us-east-1"
_stacks = itertools.count()


def _provision(endpoint: str, **overrides: Any) -> LocalStack:
    return provision(
        endpoint_url=endpoint,
        region=REGION,
        callback_base_url="http://127.0.0.1:9",
        parameter_overrides={"UpstreamBaseUrl": "http://127.0.0.1:9", **overrides},
        stack_name=f"prov{next(_stacks)}",
    )


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> LocalStack:
    return _provision(moto_endpoint)


def test_every_template_function_gets_an_environment_the_code_accepts(stack: LocalStack) -> None:
    functions = set(resources_of_type(load_template(), "AWS::Serverless::Function"))
    assert "ApiFunction" in functions
    assert set(stack.environments) == functions
    for env in stack.environments.values():
        Settings.from_environ(env)  # raises on a missing or malformed variable


def test_api_function_environment_names_the_local_resources(stack: LocalStack) -> None:
    env = stack.environments["ApiFunction"]
    assert env["SUBMIT_QUEUE_URL"] == stack.queue_url
    assert env["IDEMPOTENCY_TABLE_NAME"] == stack.idempotency_table != ""
    assert env["UPLOAD_URL_SECONDS"] == "900"
    assert env["RESULT_URL_SECONDS"] == "300"
    assert env["UPLOAD_GRACE_SECONDS"] == stack.environments["ReconcileFunction"]["UPLOAD_GRACE_SECONDS"] == "300"
    settings = Settings.from_environ(env)
    assert settings.submit_queue_url == stack.queue_url
    assert settings.idempotency_table_name == stack.idempotency_table


def test_parameter_overrides_reach_the_api_environment(moto_endpoint: str) -> None:
    other = _provision(moto_endpoint, UploadUrlSeconds=120, ResultUrlSeconds=60)
    assert other.environments["ApiFunction"]["UPLOAD_URL_SECONDS"] == "120"
    assert other.environments["ApiFunction"]["RESULT_URL_SECONDS"] == "60"


def test_idempotency_table_expires_records(stack: LocalStack) -> None:
    ddb = stack.client("dynamodb")
    table = ddb.describe_table(TableName=stack.idempotency_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    ttl = ddb.describe_time_to_live(TableName=stack.idempotency_table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expiration"


def test_list_indexes_serve_a_job_written_by_the_code(stack: LocalStack) -> None:
    ddb = stack.client("dynamodb")
    indexes = {
        i["IndexName"]: i for i in ddb.describe_table(TableName=stack.jobs_table)["Table"]["GlobalSecondaryIndexes"]
    }
    assert set(indexes) == {"OpenJobsByShard", "OpenJobs", *LIST_INDEXES}
    job = Job(
        jobId="ab" * 16, status=JobStatus.PENDING, bucket=stack.bucket, targetKey="uploads/x/target.png",
        createdAt="2025-01-02T03:04:05Z", updatedAt="2025-01-02T03:04:05Z", face="alice",
        requestedBy="user-1", requesterKind="jwt", origin="api",
    )  # fmt: skip
    serializer = TypeSerializer()
    item = {k: serializer.serialize(v) for k, v in job.to_item().items()}
    ddb.put_item(TableName=stack.jobs_table, Item=item)
    keys = job.index_keys()
    for index, attribute in LIST_INDEXES.items():
        found = ddb.query(
            TableName=stack.jobs_table,
            IndexName=index,
            KeyConditionExpression="#p = :p AND begins_with(#s, :day)",
            ExpressionAttributeNames={"#p": attribute, "#s": LIST_SORT_KEY},
            ExpressionAttributeValues={":p": {"S": keys[attribute]}, ":day": {"S": "2025-01-02"}},
        )["Items"]
        assert [i["jobId"]["S"] for i in found] == [job.jobId], f"{index} does not list the job"
        assert found[0]["status"]["S"] == "PENDING" and "progress" not in found[0], f"{index} projection"
    (open_item,) = ddb.query(
        TableName=stack.jobs_table,
        IndexName="OpenJobsByShard",
        KeyConditionExpression="openShard = :p",
        ExpressionAttributeValues={":p": {"S": open_shard(job.jobId)}},
    )["Items"]
    assert open_item["jobId"]["S"] == job.jobId and "targetKey" not in open_item, "OpenJobsByShard projection"


def _queued_keys(stack: LocalStack, wait_seconds: float = 5.0) -> set[str]:
    sqs = stack.client("sqs")
    keys: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            body = json.loads(message["Body"])
            keys |= {decode_event_key(r["s3"]["object"]["key"]) for r in body.get("Records", [])}
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if {"inbox/alice/a.jpg", "uploads/" + "cd" * 16 + "/target.png"} <= keys:
            break
    return keys


def test_inbox_and_uploads_notify_the_submit_queue_and_nothing_else_does(moto_endpoint: str) -> None:
    stack = _provision(moto_endpoint)
    s3 = stack.client("s3")
    config = s3.get_bucket_notification_configuration(Bucket=stack.bucket)["QueueConfigurations"]
    prefixes = {c["Filter"]["Key"]["FilterRules"][0]["Value"] for c in config}
    assert prefixes == {"inbox/", "uploads/"} and {c["QueueArn"] for c in config} == {stack.queue_arn}
    for key in ("faces/alice.jpg", "jobs/" + "ef" * 16 + "/target", "results/alice/a.png"):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")
    for key in ("inbox/alice/a.jpg", "uploads/" + "cd" * 16 + "/target.png"):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")
    assert _queued_keys(stack) == {"inbox/alice/a.jpg", "uploads/" + "cd" * 16 + "/target.png"}


def test_jwt_parameters_do_not_break_the_local_stack(moto_endpoint: str) -> None:
    """The JwtApi resources (HasJwt) are AWS-only: the local runtime serves JWT itself."""
    other = _provision(moto_endpoint, JwtIssuer="https://issuer.example", JwtAudience="swapdrop")
    assert "ApiFunction" in other.environments
    assert not any("Jwt" in value for env in other.environments.values() for value in env.values())
