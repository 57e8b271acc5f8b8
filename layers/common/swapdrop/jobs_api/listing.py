"""GET /jobs: which list index serves a filter, and the newest-first merge of its shards.

Every filter is a key condition on a GSI partition (never a Scan). Low-cardinality partitions
(all jobs, a status, a face) are written to LIST_SHARDS shards (`<value>#<shard>`), so no single
partition is hot; a page queries every shard of its partition and merges them by `listSort`
(createdAt#jobId, unique). A second dimension (face+status, or a JWT owner's face/status) is a
filter on the first one's partition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swapdrop.job_store import JobStore, ListPage, ListQuery
from swapdrop.jobs import LIST_INDEXES, LIST_SHARDS, LIST_SORT_KEY
from swapdrop.jobs_api.caller import Caller


@dataclass(frozen=True, slots=True)
class ListPlan:
    index: str
    partitions: list[str]
    filters: Mapping[str, str] = field(default_factory=dict)


def plan_for(caller: Caller, face: str | None, status: str | None) -> ListPlan:
    filters = {name: value for name, value in (("face", face), ("status", status)) if value is not None}
    if not caller.is_operator:
        return ListPlan("JobsByOwner", [caller.id], filters)  # one owner's jobs: never a hot partition
    shards = range(LIST_SHARDS)
    if face is not None:
        extra = {"status": status} if status is not None else {}
        return ListPlan("JobsByFace", [f"{face}#{s}" for s in shards], extra)
    if status is not None:
        return ListPlan("JobsByStatus", [f"{status}#{s}" for s in shards])
    return ListPlan("JobsByTime", [f"ALL#{s}" for s in shards])


@dataclass
class _Shard:
    """One partition's items, newest first, read a page at a time as the merge needs them."""

    store: JobStore
    query: ListQuery
    buffer: list[dict[str, Any]] = field(default_factory=list)
    next_key: Mapping[str, Any] | None = None
    started: bool = False
    scanned: int = 0

    @property
    def exhausted(self) -> bool:
        return self.started and not self.buffer and self.next_key is None

    def head(self, want: int) -> dict[str, Any] | None:
        """The newest unread item, reading `want` more items when the buffer is empty."""
        while not self.buffer and not self.exhausted:
            query = dataclasses.replace(self.query, start_key=self.next_key, limit=want)
            page: ListPage = self.store.list_page(query)
            self.started, self.next_key = True, page.next_key
            self.scanned += page.scanned
            self.buffer = [item for item in page.items if item[LIST_SORT_KEY] != self.query.before]
        return self.buffer[0] if self.buffer else None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[dict[str, Any]]
    more: bool
    scanned: int
    """Index items read for this page: its cost."""


def list_items(store: JobStore, plan: ListPlan, limit: int, before: str | None, since: str | None) -> ListResult:
    """Up to `limit` index items, newest first, with listSort < `before` and >= `since`."""
    attribute = LIST_INDEXES[plan.index]
    shards = [
        _Shard(
            store,
            ListQuery(
                index=plan.index,
                partition_attribute=attribute,
                partition=partition,
                limit=limit,
                before=before,
                since=since,
                filters=plan.filters,
            ),
        )
        for partition in plan.partitions
    ]
    items: list[dict[str, Any]] = []
    while len(items) < limit:
        want = _read_size(limit - len(items), len(shards), bool(plan.filters))
        heads = [(shard, head) for shard in shards if (head := shard.head(want)) is not None]
        if not heads:
            break
        shard, newest = max(heads, key=lambda pair: pair[1][LIST_SORT_KEY])
        shard.buffer.pop(0)
        items.append(newest)
    more = any(shard.buffer or not shard.exhausted for shard in shards)
    return ListResult(items=items, more=more and bool(items), scanned=sum(s.scanned for s in shards))


FILTERED_READ = 25
"""Items one filtered query reads at least: DynamoDB applies Limit before the filter, so a
sparse filter read in small steps would cost a round trip per few items."""


def _read_size(remaining: int, shards: int, filtered: bool) -> int:
    """How many items to ask a shard for: its even share of what the page still needs, plus one
    (shards fill unevenly; the merge reads more from one only when its buffer runs out). Asking
    every shard for the whole page would read up to LIST_SHARDS times the page."""
    share = -(-remaining // shards) + 1
    return max(share, FILTERED_READ) if filtered else share
