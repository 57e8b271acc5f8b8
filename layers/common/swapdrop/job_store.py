"""The only module that talks to DynamoDB: the Jobs table and its sparse OpenJobs index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from swapdrop.jobs import OPEN_FLAG, Job


class VersionConflict(Exception):
    """Someone else changed the job since it was read."""


class JobStore(Protocol):
    def get(self, job_id: str) -> Job | None: ...

    def create(self, job: Job) -> bool:
        """Write a new job; False if one with that id exists (the claim)."""

    def replace(self, job: Job, expected_version: int) -> None:
        """Write `job` if the stored version is still `expected_version`, else VersionConflict."""

    def open_jobs(self, updated_before: str) -> Iterator[Job]:
        """Jobs that need the reconciler and have had no news since `updated_before`."""


class DynamoJobStore:
    def __init__(self, table: Any, open_jobs_index: str) -> None:
        self._table = table
        self._index = open_jobs_index

    def get(self, job_id: str) -> Job | None:
        item = self._table.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
        return Job.from_item(item) if item else None

    def create(self, job: Job) -> bool:
        try:
            self._table.put_item(Item=job.to_item(), ConditionExpression="attribute_not_exists(jobId)")
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def replace(self, job: Job, expected_version: int) -> None:
        try:
            self._table.put_item(
                Item=job.to_item(),
                ConditionExpression="#v = :expected",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":expected": expected_version},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                raise VersionConflict(job.jobId) from error
            raise

    def open_jobs(self, updated_before: str) -> Iterator[Job]:
        query: dict[str, Any] = {
            "IndexName": self._index,
            "KeyConditionExpression": Key("openFlag").eq(OPEN_FLAG) & Key("updatedAt").lte(updated_before),
        }
        while True:
            page = self._table.query(**query)
            for item in page.get("Items", []):
                yield Job.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
