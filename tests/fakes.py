"""Small in-memory stand-ins for Swapdrop's dependencies, shared by the test suites.

Every fake implements the same Protocol as the real adapter it replaces (job_store.JobStore,
media_store.MediaStore, submission.SwapGateway, reconciler.TaskPoller, ...), records what it
was asked, and can be told to fail. None of them opens a socket.
"""

from __future__ import annotations

import copy
import dataclasses
import http
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from swapdrop.job_store import ListPage, ListQuery, VersionConflict
from swapdrop.jobs import (
    LEGACY_OPEN_KEY,
    LIST_INDEXES,
    LIST_SORT_KEY,
    OPEN_FLAG,
    OPEN_JOB_ATTRIBUTES,
    OPEN_KEY,
    Job,
    OpenJob,
    open_shard,
)
from swapdrop.media_store import (
    MAX_LISTED_KEYS,
    ObjectInfo,
    ObjectMissing,
    ObjectPage,
    ObjectTooLarge,
    ResultWrite,
    TargetOrder,
)
from swapdrop.result_download import DownloadedImage
from swapdrop.submission import Outcome, SubmitResult, Upload
from swapdrop.task_snapshot import TaskSnapshot
from swapdrop.upstream import SubmitOutcome, SwapRequest

# --- time ------------------------------------------------------------------------------


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 10, 16, 9, 59, 21, 500_000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    @property
    def epoch(self) -> int:
        return int(self.now.timestamp())


# --- DynamoDB --------------------------------------------------------------------------


class FakeJobStore:
    """job_store.JobStore over a dict of DynamoDB-style items (Job.to_item / Job.from_item).

    `before_next_replace(hook)` runs `hook(store)` just before the next `replace` checks
    the version: the place where a concurrent writer would get in.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []
        """Every item written by create/replace/concurrent_write, in order."""
        self.replace_calls = 0
        self.get_calls = 0
        """GetItem calls: with `replace_calls` and `writes`, what one use case costs in DynamoDB requests."""
        self._hooks: list[Callable[[FakeJobStore], None]] = []
        self.list_queries: list[ListQuery] = []
        self.open_jobs_queries = 0
        self.stale_index_keys_allowed = False
        """True: items may carry an open-index key their job does not need (planted by a test)."""

    # the JobStore protocol
    def get(self, job_id: str) -> Job | None:
        self.get_calls += 1
        item = self.items.get(job_id)
        return Job.from_item(copy.deepcopy(item)) if item is not None else None

    def create(self, job: Job) -> bool:
        if job.jobId in self.items:
            return False
        self._store(job)
        return True

    def replace(self, job: Job, expected_version: int) -> None:
        self.replace_calls += 1
        if self._hooks:
            self._hooks.pop(0)(self)
        stored = self.items.get(job.jobId)
        if stored is None or int(stored.get("version", 0)) != expected_version:
            raise VersionConflict(job.jobId)
        assert job.version == expected_version + 1, "a replace must move the version on by one"
        self._store(job)

    def open_jobs(self, updated_before: str) -> Iterator[OpenJob]:
        """The sparse index: items carrying openShard (or the legacy openFlag), sorted by updatedAt, up to
        the cutoff, projected as OpenJobsByShard projects them (what the reconciler may rely on)."""
        self.open_jobs_queries += 1
        listed = sorted(self.items.values(), key=lambda item: item["updatedAt"])
        for item in listed:
            job = Job.from_item(copy.deepcopy(item))
            in_index = OPEN_KEY in item or item.get(LEGACY_OPEN_KEY) == OPEN_FLAG
            if item.get(OPEN_KEY) is not None:
                assert item[OPEN_KEY] == open_shard(job.jobId), f"openShard is not the job's shard: {item}"
            if not self.stale_index_keys_allowed:
                assert in_index == job.needs_attention, f"openShard out of step with needs_attention: {item}"
            if in_index and item["updatedAt"] <= updated_before:
                # As DynamoJobStore asks: the attributes OpenJobsByShard projects, and the key of the index
                # that listed it (the shard's, else the unsharded OpenJobs index's openFlag).
                key = OPEN_KEY if OPEN_KEY in item else LEGACY_OPEN_KEY
                projected = {k: v for k, v in item.items() if k in ("jobId", "updatedAt", key, *OPEN_JOB_ATTRIBUTES)}
                yield OpenJob.from_item(copy.deepcopy(projected))

    def create_many(self, jobs: list[Job]) -> None:
        for job in jobs:
            assert self.create(job), f"create_many: {job.jobId} exists"

    def list_page(self, query: ListQuery) -> ListPage:
        """A list GSI (jobs.LIST_INDEXES): items with that partition, newest first, sort-key bounds, then
        `Limit` items read and filters applied to them (as DynamoDB does), projected like the index."""
        attribute = LIST_INDEXES[query.index]
        assert attribute == query.partition_attribute
        self.list_queries.append(query)
        sort = LIST_SORT_KEY
        rows = [item for item in self.items.values() if item.get(attribute) == query.partition]
        if query.since is not None:
            rows = [item for item in rows if item[sort] >= query.since]
        if query.before is not None:
            inclusive = query.since is not None  # BETWEEN since AND before
            rows = [item for item in rows if item[sort] < query.before or (inclusive and item[sort] == query.before)]
        rows.sort(key=lambda item: item[sort], reverse=True)
        if query.start_key is not None:
            rows = [item for item in rows if item[sort] < query.start_key[sort]]
        read = rows[: query.limit]
        more = len(rows) > query.limit
        kept = [item for item in read if all(item.get(k) == v for k, v in query.filters.items())]
        projected = [{k: v for k, v in item.items() if k in LIST_PROJECTION} for item in kept]
        next_key = {"jobId": read[-1]["jobId"], sort: read[-1][sort], attribute: query.partition} if more else None
        return ListPage(items=copy.deepcopy(projected), next_key=next_key, scanned=len(read))

    # test helpers
    def put(self, job: Job) -> Job:
        """Seed a job as if it had been written earlier."""
        self._store(job)
        return job

    def before_next_replace(self, hook: Callable[[FakeJobStore], None]) -> None:
        self._hooks.append(hook)

    def concurrent_write(self, job_id: str, change: Callable[[Job], Job]) -> Job:
        """Another writer's successful update: the stored version moves on."""
        current = self.get(job_id)
        assert current is not None
        new = dataclasses.replace(change(current), version=current.version + 1)
        self._store(new)
        return new

    def item(self, job_id: str) -> dict[str, Any]:
        return self.items[job_id]

    def _store(self, job: Job) -> None:
        item = job.to_item()
        self.items[job.jobId] = copy.deepcopy(item)
        self.writes.append(copy.deepcopy(item))


LIST_PROJECTION = frozenset(
    {"jobId", LIST_SORT_KEY, *LIST_INDEXES.values()}
    | {"status", "face", "createdAt", "finishedAt", "targetKey", "resultKey", "failReason"}
    | {"requestedBy", "requesterKind", "origin"}
)
"""What the template's list GSIs project (INCLUDE), plus the table and index keys."""


# --- S3 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenObject:
    key: str
    data: bytes
    content_type: str
    metadata: dict[str, str]


class FakeMediaStore:
    """media_store.MediaStore over a dict of key → bytes (the latest version), plus old versions."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.versions: dict[tuple[str, str], bytes] = {}
        self.writes: list[WrittenObject] = []
        self.reads: list[tuple[str, str | None]] = []
        self.fail_reads_with: BaseException | None = None
        self.fail_writes_with: BaseException | None = None
        self.orders: dict[str, tuple[TargetOrder, str]] = {}
        """key -> (order, job id) of the result in place, as S3 keeps them in its metadata."""
        self.version_ids: dict[str, str] = {}
        self.content_types: dict[str, str] = {}
        self.forms: list[tuple[str, str, int, int]] = []
        """presigned_post calls: (key, content type, max bytes, seconds)."""
        self.deleted: list[str] = []
        self.result_calls = 0
        """S3 calls write_result made (a PutObject, plus a HeadObject when a result was there)."""

    def put(self, key: str, data: bytes, version_id: str | None = None, content_type: str | None = None) -> None:
        self.objects[key] = data
        if version_id is not None:
            self.versions[(key, version_id)] = data
            self.version_ids[key] = version_id
        if content_type is not None:
            self.content_types[key] = content_type

    def head(self, key: str) -> ObjectInfo | None:
        if key not in self.objects:
            return None
        return ObjectInfo(
            key=key,
            size=len(self.objects[key]),
            version_id=self.version_ids.get(key),
            content_type=self.content_types.get(key),
            last_modified=datetime(2024, 10, 16, 9, 0, tzinfo=UTC),
        )

    def list_objects(self, prefix: str, after: str | None, limit: int) -> ObjectPage:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and (after is None or k > after))
        page = [self.head(k) for k in keys[:limit]]
        objects = [info for info in page if info is not None]
        return ObjectPage(objects=objects, next_after=objects[-1].key if len(keys) > limit else None)

    def delete_keys(self, keys: list[str]) -> None:
        self.deleted.extend(keys)
        for key in keys:
            self.objects.pop(key, None)

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        """The form's terms in its fields, so tests can see what was pinned (no signature: no socket, no key)."""
        self.forms.append((key, content_type, max_bytes, expires_in))
        return {
            "url": "https://bkt.s3.amazonaws.com/",
            "fields": {"key": key, "Content-Type": content_type, "x-max-bytes": str(max_bytes)},
        }

    def presigned_get(self, key: str, expires_in: int, version_id: str | None = None) -> str:
        version = f"&versionId={version_id}" if version_id else ""
        return f"https://bkt.s3.amazonaws.com/{key}?X-Amz-Expires={expires_in}{version}"

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))[:MAX_LISTED_KEYS]

    def read(self, key: str, max_bytes: int, version_id: str | None = None) -> bytes:
        self.reads.append((key, version_id))
        if self.fail_reads_with is not None:
            raise self.fail_reads_with
        source = self.objects.get(key) if version_id is None else self.versions.get((key, version_id))
        if source is None:
            raise ObjectMissing(key)
        if len(source) > max_bytes:
            raise ObjectTooLarge(key, len(source), max_bytes)
        return source

    def write(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        if self.fail_writes_with is not None:
            raise self.fail_writes_with
        self.objects[key] = data
        self.writes.append(WrittenObject(key, data, content_type, dict(metadata)))

    def write_result(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str], order: TargetOrder
    ) -> ResultWrite:
        """Same decision as S3MediaStore.write_result (compare-and-set on the target's order)."""
        self.result_calls += 1
        if key in self.orders:
            self.result_calls += 1  # the HeadObject after a refused If-None-Match
            existing, job_id = self.orders[key]
            if existing.newer_than(order):
                return ResultWrite(superseded_by=job_id)
        self.write(key, data, content_type, metadata)
        self.orders[key] = (order, metadata.get("job-id", ""))
        version = f"v{len(self.writes)}"
        self.version_ids[key] = version
        return ResultWrite(version_id=version)


# --- the swap API ------------------------------------------------------------------------


class FakeSwapGateway:
    """submission.SwapGateway with scripted outcomes (an exception in the script is raised)."""

    def __init__(self, *outcomes: SubmitOutcome | BaseException) -> None:
        self.outcomes: list[SubmitOutcome | BaseException] = list(outcomes)
        self.requests: list[SwapRequest] = []
        self.during_submit: Callable[[SwapRequest], None] | None = None
        """Runs while the request is 'in flight' (e.g. a callback that arrives meanwhile)."""
        self.recent: list[TaskSnapshot] | None = None
        """What recent_tasks() answers (None: the API has no task list)."""
        self.recent_calls = 0
        self.cancelled: list[str] = []
        """Task ids cancel_task() was asked to cancel."""
        self.cancel_answer: bool | BaseException | None = True
        """What cancel_task() answers (None: no cancel route), or raises."""
        self.capacity = True
        """What has_capacity() answers (an upstream pool that saw every member full says False)."""
        self.capacity_calls = 0
        self.pool_members: list[str] = ["default"]
        self.recent_members: list[str | None] = []
        """The member each recent_tasks() call asked (None: every member)."""
        self.cancel_members: list[str | None] = []

    def members(self) -> list[str]:
        return list(self.pool_members)

    def has_capacity(self) -> bool:
        self.capacity_calls += 1
        return self.capacity

    def recent_tasks(self, member: str | None = None) -> list[TaskSnapshot] | None:
        self.recent_calls += 1
        self.recent_members.append(member)
        return None if self.recent is None else list(self.recent)

    def cancel_task(self, task_id: str, member: str | None = None) -> bool | None:
        self.cancelled.append(task_id)
        self.cancel_members.append(member)
        if isinstance(self.cancel_answer, BaseException):
            raise self.cancel_answer
        return self.cancel_answer

    def script(self, *outcomes: SubmitOutcome | BaseException) -> None:
        self.outcomes.extend(outcomes)

    def submit_swap(self, request: SwapRequest) -> SubmitOutcome:
        self.requests.append(request)
        if self.during_submit is not None:
            self.during_submit(request)
        if not self.outcomes:
            raise AssertionError("the swap API was called more often than scripted")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class FakePoller:
    """reconciler.TaskPoller: answers from a dict of task id → snapshot, or raises `error`.

    `recent` is what recent_tasks() answers (the task list, newest first); None means the API
    has no task list."""

    def __init__(self, snapshots: Iterable[TaskSnapshot] = ()) -> None:
        self.snapshots: dict[str, TaskSnapshot] = {s.id: s for s in snapshots}
        self.error: BaseException | None = None
        self.calls: list[list[str]] = []
        self.recent: list[TaskSnapshot] | None = None
        self.recent_calls = 0
        self.states: list[dict[str, str]] = []
        """The task_of_state mapping of each list_tasks call."""

    def recent_tasks(self) -> list[TaskSnapshot] | None:
        self.recent_calls += 1
        if self.error is not None:
            raise self.error
        return None if self.recent is None else list(self.recent)

    def list_tasks(self, task_ids: list[str], task_of_state: Mapping[str, str] | None = None) -> list[TaskSnapshot]:
        self.calls.append(list(task_ids))
        self.states.append(dict(task_of_state or {}))
        if self.error is not None:
            raise self.error
        return [self.snapshots[task_id] for task_id in task_ids if task_id in self.snapshots]


class FakeMemberPool:
    """The upstream pool as the reconciler, the jobs API and task recovery use it: one FakePoller per member
    (configured order), `client(member)` resolving as UpstreamPool does (None, "" or unknown: the first)."""

    def __init__(self, members: Mapping[str, FakePoller]) -> None:
        self.pollers = dict(members)
        self.cancelled: list[tuple[str, str | None]] = []
        """(task id, member) of each cancel_task call."""
        self.cancel_answer: bool | BaseException | None = True

    def members(self) -> list[str]:
        return list(self.pollers)

    def client(self, member: str | None) -> FakePoller:
        return self.pollers.get(member or "", next(iter(self.pollers.values())))

    def recent_tasks(self, member: str | None = None) -> list[TaskSnapshot] | None:
        if member is not None:
            return self.client(member).recent_tasks()
        lists = [poller.recent_tasks() for poller in self.pollers.values()]
        return None if all(found is None for found in lists) else [t for found in lists for t in found or ()]

    def cancel_task(self, task_id: str, member: str | None = None) -> bool | None:
        self.cancelled.append((task_id, member))
        if isinstance(self.cancel_answer, BaseException):
            raise self.cancel_answer
        return self.cancel_answer


# --- after-effects ---------------------------------------------------------------------


class FakeEventPublisher:
    """job_events.JobEventPublisher that records the jobs, or fails when told to."""

    def __init__(self) -> None:
        self.published: list[Job] = []
        self.fail_with: BaseException | None = None
        self.attempts = 0

    def job_finished(self, job: Job) -> None:
        self.attempts += 1
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append(job)


class FakeDownloader:
    """finishing.ResultSource: url → DownloadedImage, or an exception to raise."""

    def __init__(self, results: dict[str, DownloadedImage | BaseException] | None = None) -> None:
        self.results: dict[str, DownloadedImage | BaseException] = dict(results or {})
        self.calls: list[str] = []

    def download(self, url: str) -> DownloadedImage:
        self.calls.append(url)
        if url not in self.results:
            raise AssertionError(f"unexpected download of {url}")
        result = self.results[url]
        if isinstance(result, BaseException):
            raise result
        return result


# --- SQS and Lambda ----------------------------------------------------------------------


class FakeSubmitQueue:
    """submit_queue.SubmitQueue: records each defer(queue_arn, receipt_handle, seconds)."""

    def __init__(self) -> None:
        self.deferred: list[tuple[str, str, int]] = []
        self.sent_again: list[tuple[str, str, int]] = []
        """(queue arn, job id, delay) of each job sent again as {"jobId"} (a capacity wait)."""

    def defer(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self.deferred.append((queue_arn, receipt_handle, seconds))

    def send_again(self, queue_arn: str, waits: list[tuple[str, int]]) -> None:
        self.sent_again.extend((queue_arn, job_id, delay) for job_id, delay in waits)


class FakeJobSender:
    """jobs_api.service.JobSender: records the ids sent; `refuse` ids are answered as not sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.refuse: set[str] = set()
        self.fail_with: BaseException | None = None

    def send_jobs(self, job_ids: list[str]) -> list[str]:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.extend(i for i in job_ids if i not in self.refuse)
        return [i for i in job_ids if i in self.refuse]


class FakeSubmitter:
    """submission.Submitter's submit() and submit_job(), answering from a function of the upload
    (`job_answer`: of the job id; by default SUBMITTED)."""

    def __init__(
        self, answer: Callable[[Upload], SubmitResult], job_answer: Callable[[str], SubmitResult] | None = None
    ) -> None:
        self._answer = answer
        self._job_answer = job_answer or (lambda job_id: SubmitResult(job_id, Outcome.SUBMITTED))
        self.calls: list[tuple[Upload, int]] = []
        self.job_calls: list[tuple[str, int]] = []

    def submit(self, upload: Upload, lease_seconds: int) -> SubmitResult:
        self.calls.append((upload, lease_seconds))
        return self._answer(upload)

    def submit_job(self, job_id: str, lease_seconds: int) -> SubmitResult:
        self.job_calls.append((job_id, lease_seconds))
        return self._job_answer(job_id)


@dataclass
class FakeLambdaContext:
    function_name: str = "swapdrop-TestFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:swapdrop-TestFunction"
    aws_request_id: str = "5b1e3f1c-0000-4000-8000-000000000001"
    remaining_millis: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


# --- HTTP without sockets -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the fake server answers: status, headers, body (bytes, or JSON-able via json_body)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        data = json.dumps(payload, ensure_ascii=False).encode()
        return cls(status, data, {"Content-Type": "application/json", **(headers or {})})


@dataclass
class RecordedRequest:
    method: str
    url: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    timeout: Any
    body_kind: str
    """'none', 'bytes', 'file-like' or 'iterable': how requests handed the body over."""

    def json(self) -> Any:
        return json.loads(self.body)


class TrackingStream(io.BytesIO):
    """A response body that counts what was read from it."""

    def __init__(self, data: bytes, fail_after: int | None = None, error: BaseException | None = None) -> None:
        super().__init__(data)
        self.bytes_read = 0
        self._fail_after = fail_after
        self._error = error

    def read(self, size: int | None = -1) -> bytes:
        if self._fail_after is not None and self.bytes_read >= self._fail_after and self._error is not None:
            raise self._error
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


Responder = Callable[[RecordedRequest], "Reply | BaseException | requests.Response"]


class RecordingAdapter(BaseAdapter):
    """A requests transport adapter that never touches the network.

    Mount it on a real requests.Session: requests prepares the request for real (URL,
    headers, Content-Length, streamed bodies); the adapter reads the whole body, records
    it, and answers with a constructed requests.Response (or raises a scripted exception).
    """

    def __init__(self, replies: Iterable[Reply | BaseException] | Responder) -> None:
        super().__init__()
        if callable(replies):
            self._responder: Responder = replies
        else:
            queue = list(replies)

            def scripted(_: RecordedRequest) -> Reply | BaseException:
                if not queue:
                    raise AssertionError("more HTTP requests than scripted replies")
                return queue.pop(0)

            self._responder = scripted
        self.requests: list[RecordedRequest] = []
        self.streams: list[TrackingStream] = []

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        body, kind = read_body(request.body)
        recorded = RecordedRequest(
            method=request.method or "",
            url=request.url or "",
            headers=CaseInsensitiveDict(request.headers),
            body=body,
            timeout=timeout,
            body_kind=kind,
        )
        self.requests.append(recorded)
        answer = self._responder(recorded)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, requests.Response):
            answer.request = request
            return answer
        return self.build_response(request, answer)

    def build_response(self, request: requests.PreparedRequest, reply: Reply) -> requests.Response:
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        raw = TrackingStream(reply.body)
        self.streams.append(raw)
        response.raw = raw
        response.url = request.url or ""
        response.request = request
        response.encoding = get_encoding_from_headers(response.headers)
        try:
            response.reason = http.HTTPStatus(reply.status).phrase
        except ValueError:
            response.reason = "Unknown"
        return response

    def close(self) -> None:
        pass


def read_body(body: Any) -> tuple[bytes, str]:
    """The whole request body as bytes, however requests passes it on."""
    if body is None:
        return b"", "none"
    if isinstance(body, bytes):
        return body, "bytes"
    if isinstance(body, str):
        return body.encode(), "bytes"
    if hasattr(body, "read"):
        chunks = []
        while True:
            chunk = body.read(8192)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), "file-like"
    return b"".join(body), "iterable"


@dataclass
class PinnedRequest:
    """One GET made through FakePools: where it connected (address) and what it asked for."""

    scheme: str
    address: str
    port: int
    host: str
    method: str
    target: str
    headers: dict[str, str]
    timeout: Any
    """(connect, read) seconds."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.headers.get('Host', self.host)}{self.target}"


class FakePinnedResponse:
    """The part of a urllib3 response the result downloader uses, reading from a TrackingStream."""

    def __init__(self, reply: Reply, stream: io.IOBase | None = None) -> None:
        self.status = reply.status
        self.headers = CaseInsensitiveDict(reply.headers)
        self.stream = stream if stream is not None else TrackingStream(reply.body)
        self.closed = False

    def read1(self, amount: int, decode_content: bool = True) -> bytes:
        return self.stream.read(amount)

    def close(self) -> None:
        self.closed = True


PinnedResponder = Callable[[PinnedRequest], "Reply | BaseException | FakePinnedResponse"]


class FakePools:
    """A pinned_http.PoolFactory that never touches the network: records which address each
    request was sent to and answers with scripted replies (like RecordingAdapter, for urllib3)."""

    def __init__(self, replies: Iterable[Reply | BaseException] | PinnedResponder) -> None:
        if callable(replies):
            self._responder: PinnedResponder = replies
        else:
            queue = list(replies)

            def scripted(_: PinnedRequest) -> Reply | BaseException:
                if not queue:
                    raise AssertionError("more HTTP requests than scripted replies")
                return queue.pop(0)

            self._responder = scripted
        self.requests: list[PinnedRequest] = []
        self.responses: list[FakePinnedResponse] = []
        self.opened = 0
        self.closed = 0

    @property
    def streams(self) -> list[Any]:
        return [response.stream for response in self.responses]

    def __call__(self, scheme: str, address: str, port: int, host: str, timeout: float) -> Any:
        self.opened += 1
        pools = self

        class Pool:
            def urlopen(self, method: str, url: str, **kwargs: Any) -> FakePinnedResponse:
                limit = kwargs.get("timeout")
                request = PinnedRequest(
                    scheme, address, port, host, method, url, dict(kwargs.get("headers") or {}),
                    (limit.connect_timeout, limit.read_timeout) if limit is not None else None,
                )  # fmt: skip
                pools.requests.append(request)
                answer = pools._responder(request)
                if isinstance(answer, BaseException):
                    raise answer
                response = answer if isinstance(answer, FakePinnedResponse) else FakePinnedResponse(answer)
                pools.responses.append(response)
                return response

            def close(self) -> None:
                pools.closed += 1

        return Pool()


def session_with(adapter: RecordingAdapter) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the machine running the tests
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
