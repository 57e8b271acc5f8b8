"""The job record: one per upload, the whole life of a swap."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from swapdrop.url_rules import shown_url


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    """Created by the jobs API with a presigned POST; becomes PENDING when the target arrives."""
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    """Stopped at a person's request (the jobs API); distinct from FAILURE, never sent afterwards."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def rank(self) -> int:
        """Statuses only move to a higher rank."""
        return _RANK[self]


TERMINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REJECTED, JobStatus.CANCELLED})
_RANK = {
    JobStatus.AWAITING_UPLOAD: 0,
    JobStatus.PENDING: 1,
    JobStatus.SUBMITTED: 2,
    JobStatus.IN_PROGRESS: 3,
    JobStatus.SUCCESS: 4,
    JobStatus.FAILURE: 4,
    JobStatus.REJECTED: 4,
    JobStatus.CANCELLED: 4,
}

OPEN_KEY = "openShard"
"""The sparse OpenJobsByShard index's partition key, present only while a job needs the reconciler:
`OPEN#<n>`, n = open_shard(jobId). Every open job's progress write lands on the index too: spread over
OPEN_SHARDS partitions, no one GSI partition takes them all (a throttled GSI throttles the table)."""
OPEN_SHARDS = 16
LEGACY_OPEN_KEY = "openFlag"
OPEN_FLAG = "OPEN"
"""The single partition (`openFlag` = "OPEN") of the OpenJobs index before the shards: never written now,
read by the reconciler from LegacyOpenJobsIndex until it has drained (README: "Migrating OpenJobs")."""
OPEN_JOB_ATTRIBUTES = (
    "status",
    "createdAt",
    "taskId",
    "attempts",
    "leaseUntil",
    "submitInDoubt",
    "uploadExpiresAt",
    "webhookOutbox",
    "upstreamMember",
    "submittedAt",
)
"""What OpenJobsByShard projects (INCLUDE) besides its keys and jobId: what the reconciler decides on
(OpenJob) before it reads or writes the job itself (upstreamMember: which pool member to poll; submittedAt:
when the job timeout starts)."""
LIST_SHARDS = 4
"""Write shards of the low-cardinality list partitions (all jobs, by status, by face): a status
with five values, or one popular face, would otherwise be one hot partition."""
LIST_INDEXES = {
    "JobsByTime": "listAll",
    "JobsByStatus": "listStatus",
    "JobsByFace": "listFace",
    "JobsByOwner": "listOwner",
}
"""The list indexes (GSI name → partition key attribute); each sorts on `listSort` = createdAt#jobId."""
LIST_SORT_KEY = "listSort"
DERIVED_INDEX_KEYS = frozenset({OPEN_KEY, LEGACY_OPEN_KEY, LIST_SORT_KEY, *LIST_INDEXES.values()})
"""Index keys this code derives (in `Job.index_keys`); recomputed on every write, never kept from a read."""
_LEGACY_OUTBOX = frozenset({"eventPending", "resultCopyAttempts", "resultCopyError"})
"""Outbox attributes of the code before `deliveries`: still written (so that code can read new items)
and read from items that lack `deliveries`."""

MAX_HISTORY = 20
"""Transitions kept on a job: enough to see its whole life, bounded so the item stays small."""
VIAS = frozenset({"submit", "callback", "poll", "api", "reconciler", "upload", "event"})

COPY = "copy"
EVENT = "event"
WEBHOOK = "webhook"
"""The job's "completed" webhook, handed to the WebhookQueue (which delivers and retries it)."""
SFN = "sfn"
"""The Step Functions task token, answered with SendTaskSuccess or SendTaskFailure."""
DELIVERY_ORDER = (COPY, EVENT, WEBHOOK, SFN)
"""The outbox's consumers, in order: an entry is worked on only once those before it are finished
(the result is copied before anyone is told the job is done)."""


class DeliveryState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    """Given up after the last attempt; lastError says why."""
    SKIPPED = "skipped"
    """Nothing to do (for example a result superseded by a newer upload); lastError says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One consumer's entry in the job's outbox. A claim is `claimUntil` in the future: one holder at a time."""

    state: DeliveryState = DeliveryState.PENDING
    claimUntil: int | None = None
    attempts: int = 0
    nextAt: int | None = None
    lastError: str | None = None

    @property
    def finished(self) -> bool:
        return self.state is not DeliveryState.PENDING

    def claimable(self, now_epoch: int) -> bool:
        return (
            not self.finished
            and (self.claimUntil is None or self.claimUntil <= now_epoch)
            and (self.nextAt is None or self.nextAt <= now_epoch)
        )

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"state": self.state.value, "attempts": self.attempts}
        for name in ("claimUntil", "nextAt", "lastError"):
            if (value := getattr(self, name)) is not None:
                item[name] = value
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Delivery:
        return cls(
            state=DeliveryState(item.get("state", "pending")),
            claimUntil=_int_or_none(item.get("claimUntil")),
            attempts=int(item.get("attempts", 0)),
            nextAt=_int_or_none(item.get("nextAt")),
            lastError=item.get("lastError"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One status change: from, to, at, and which door it came through (via)."""

    from_: str
    to: str
    at: str
    via: str

    def to_item(self) -> dict[str, str]:
        return {"from": self.from_, "to": self.to, "at": self.at, "via": self.via}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Transition:
        return cls(from_=str(item["from"]), to=str(item["to"]), at=str(item["at"]), via=str(item["via"]))


def webhook_message_id(job_id: str, kind: str, step: int | None = None) -> str:
    """The `webhook-id` of one message: the same on every retry and duplicate, so receivers dedupe on it."""
    return f"msg_{job_id}_{kind}" + (f"_{step}" if step is not None else "")


def list_shard(job_id: str) -> int:
    """The job's write shard in the list indexes: stable, and spread evenly whatever the id's form."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big") % LIST_SHARDS


def open_shard(job_id: str) -> str:
    """The job's OpenJobsByShard partition, OPEN#0 … OPEN#15: stable, spread evenly whatever the id's form."""
    return f"{OPEN_FLAG}#{int.from_bytes(hashlib.sha256(job_id.encode()).digest()[4:8], 'big') % OPEN_SHARDS}"


def open_partitions() -> list[str]:
    return [f"{OPEN_FLAG}#{n}" for n in range(OPEN_SHARDS)]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


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
    """Epoch seconds until which one submitter holds the job (PENDING only). Still set on a PENDING
    job whose lease expired: that attempt ended with no outcome recorded (the worker died), so it may
    have sent the swap, and the next taker looks for its task first."""
    submitInDoubt: bool = False
    """The last attempt's answer was lost after sending (a read timeout): a task may exist upstream."""
    resultVersionId: str | None = None
    """The S3 VersionId of the result this job wrote."""
    targetSequencer: str | None = None
    targetEventTime: str | None = None
    """The S3 event's sequencer and time for the target: which of two uploads of one key is newer."""
    origin: str | None = None
    """Which entrance made the job: None or "inbox" (an upload under inbox/), "api" (POST /jobs or a retry),
    "event" (a Swap Requested event on the stack's bus)."""
    requestedBy: str | None = None
    """Who asked: the JWT's `sub`, the IAM caller's ARN, or a Swap Requested event's `source`."""
    requesterKind: str | None = None
    """"jwt", "iam" or "event": a JWT caller sees only jobs whose requestedBy is its sub and requesterKind is "jwt"."""
    metadata: Mapping[str, str] | None = None
    """The caller's own labels (POST /jobs `metadata`), kept and returned as given."""
    targetUrl: str | None = None
    """A URL target: the submitter fetches it into targetKey (jobs/<jobId>/target) first."""
    uploadExpiresAt: str | None = None
    """AWAITING_UPLOAD: when the presigned POST expires; the reconciler fails the job after it plus a margin."""
    retryOf: str | None = None
    retriedBy: str | None = None
    taskToken: str | None = None
    """A Step Functions task token from the request: answered once when the job ends (outbox `sfn`)."""
    webhook: Mapping[str, Any] | None = None
    """The request's webhook: {"url": ..., "events": ["started", "progress", "completed"]}."""
    webhookOutbox: Mapping[str, Mapping[str, Any]] | None = None
    """started/progress webhook messages not yet handed to the WebhookQueue: {webhook-id: {"type", "at"}}.
    The job stays in the open index (needs_attention) until they are handed over."""
    webhookDeliveries: Mapping[str, Mapping[str, Any]] | None = None
    """What the WebhookFunction did with each message: {webhook-id: {type, attempts, lastStatus,
    lastError, deliveredAt, nextAt, state}} (state: pending | delivered | failed | disabled)."""
    upstreamMember: str | None = None
    """The upstream pool member the task was submitted to (upstream_pool; set with taskId, and when an
    attempt is in doubt, so adoption looks there). None: the pool's first member (jobs from before the pool)."""
    submittedAt: str | None = None
    """When the swap API accepted the task (the job's timeout runs from here, not from its creation)."""
    resultBase: str | None = None
    """The result key without its extension, for jobs outside the drop-folder layout
    (results/<face>/jobs/<jobId>); None: derived from the inbox target key as always."""
    deliveries: Mapping[str, Delivery] = field(default_factory=dict)
    """The outbox, created at the terminal transition: copy, then event (see DELIVERY_ORDER)."""
    history: tuple[Transition, ...] = ()
    """The last MAX_HISTORY status changes, oldest first."""
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Attributes this code does not know (written by another version): kept as they are on every write."""

    # --- the outbox ---------------------------------------------------------------------

    @property
    def next_delivery(self) -> str | None:
        """The first unfinished outbox entry: the only one that may be worked on now."""
        for name in DELIVERY_ORDER:
            entry = self.deliveries.get(name)
            if entry is not None and not entry.finished:
                return name
        return None

    @property
    def needs_result_copy(self) -> bool:
        entry = self.deliveries.get(COPY)
        return entry is not None and not entry.finished

    @property
    def eventPending(self) -> bool:
        """A terminal transition whose EventBridge event is not yet published (outbox)."""
        entry = self.deliveries.get(EVENT)
        return entry is not None and not entry.finished

    @property
    def resultCopyAttempts(self) -> int:
        entry = self.deliveries.get(COPY)
        return entry.attempts if entry is not None else 0

    @property
    def resultCopyError(self) -> str | None:
        """Why there is no result copy, once the copy entry has finished without one."""
        entry = self.deliveries.get(COPY)
        finished_without = entry is not None and entry.finished and entry.state is not DeliveryState.DONE
        return entry.lastError if finished_without else None

    @property
    def needs_attention(self) -> bool:
        """Whether the reconciler must see this job: open, or terminal with outbox work left."""
        return not self.status.is_terminal or self.next_delivery is not None or bool(self.webhookOutbox)

    @property
    def webhookStatus(self) -> str | None:
        """The "completed" webhook's fate: pending | delivered | failed | disabled (None: no webhook for it)."""
        if not self.webhook:
            return None
        records = self.webhookDeliveries or {}
        if any(record.get("state") == "disabled" for record in records.values()):
            return "disabled"
        completed = records.get(webhook_message_id(self.jobId, "completed"), {})
        if completed.get("state") in ("delivered", "failed"):
            return str(completed["state"])
        hand_over = self.deliveries.get(WEBHOOK)
        if hand_over is not None and hand_over.state is DeliveryState.FAILED:
            return "failed"
        if "completed" not in (self.webhook.get("events") or ("completed",)):
            return None
        return "pending"

    def index_keys(self) -> dict[str, str]:
        """Every index key this code derives, in one place (sparse: absent when the job is not listed)."""
        keys = {OPEN_KEY: open_shard(self.jobId)} if self.needs_attention else {}
        shard = list_shard(self.jobId)
        keys[LIST_SORT_KEY] = f"{self.createdAt}#{self.jobId}"
        keys["listAll"] = f"ALL#{shard}"
        keys["listStatus"] = f"{self.status.value}#{shard}"
        if self.face:
            keys["listFace"] = f"{self.face}#{shard}"
        if self.requesterKind == "jwt" and self.requestedBy:
            keys["listOwner"] = self.requestedBy
        return keys

    # --- the DynamoDB item -----------------------------------------------------------------

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = dict(self.extra)
        for spec in fields(self):
            if spec.name in ("extra", "deliveries", "history"):
                continue
            value = getattr(self, spec.name)
            if value is not None and value is not False:
                item[spec.name] = value
        item["status"] = self.status.value
        if self.deliveries:
            item["deliveries"] = {name: entry.to_item() for name, entry in self.deliveries.items()}
        if self.history:
            item["history"] = [t.to_item() for t in self.history]
        # Mirrors for code that predates `deliveries` (rolling deploys): what it reads to decide.
        if self.eventPending:
            item["eventPending"] = True
        if self.resultCopyAttempts:
            item["resultCopyAttempts"] = self.resultCopyAttempts
        if self.resultCopyError is not None:
            item["resultCopyError"] = self.resultCopyError
        item.update(self.index_keys())
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in item.items():
            if name in DERIVED_INDEX_KEYS or name in _LEGACY_OUTBOX:
                continue
            if name not in known or name == "extra":
                extra[name] = value
            elif name == "status":
                values[name] = JobStatus(value)
            elif name == "deliveries":
                values[name] = {str(k): Delivery.from_item(v) for k, v in value.items()}
            elif name == "history":
                values[name] = tuple(Transition.from_item(t) for t in value)
            elif known[name].type in ("int", "int | None") and value is not None:
                values[name] = int(value)
            elif known[name].type == "bool":
                values[name] = bool(value)
            else:
                values[name] = value
        job = cls(**values, extra=extra)
        if "deliveries" not in item and job.status.is_terminal:
            job = _with_legacy_outbox(job, item)
        return job

    def public_view(self) -> dict[str, Any]:
        """The record as users and event consumers see it: no lease, outbox or unknown internals."""
        hidden = {"version", "leaseUntil", "eventPending", "submitInDoubt", "deliveries", "taskToken"}
        hidden |= {"webhookOutbox", "webhookDeliveries"}
        hidden |= {"upstreamMember", "submittedAt"}  # the upstream pool's bookkeeping: operators', not the schemas
        hidden |= DERIVED_INDEX_KEYS | set(self.extra)
        view = {k: v for k, v in self.to_item().items() if k not in hidden}
        # URLs travel on to event consumers and webhook receivers: never their query (a token, a
        # presigned signature), userinfo or fragment.
        if self.webhook and isinstance(self.webhook.get("url"), str):
            view["webhook"] = {**self.webhook, "url": shown_url(self.webhook["url"])}
        if self.targetUrl:
            view["targetUrl"] = shown_url(self.targetUrl)
        if self.webhookStatus is not None:
            view["webhookStatus"] = self.webhookStatus
        return view


def _with_legacy_outbox(job: Job, item: Mapping[str, Any]) -> Job:
    """An item written before `deliveries` existed: rebuild the outbox from its flags."""
    deliveries: dict[str, Delivery] = {}
    copy_attempts = int(item.get("resultCopyAttempts", 0))
    copy_error = item.get("resultCopyError")
    if job.status is JobStatus.SUCCESS and job.imageUrl is not None:
        if job.resultKey is not None:
            deliveries[COPY] = Delivery(state=DeliveryState.DONE, attempts=copy_attempts)
        elif copy_error is not None:
            deliveries[COPY] = Delivery(state=DeliveryState.FAILED, attempts=copy_attempts, lastError=copy_error)
        else:
            deliveries[COPY] = Delivery(attempts=copy_attempts)
    pending = bool(item.get("eventPending"))
    deliveries[EVENT] = Delivery(state=DeliveryState.PENDING if pending else DeliveryState.DONE)
    return replace(job, deliveries=deliveries)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenJob:
    """An open-jobs index item: the projection the reconciler decides on (OPEN_JOB_ATTRIBUTES).

    Not a Job, on purpose: nothing may write it back. To change the job, read it or update it by id."""

    jobId: str
    status: JobStatus
    createdAt: str
    updatedAt: str
    taskId: str | None = None
    attempts: int = 0
    leaseUntil: int | None = None
    submitInDoubt: bool = False
    uploadExpiresAt: str | None = None
    webhookOutbox: bool = False
    """Whether started/progress webhook messages wait to be handed over (their content is not projected)."""
    upstreamMember: str | None = None
    """The pool member holding the job's task (or its submit in doubt); None: recorded before the pool."""
    submittedAt: str | None = None
    """When the upstream accepted the task; None: not yet, or recorded before the field existed."""
    legacy: bool = False
    """Listed by the unsharded OpenJobs index (an item written before the shards): the reconciler moves it."""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> OpenJob:
        return cls(
            jobId=str(item["jobId"]),
            status=JobStatus(item["status"]),
            createdAt=str(item["createdAt"]),
            updatedAt=str(item["updatedAt"]),
            taskId=item.get("taskId"),
            attempts=int(item.get("attempts", 0)),
            leaseUntil=_int_or_none(item.get("leaseUntil")),
            submitInDoubt=bool(item.get("submitInDoubt", False)),
            uploadExpiresAt=item.get("uploadExpiresAt"),
            webhookOutbox=bool(item.get("webhookOutbox")),
            upstreamMember=item.get("upstreamMember") or None,
            submittedAt=item.get("submittedAt") or None,
            legacy=LEGACY_OPEN_KEY in item,
        )
