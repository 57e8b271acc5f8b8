"""What the jobs API does, route by route, on injected stores: the handler only parses and calls here.

Every entrance makes the job record, then the submitter drives it by id (ISSUE7.md, "One job id").
A JWT caller's view is its own jobs: another's job answers 404, never 403.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from swapdrop import state_machine as sm
from swapdrop.job_metrics import record_finished
from swapdrop.job_store import JobStore
from swapdrop.job_updates import JobNotFound, update_job
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.jobs_api import listing
from swapdrop.jobs_api.caller import Caller
from swapdrop.jobs_api.cursor import CursorSigner
from swapdrop.jobs_api.errors import ApiError, conflict, invalid_request, job_not_found, not_found, shown
from swapdrop.jobs_api.models import (
    BatchEntry,
    BatchJobRequest,
    BatchResponse,
    ErrorDetail,
    Face,
    FaceList,
    FaceUploadResponse,
    Health,
    JobLinks,
    JobList,
    JobRequest,
    JobResult,
    JobSummary,
    JobTarget,
    JobView,
    JobWebhook,
    S3KeyTarget,
    Target,
    UploadForm,
    UploadTarget,
    UrlTarget,
    WebhookDeliveryView,
)
from swapdrop.layout import (
    CONTENT_TYPES,
    FACES_PREFIX,
    IMAGE_EXTENSIONS,
    api_result_base,
    extension_of,
    face_key_candidate_prefixes,
    face_name_problem,
    input_key,
    key_problem,
    match_face_keys,
    upload_key,
)
from swapdrop.media_store import MediaStore
from swapdrop.observability import logger, metrics
from swapdrop.url_rules import address_blocked, blocked_literal, url_problem

RETRYABLE = frozenset({JobStatus.FAILURE, JobStatus.CANCELLED, JobStatus.REJECTED})
MAX_WAIT_SECONDS = 25
MAX_REASON = 2000
"""The longest failReason a refused Swap Requested event writes on its REJECTED job."""
_TARGET = TypeAdapter(Target)


class JobSender(Protocol):
    def send_jobs(self, job_ids: list[str]) -> list[str]:
        """Send {"jobId": id} to the SubmitQueue for each id; answers the ids that could not be sent."""


class Finisher(Protocol):
    def finish(self, job: Job, held: str | None = None) -> Job: ...


@dataclass(frozen=True, slots=True)
class ApiPolicy:
    bucket: str
    max_image_bytes: int
    upload_url_seconds: int = 900
    result_url_seconds: int = 300
    allow_private_urls: bool = False
    version: str = "dev"
    allow_private_webhook_urls: bool = False
    """Loopback/private webhook receivers (AllowPrivateWebhookUrls): the local stack's tests only."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class JobsService:
    def __init__(
        self,
        jobs: JobStore,
        media: MediaStore,
        sender: JobSender,
        finisher: Finisher,
        cancel_upstream: Callable[[str, str | None], bool | None],  # (task id, the job's pool member)
        cursors: CursorSigner,
        api_key_set: Callable[[], bool],
        policy: ApiPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs, self._media, self._sender, self._finisher = jobs, media, sender, finisher
        self._cancel_upstream, self._cursors, self._api_key_set = cancel_upstream, cursors, api_key_set
        self._policy, self._clock, self._new_id = policy, clock, new_id
        self._sleep, self._monotonic = sleep, monotonic

    # --- faces --------------------------------------------------------------------------------

    def put_face(self, face: str, content_type: str) -> FaceUploadResponse:
        _check_face(face, ["path", "face"])
        ext = CONTENT_TYPES[content_type]
        others = [k for k in self._face_keys(face) if extension_of(k) != ext]
        if others:
            raise conflict(
                "face_conflict",
                f"face '{shown(face)}' exists as {', '.join(shown(k) for k in others)}: a second extension "
                "would make it ambiguous; DELETE /faces/{face} first, or upload the same type",
                {"existing": others},
            )
        key = f"{FACES_PREFIX}{face}.{ext}"
        return FaceUploadResponse(face=face, key=key, upload=self._upload_form(key, content_type))

    def list_faces(self, limit: int, cursor: str | None) -> FaceList:
        after = self._cursors.decode(cursor, "faces") if cursor else None
        page = self._media.list_objects(FACES_PREFIX, after, limit)
        faces = []
        for obj in page.objects:
            name, dot, ext = obj.key[len(FACES_PREFIX) :].rpartition(".")
            if dot and name and ext.lower() in IMAGE_EXTENSIONS and "/" not in name:
                modified = obj.last_modified or self._clock()
                faces.append(Face(face=name, key=obj.key, bytes=obj.size, lastModified=iso(modified)))
        next_cursor = self._cursors.encode(page.next_after, "faces") if page.next_after else None
        return FaceList(faces=faces, cursor=next_cursor)

    def delete_face(self, face: str) -> None:
        _check_face(face, ["path", "face"])
        keys = self._face_keys(face)
        if not keys:
            raise not_found(f"no face '{shown(face)}'")
        self._media.delete_keys(keys)

    def _face_keys(self, face: str) -> list[str]:
        listed = [key for prefix in face_key_candidate_prefixes(face) for key in self._media.list_keys(prefix)]
        return match_face_keys(face, listed)

    # --- creating jobs ------------------------------------------------------------------------

    def create(self, caller: Caller, request: JobRequest) -> Answer:
        _check_face(request.face, ["body", "face"])
        self._check_webhook(request)
        job, form = self._new_job(
            caller, request.face, request.target, request.metadata, delivery=_delivery(request, request.taskToken)
        )
        if not self._jobs.create(job):
            raise ApiError("internal", 500, "a fresh job id was already taken; send the request again")
        self._enqueue([job])
        return Answer(202, self._view(job, upload=form).model_dump(mode="json", by_alias=True))

    def create_batch(self, caller: Caller, request: BatchJobRequest) -> Answer:
        _check_face(request.face, ["body", "face"])
        self._check_webhook(request)
        entries: list[BatchEntry] = []
        made: list[tuple[int, Job, UploadForm | None]] = []
        for index, raw in enumerate(request.targets):
            try:
                target = _TARGET.validate_python(raw)
                job, form = self._new_job(
                    caller, request.face, target, request.metadata, ["body", "targets", index], _delivery(request)
                )
            except ValidationError as error:
                entries.append(
                    BatchEntry(index=index, error=_detail(_validation_error(error, ["body", "targets", index])))
                )
            except ApiError as error:
                entries.append(BatchEntry(index=index, error=_detail(error)))
            else:
                made.append((index, job, form))
        self._jobs.create_many([job for _, job, _ in made])
        refused = set(self._enqueue([job for _, job, _ in made], fail_all=False))
        for index, job, form in made:
            if job.jobId in refused:
                entries.append(BatchEntry(index=index, error=_detail(_not_queued())))
            else:
                entries.append(BatchEntry(index=index, job=self._view(job, upload=form)))
        entries.sort(key=lambda entry: entry.index)
        return Answer(202, BatchResponse(jobs=entries).model_dump(mode="json", by_alias=True))

    def _new_job(
        self,
        caller: Caller,
        face: str,
        target: UploadTarget | S3KeyTarget | UrlTarget,
        metadata: dict[str, str] | None,
        loc: list[Any] | None = None,
        delivery: dict[str, Any] | None = None,
        origin: str = "api",
    ) -> tuple[Job, UploadForm | None]:
        loc = loc or ["body", "target"]
        now, job_id = self._clock(), self._new_id()
        base: dict[str, Any] = {
            "jobId": job_id,
            "bucket": self._policy.bucket,
            "createdAt": iso(now),
            "updatedAt": iso(now),
            "face": face,
            "origin": origin,
            "requestedBy": caller.id,
            "requesterKind": caller.kind,
            "metadata": dict(metadata) if metadata else None,
            "resultBase": api_result_base(face, job_id),
            **(delivery or {}),
        }
        if isinstance(target, UploadTarget):
            content_type = target.upload.contentType
            key = upload_key(job_id, content_type)
            expires = now + timedelta(seconds=self._policy.upload_url_seconds)
            job = Job(status=JobStatus.AWAITING_UPLOAD, targetKey=key, uploadExpiresAt=iso(expires), **base)
            return job, self._upload_form(key, content_type)
        if isinstance(target, S3KeyTarget):
            version = self._check_s3_target(target.s3Key, [*loc, "s3Key"])
            return Job(status=JobStatus.PENDING, targetKey=target.s3Key, targetVersionId=version, **base), None
        self._check_url(target.url, [*loc, "url"])
        return Job(status=JobStatus.PENDING, targetKey=input_key(job_id), targetUrl=target.url, **base), None

    def _check_s3_target(self, key: str, loc: list[Any]) -> str | None:
        def refuse(message: str) -> ApiError:
            return invalid_request(message, [{"loc": loc, "msg": message}])

        problem = key_problem(key)
        if problem:
            raise refuse(problem)
        if extension_of(key) not in IMAGE_EXTENSIONS:
            raise refuse(
                f"'{shown(key)}' is not an image the API takes: its name must end in .jpg, .jpeg, .png or .webp"
            )
        info = self._media.head(key)
        if info is None:
            raise refuse(f"'{shown(key)}' is not in the bucket")
        limit = self._policy.max_image_bytes
        if info.size > limit:
            raise refuse(f"'{shown(key)}' is {info.size:,} bytes, over the {limit:,}-byte limit (MaxImageBytes)")
        if info.size == 0:
            raise refuse(f"'{shown(key)}' is empty")
        return info.version_id

    def _check_url(self, url: str, loc: list[Any]) -> None:
        """What can be refused at once; the submitter's fetch checks again after resolving the name."""

        def refuse(message: str) -> ApiError:
            return invalid_request(message, [{"loc": loc, "msg": message}])

        problem = url_problem(url, "the target URL")
        if problem:
            raise refuse(problem)
        address = blocked_literal(url, self._policy.allow_private_urls)  # names: checked by the submitter's fetch
        if address is not None:
            raise refuse(f"the target URL's host {address} is a private, loopback or reserved address")

    def _check_webhook(self, request: JobRequest | BatchJobRequest) -> None:
        if request.webhook is not None:
            problem = self.webhook_url_problem(request.webhook.url)
            if problem:
                raise invalid_request(problem, [{"loc": ["body", "webhook", "url"], "msg": problem}])

    def webhook_url_problem(self, url: str) -> str | None:
        """Why a webhook URL is refused at request time (its text, a literal address), or None; names are
        resolved and checked again at every delivery (webhook_sender)."""
        problem = url_problem(url, "the webhook URL")
        if problem:
            return problem
        address = blocked_literal(url, self._policy.allow_private_webhook_urls)
        if address is not None:
            always = address_blocked(address, allow_private=True)
            kind = "link-local, metadata or reserved" if always else "private or loopback"
            return f"the webhook URL's host {address} is a {kind} address; webhooks go to public addresses only"
        return None

    def _upload_form(self, key: str, content_type: str) -> UploadForm:
        seconds = self._policy.upload_url_seconds
        form = self._media.presigned_post(key, content_type, self._policy.max_image_bytes, seconds)
        return UploadForm(
            url=form["url"],
            fields=dict(form["fields"]),
            expiresAt=iso(self._clock() + timedelta(seconds=seconds)),
            maxBytes=self._policy.max_image_bytes,
        )

    def _enqueue(self, jobs: list[Job], fail_all: bool = True) -> list[str]:
        """Send PENDING jobs to the submitter; a job that cannot be sent ends FAILURE (never silently stuck)."""
        pending = [job.jobId for job in jobs if job.status is JobStatus.PENDING]
        if not pending:
            return []
        try:
            refused = self._sender.send_jobs(pending)
        except Exception as error:
            logger.warning("jobs not queued", extra={"error": type(error).__name__, "count": len(pending)})
            refused = pending
        for job_id in refused:
            update_job(
                self._jobs,
                job_id,
                lambda j: sm.record_final_failure(
                    j, self._clock(), "could not queue the job for submission", via="api"
                ),
            )
        if refused and fail_all:
            raise _not_queued()
        return refused

    # --- Swap Requested events ------------------------------------------------------------------

    def create_from_event(self, caller: Caller, request: JobRequest) -> Job:
        """A Swap Requested event's job: POST /jobs's checks and create path, with origin "event". No one
        waits for a 400 here, so a face or target the API would refuse makes a REJECTED job that says why."""
        if isinstance(request.target, UploadTarget):
            raise ValueError("an event's target is s3Key or url: refuse upload targets before")
        try:
            _check_face(request.face, ["detail", "face"])
            self._check_webhook(request)
            delivery = _delivery(request, request.taskToken)
            job, _ = self._new_job(
                caller, request.face, request.target, request.metadata, ["detail", "target"], delivery, "event"
            )
        except ApiError as error:
            if error.status != 400:
                raise
            return self.create_rejected(caller, request, error.message)
        if not self._jobs.create(job):
            raise RuntimeError("a fresh job id was already taken")
        self._enqueue([job], fail_all=False)  # one SQS refused ends FAILURE and says so: nothing to retry here
        return self._jobs.get(job.jobId) or job

    def create_rejected(self, caller: Caller, request: JobRequest, reason: str) -> Job:
        """A request that names a face and a target but cannot run: a REJECTED job with the reason, told
        like any finished job (its event; its webhook and task token when the request was fit to keep them)."""
        target = request.target
        if isinstance(target, UploadTarget):
            raise ValueError("an event's target is s3Key or url: refuse upload targets before")
        now, job_id = self._clock(), self._new_id()
        face = request.face if face_name_problem(request.face) is None else None
        if request.webhook is not None and self.webhook_url_problem(request.webhook.url) is not None:
            request = request.model_copy(update={"webhook": None})  # never told to a refused address
        job = Job(
            jobId=job_id,
            status=JobStatus.PENDING,
            bucket=self._policy.bucket,
            targetKey=target.s3Key if isinstance(target, S3KeyTarget) else input_key(job_id),
            targetUrl=target.url if isinstance(target, UrlTarget) else None,
            createdAt=iso(now),
            updatedAt=iso(now),
            face=face,
            origin="event",
            requestedBy=caller.id,
            requesterKind=caller.kind,
            metadata=dict(request.metadata) if request.metadata else None,
            resultBase=api_result_base(face, job_id) if face else None,
            **_delivery(request, request.taskToken),
        )
        decision = sm.reject(job, now, reason if len(reason) <= MAX_REASON else reason[:MAX_REASON] + "…", via="event")
        if not self._jobs.create(decision.job):
            raise RuntimeError("a fresh job id was already taken")
        record_finished(decision.job)  # born terminal: update_job never sees this transition
        return self._finisher.finish(decision.job, held=decision.claimed)

    # --- reading jobs -------------------------------------------------------------------------

    def get(self, caller: Caller, job_id: str, wait: int = 0) -> JobView:
        job = self._visible(caller, job_id)
        deadline = self._monotonic() + min(max(wait, 0), MAX_WAIT_SECONDS)
        while not _settled(job) and self._monotonic() < deadline:
            self._sleep(min(1.0, deadline - self._monotonic()))
            job = self._visible(caller, job_id)
        return self._view(job)

    def list(
        self,
        caller: Caller,
        face: str | None,
        status: JobStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> JobList:
        since_text = iso(since) if since is not None else None
        until_text = iso(until) if until is not None else None
        scope = "\x00".join(
            (caller.scope, face or "", status.value if status else "", since_text or "", until_text or "")
        )
        before = until_text
        if cursor:
            position = self._cursors.decode(cursor, scope)
            before = position if before is None or position < before else before
        plan = listing.plan_for(caller, face, status.value if status else None)
        found = listing.list_items(self._jobs, plan, limit, before, since_text)
        metrics.add_metric(name="ListItemsRead", unit="Count", value=found.scanned)
        next_cursor = self._cursors.encode(found.items[-1]["listSort"], scope) if found.more else None
        return JobList(jobs=[_summary(item) for item in found.items], cursor=next_cursor)

    def _visible(self, caller: Caller, job_id: str) -> Job:
        job = self._jobs.get(job_id) if _plausible_id(job_id) else None
        if job is None or not caller.may_see(job):
            raise job_not_found(job_id)
        return job

    def _view(self, job: Job, upload: UploadForm | None = None) -> JobView:
        result = None
        if job.resultKey:
            info = self._media.head(job.resultKey)
            url = self._media.presigned_get(job.resultKey, self._policy.result_url_seconds, job.resultVersionId)
            result = JobResult(
                key=job.resultKey,
                url=url,
                contentType=info.content_type if info else None,
                bytes=info.size if info else None,
            )
        return JobView(
            jobId=job.jobId,
            status=job.status,
            progress=job.progress,
            queuePosition=job.queuePosition,
            failReason=job.failReason,
            createdAt=job.createdAt,
            updatedAt=job.updatedAt,
            finishedAt=job.finishedAt,
            face=job.face,
            target=JobTarget(key=job.targetKey, url=job.targetUrl),
            origin=job.origin or "inbox",
            metadata=dict(job.metadata or {}),
            retryOf=job.retryOf,
            retriedBy=job.retriedBy,
            links=_links(job.jobId),
            result=result,
            webhook=_webhook_view(job),
            webhookStatus=job.webhookStatus,
            upload=upload,
        )

    # --- changing jobs ------------------------------------------------------------------------

    def cancel(self, caller: Caller, job_id: str) -> JobView:
        job = self._visible(caller, job_id)
        if job.status.is_terminal:
            raise _finished(job)
        try:
            decision = update_job(self._jobs, job_id, lambda j: sm.cancel(j, self._clock(), "cancelled by request"))
        except JobNotFound:
            raise job_not_found(job_id) from None
        if decision.refusal is not None or not decision.became_terminal:
            raise _finished(decision.job)
        job = self._finisher.finish(decision.job, held=decision.claimed)  # JobsCancelled: counted by update_job
        if job.taskId:
            self._cancel_task(job)
        return self._view(job)

    def _cancel_task(self, job: Job) -> None:
        try:
            answered = self._cancel_upstream(job.taskId or "", job.upstreamMember)  # the member holding the task
        except Exception as error:
            answered, outcome = None, f"error ({type(error).__name__})"
        else:
            outcome = {True: "cancelled", None: "no cancel route", False: "refused"}.get(answered, "refused")
        metrics.add_metric(name="UpstreamCancels" if answered else "UpstreamCancelsMissed", unit="Count", value=1)
        logger.info(
            "upstream cancel",
            extra={"job_id": job.jobId, "task_id": job.taskId, "member": job.upstreamMember, "outcome": outcome},
        )

    def retry(self, caller: Caller, job_id: str) -> Answer:
        old = self._visible(caller, job_id)
        if old.status not in RETRYABLE:
            raise conflict(
                "not_retryable",
                f"job {old.jobId} is {old.status.value}; only {', '.join(sorted(RETRYABLE))} jobs can be retried",
                {"status": old.status.value},
            )
        if old.retriedBy:
            raise _already_retried(old)
        if old.uploadExpiresAt is not None or not old.face:
            why = "its target was never uploaded" if old.uploadExpiresAt is not None else "it has no face"
            raise conflict(
                "not_retryable",
                f"job {old.jobId} cannot be retried: {why}; create a new job",
                {"status": old.status.value},
            )
        now, new_id = self._clock(), self._new_id()
        keep_url = old.targetUrl is not None and self._media.head(old.targetKey) is None
        new = Job(
            jobId=new_id,
            status=JobStatus.PENDING,
            bucket=old.bucket,
            targetKey=old.targetKey,
            targetVersionId=old.targetVersionId,
            targetUrl=old.targetUrl if keep_url else None,
            createdAt=iso(now),
            updatedAt=iso(now),
            face=old.face,
            origin="api",
            requestedBy=old.requestedBy or caller.id,
            requesterKind=old.requesterKind or caller.kind,
            metadata=old.metadata,
            retryOf=old.jobId,
            resultBase=api_result_base(old.face, new_id),
        )
        linked = update_job(self._jobs, old.jobId, lambda j: sm.link_retry(j, self._clock(), new_id))
        if linked.refusal is not None:
            raise _already_retried(linked.job)
        self._jobs.create(new)
        self._enqueue([new])
        return Answer(202, self._view(new).model_dump(mode="json", by_alias=True))

    # --- health -------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            key_set = bool(self._api_key_set())
        except Exception:
            key_set = False
        return Health(version=self._policy.version, apiKeySet=key_set)


def _check_face(face: str, loc: list[Any]) -> None:
    problem = face_name_problem(face)
    if problem:
        raise invalid_request(
            problem if len(problem) < 300 else problem[:300] + "…", [{"loc": loc, "msg": "invalid face name"}]
        )


def _plausible_id(job_id: str) -> bool:
    return 0 < len(job_id) <= 128 and job_id.isprintable()


def _links(job_id: str) -> JobLinks:
    return JobLinks(self_=f"/jobs/{job_id}", cancel=f"/jobs/{job_id}/cancel", retry=f"/jobs/{job_id}/retry")


def _summary(item: dict[str, Any]) -> JobSummary:
    return JobSummary(
        jobId=item["jobId"],
        status=JobStatus(item["status"]),
        face=item.get("face"),
        createdAt=item["createdAt"],
        finishedAt=item.get("finishedAt"),
        failReason=item.get("failReason"),
        origin=item.get("origin"),
        target=JobTarget(key=item.get("targetKey", "")),
        resultKey=item.get("resultKey"),
        links=_links(item["jobId"]),
    )


def _finished(job: Job) -> ApiError:
    return conflict(
        "job_finished", f"job {job.jobId} has already finished: {job.status.value}", {"status": job.status.value}
    )


def _already_retried(job: Job) -> ApiError:
    return conflict(
        "already_retried", f"job {job.jobId} was already retried by {job.retriedBy}", {"retriedBy": job.retriedBy}
    )


def _not_queued() -> ApiError:
    return ApiError("internal", 500, "the job could not be queued for submission; it ended FAILURE: retry it")


def _detail(error: ApiError) -> ErrorDetail:
    return ErrorDetail(code=error.code, message=error.message, details=error.details)


def validation_details(errors: list[dict[str, Any]], prefix: list[Any] | None = None) -> list[dict[str, Any]]:
    """pydantic's errors as [{loc, msg}]: no input echoed back, union tags left out of the path."""
    details = []
    for error in errors[:20]:
        loc: list[Any] = []
        for part in error.get("loc", ()):
            if part in ("single", "batch") or (part in _TARGET_TAGS and loc and loc[-1] == part):
                continue  # a union's tag, not a place in the body
            loc.append(part)
        details.append({"loc": [*(prefix or []), *loc], "msg": str(error.get("msg", "invalid"))[:300]})
    return details


_TARGET_TAGS = frozenset({"upload", "s3Key", "url"})


def _validation_error(error: ValidationError, loc: list[Any]) -> ApiError:
    details = validation_details(error.errors(include_input=False, include_url=False), loc)
    first = details[0] if details else {"loc": loc, "msg": "invalid"}
    return invalid_request(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", details)


def _settled(job: Job) -> bool:
    """What ?wait waits for: a terminal job whose result, if it has one coming, is in the bucket
    (SUCCESS is recorded a moment before the result's copy; a waiter wants `result` in the answer)."""
    return job.status.is_terminal and not job.needs_result_copy


def _delivery(request: JobRequest | BatchJobRequest, task_token: str | None = None) -> dict[str, Any]:
    """The job fields that say who is told when it ends: the webhook and the Step Functions task token."""
    fields: dict[str, Any] = {}
    if request.webhook is not None:
        fields["webhook"] = {"url": request.webhook.url, "events": list(request.webhook.events)}
    if task_token is not None:
        fields["taskToken"] = task_token
    return fields


def _webhook_view(job: Job) -> JobWebhook | None:
    if not job.webhook:
        return None
    deliveries = [
        WebhookDeliveryView(
            webhookId=message_id,
            type=str(record.get("type", "")),
            state=str(record.get("state", "pending")),
            attempts=int(record.get("attempts", 0)),
            lastStatus=int(record["lastStatus"]) if record.get("lastStatus") is not None else None,
            lastError=record.get("lastError"),
            deliveredAt=record.get("deliveredAt"),
        )
        for message_id, record in sorted((job.webhookDeliveries or {}).items())
    ]
    url = str(job.webhook.get("url", ""))
    return JobWebhook(
        url=url.split("?", 1)[0].split("#", 1)[0],
        events=list(job.webhook.get("events") or ["completed"]),
        status=job.webhookStatus,
        deliveries=deliveries,
    )
