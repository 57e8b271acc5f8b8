"""The only module that talks to DynamoDB: the Jobs table and its sparse OpenJobsByShard index."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from swapdrop.jobs import (
    LEGACY_OPEN_KEY,
    LIST_SORT_KEY,
    OPEN_FLAG,
    OPEN_JOB_ATTRIBUTES,
    OPEN_KEY,
    Job,
    OpenJob,
    open_partitions,
)


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

    def open_jobs(self, updated_before: str) -> Iterator[OpenJob]:
        """Jobs that need the reconciler and have had no news since `updated_before`, oldest news first."""

    def create_many(self, jobs: list[Job]) -> None:
        """Write new jobs with fresh random ids (the jobs API's batch): no claim, no condition."""

    def list_page(self, query: ListQuery) -> ListPage: ...


class DynamoJobStore:
    def __init__(self, table: Any, open_jobs_index: str, legacy_open_jobs_index: str = "") -> None:
        """`legacy_open_jobs_index`: the unsharded OpenJobs index of a stack deployed before the shards,
        read too (its openFlag = OPEN partition) until it has drained and is dropped; "" when there is none."""
        self._table = table
        self._index = open_jobs_index
        self._legacy_index = legacy_open_jobs_index

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

    def open_jobs(self, updated_before: str) -> Iterator[OpenJob]:
        """Every shard queried (a page at a time, as the merge needs it) and merged oldest news first,
        with the legacy index's partition while there is one (a job in both is yielded once)."""
        sources = [(self._index, OPEN_KEY, partition) for partition in open_partitions()]
        if self._legacy_index:
            sources.append((self._legacy_index, LEGACY_OPEN_KEY, OPEN_FLAG))
        merged = heapq.merge(
            *(self._open_items(*source, updated_before) for source in sources), key=lambda item: str(item["updatedAt"])
        )
        seen: set[str] = set()
        for item in merged:
            if item["jobId"] not in seen:
                seen.add(item["jobId"])
                yield OpenJob.from_item(item)

    def _open_items(self, index: str, key: str, partition: str, updated_before: str) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": Key(key).eq(partition) & Key("updatedAt").lte(updated_before),
            # The legacy index projects ALL: ask for the same attributes the sharded one holds.
            "ProjectionExpression": ", ".join(f"#p{n}" for n in range(len(_OPEN_READ) + 1)),
            "ExpressionAttributeNames": {f"#p{n}": name for n, name in enumerate((*_OPEN_READ, key))},
        }
        while True:
            page = self._table.query(**query)
            yield from page.get("Items", [])
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


_OPEN_READ = ("jobId", "updatedAt", *OPEN_JOB_ATTRIBUTES)


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
