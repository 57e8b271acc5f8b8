"""The only module that talks to DynamoDB: the Jobs table and its sparse OpenJobs index."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from swapdrop.jobs import LIST_SORT_KEY, OPEN_FLAG, Job


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of one list index partition, newest first, by key conditions only.

    `before`/`since` bound the sort key (createdAt#jobId): items < before and >= since.
    `filters` (attribute = value) are a second dimension the index cannot key on; DynamoDB applies
    them after reading, so a page may hold fewer than `limit` items with more to come (`next_key`)."""

    index: str
    partition_attribute: str
    partition: str
    limit: int
    before: str | None = None
    since: str | None = None
    filters: Mapping[str, str] = field(default_factory=dict)
    start_key: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[dict[str, Any]]
    """Index items: the keys and the projected attributes only (not whole jobs)."""
    next_key: dict[str, Any] | None
    scanned: int = 0
    """Items DynamoDB read for this page (before filters): what the page cost."""


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

    def create_many(self, jobs: list[Job]) -> None:
        """Write new jobs with fresh random ids (the jobs API's batch): no claim, no condition."""

    def list_page(self, query: ListQuery) -> ListPage: ...


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

    def create_many(self, jobs: list[Job]) -> None:
        # BatchWriteItem takes no condition: these ids are fresh uuid4s, never a claim on an existing job.
        with self._table.batch_writer() as batch:
            for job in jobs:
                batch.put_item(Item=job.to_item())

    def list_page(self, query: ListQuery) -> ListPage:
        request: dict[str, Any] = {
            "IndexName": query.index,
            "KeyConditionExpression": _list_condition(query),
            "ScanIndexForward": False,
            "Limit": query.limit,
        }
        if query.filters:
            condition = None
            for name, value in query.filters.items():
                term = Attr(name).eq(value)
                condition = term if condition is None else condition & term
            request["FilterExpression"] = condition
        if query.start_key:
            request["ExclusiveStartKey"] = dict(query.start_key)
        page = self._table.query(**request)
        return ListPage(
            items=list(page.get("Items", [])),
            next_key=page.get("LastEvaluatedKey"),
            scanned=int(page.get("ScannedCount", 0)),
        )


def _list_condition(query: ListQuery) -> Any:
    condition = Key(query.partition_attribute).eq(query.partition)
    sort = Key(LIST_SORT_KEY)
    if query.before is not None and query.since is not None:
        # BETWEEN is inclusive: the caller drops an item equal to `before` (at most one, the cursor's).
        return condition & sort.between(query.since, query.before)
    if query.before is not None:
        return condition & sort.lt(query.before)
    if query.since is not None:
        return condition & sort.gte(query.since)
    return condition


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
