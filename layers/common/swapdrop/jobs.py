"""The job record: one per upload, the whole life of a swap."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def rank(self) -> int:
        """Statuses only move to a higher rank."""
        return _RANK[self]


TERMINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REJECTED})
_RANK = {
    JobStatus.PENDING: 0,
    JobStatus.SUBMITTED: 1,
    JobStatus.IN_PROGRESS: 2,
    JobStatus.SUCCESS: 3,
    JobStatus.FAILURE: 3,
    JobStatus.REJECTED: 3,
}

OPEN_FLAG = "OPEN"
"""Value of the sparse-index attribute `openFlag`, present only while a job needs the reconciler."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds; sorts lexicographically, as the open-jobs index needs."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    # Attribute names are the DynamoDB attribute names (DESIGN.md, "Job record").
    jobId: str
    status: JobStatus
    bucket: str
    targetKey: str
    createdAt: str
    updatedAt: str
    version: int = 0
    targetVersionId: str | None = None
    face: str | None = None
    sourceKey: str | None = None
    taskId: str | None = None
    progress: int = 0
    imageUrl: str | None = None
    resultKey: str | None = None
    failReason: str | None = None
    attempts: int = 0
    finishedAt: str | None = None
    queuePosition: int | None = None
    lastError: str | None = None
    leaseUntil: int | None = None
    """Epoch seconds until which one submitter holds the job (PENDING only)."""
    resultCopyAttempts: int = 0
    resultCopyError: str | None = None
    eventPending: bool = False
    """A terminal transition whose EventBridge event is not yet published (outbox)."""

    @property
    def needs_result_copy(self) -> bool:
        return (
            self.status is JobStatus.SUCCESS
            and self.resultKey is None
            and self.imageUrl is not None
            and self.resultCopyError is None
        )

    @property
    def needs_attention(self) -> bool:
        """Whether the reconciler must see this job: open, or terminal with work left."""
        return not self.status.is_terminal or self.needs_result_copy or self.eventPending

    def to_item(self) -> dict[str, Any]:
        item = {k: v for k, v in asdict(self).items() if v is not None}
        item["status"] = self.status.value
        if not self.eventPending:
            item.pop("eventPending")
        if self.needs_attention:
            item["openFlag"] = OPEN_FLAG
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in item.items():
            if name not in known:
                continue
            if name == "status":
                value = JobStatus(value)
            elif known[name].type in ("int", "int | None") and value is not None:
                value = int(value)
            elif name == "eventPending":
                value = bool(value)
            values[name] = value
        return cls(**values)

    def public_view(self) -> dict[str, Any]:
        """The record as users and event consumers see it: no lease or outbox internals."""
        hidden = {"version", "leaseUntil", "eventPending"}
        return {k: v for k, v in self.to_item().items() if k not in hidden and k != "openFlag"}
