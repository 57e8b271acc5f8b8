"""The OpenJobs migration on moto's DynamoDB with the template's table: a job written before the shards
is found through the unsharded OpenJobs index, and one rewrite moves it to OpenJobsByShard."""

from __future__ import annotations

from swapdrop import state_machine as sm
from swapdrop.job_store import DynamoJobStore
from swapdrop.job_updates import update_job
from swapdrop.jobs import Job, JobStatus, open_shard
from swapdrop_local.provision import local_table, provision

CUTOFF = "2030-01-01T00:00:00.000Z"


def test_a_legacy_open_job_is_read_from_the_old_index_then_moved_to_its_shard(moto_endpoint: str) -> None:
    stack = provision(
        endpoint_url=moto_endpoint,
        region="us-east-1",
        callback_base_url="http://127.0.0.1:9",
        parameter_overrides={"UpstreamBaseUrl": "http://127.0.0.1:9"},
        stack_name="openjobs-migration",
    )
    table = local_table(stack.jobs_table, "us-east-1", moto_endpoint)
    stamp = "2025-01-02T03:04:05.000Z"
    old = Job(
        jobId="cd" * 16, status=JobStatus.SUBMITTED, bucket=stack.bucket, targetKey="inbox/alice/a.jpg",
        createdAt=stamp, updatedAt=stamp, taskId="T-1", attempts=1,
    ).to_item()  # fmt: skip
    old.pop("openShard")
    old["openFlag"] = "OPEN"  # as the code before the shards wrote it
    table.put_item(Item=old)
    fresh = Job(
        jobId="ef" * 16, status=JobStatus.PENDING, bucket=stack.bucket, targetKey="inbox/alice/b.jpg",
        createdAt=stamp, updatedAt="2025-01-02T03:04:06.000Z",
    )  # fmt: skip
    table.put_item(Item=fresh.to_item())
    store = DynamoJobStore(table, "OpenJobsByShard", "OpenJobs")

    listed = list(store.open_jobs(updated_before=CUTOFF))
    assert [(j.jobId, j.legacy, j.taskId) for j in listed] == [(old["jobId"], True, "T-1"), (fresh.jobId, False, None)]

    assert update_job(store, old["jobId"], sm.reindex).changed
    item = table.get_item(Key={"jobId": old["jobId"]})["Item"]
    assert item["openShard"] == open_shard(old["jobId"]) and "openFlag" not in item
    listed = list(store.open_jobs(updated_before=CUTOFF))
    assert [(j.jobId, j.legacy) for j in listed] == [(old["jobId"], False), (fresh.jobId, False)]
    legacy = table.query(IndexName="OpenJobs", KeyConditionExpression="openFlag = :o", ExpressionAttributeValues={
        ":o": "OPEN"})["Items"]  # fmt: skip
    assert legacy == []
