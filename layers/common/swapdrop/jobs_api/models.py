"""The jobs API's request and response bodies. They validate input and generate api/openapi.yaml."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from swapdrop.jobs import JobStatus

ContentType = Literal["image/jpeg", "image/png", "image/webp"]
MAX_BATCH = 100
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
MAX_KEY_CHARS = 1024
MAX_URL_CHARS = 2048
JOB_ID_EXAMPLE = "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """Why a request was refused."""

    model_config = ConfigDict(title="ErrorDetail")
    code: str = Field(
        description="Stable, machine-readable: invalid_request, not_found, job_finished, not_retryable, "
        "already_retried, face_conflict, idempotency_key_reused, idempotency_in_progress, payload_too_large, "
        "unsupported_media_type, method_not_allowed, unauthenticated, internal.",
        examples=["not_found"],
    )
    message: str = Field(description="For a person: what is wrong and how to fix it.", examples=["no job 42"])
    details: Any = Field(
        default=None,
        description="invalid_request: a list of {loc, msg}; job_finished: {status}; otherwise null or an object.",
    )


class ErrorResponse(BaseModel):
    """Every error the API answers, whatever the route or status."""

    model_config = ConfigDict(
        title="Error",
        json_schema_extra={"examples": [{"error": {"code": "not_found", "message": "no job 42", "details": None}}]},
    )
    error: ErrorDetail


# --- uploads --------------------------------------------------------------------------------


class UploadForm(BaseModel):
    """A presigned S3 POST: send `fields` first, then the file as the form field `file`, to `url`."""

    model_config = ConfigDict(title="UploadForm")
    url: str = Field(description="Where to POST the multipart form.", examples=["https://bkt.s3.amazonaws.com/"])
    fields: dict[str, str] = Field(description="Form fields to send as given (key, policy, signature, Content-Type).")
    expiresAt: str = Field(description="When the form stops working (ISO-8601 UTC).", examples=["2024-10-16T10:14:21Z"])
    maxBytes: int = Field(description="The largest file the form accepts.", examples=[10485760])


class FaceUploadRequest(_Body):
    """Which image type the face will be uploaded as."""

    model_config = ConfigDict(
        title="FaceUploadRequest", json_schema_extra={"examples": [{"contentType": "image/jpeg"}]}
    )
    contentType: ContentType = Field(description="The image's MIME type; the form pins it.")


class FaceUploadResponse(BaseModel):
    model_config = ConfigDict(title="FaceUploadResponse")
    face: str = Field(examples=["alice"])
    key: str = Field(description="Where the face will be: faces/<face>.<ext>.", examples=["faces/alice.jpg"])
    upload: UploadForm


class Face(BaseModel):
    model_config = ConfigDict(title="Face")
    face: str = Field(examples=["alice"])
    key: str = Field(examples=["faces/alice.jpg"])
    bytes: int = Field(examples=[48213])
    lastModified: str = Field(description="ISO-8601 UTC.", examples=["2024-10-16T09:59:21.500Z"])


class FaceList(BaseModel):
    model_config = ConfigDict(title="FaceList")
    faces: list[Face]
    cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page; null on the last.")


# --- creating jobs --------------------------------------------------------------------------


class UploadSpec(_Body):
    model_config = ConfigDict(title="UploadSpec")
    contentType: ContentType = Field(description="The target's MIME type; the upload form pins it.")


class UploadTarget(_Body):
    """The target is sent afterwards with the presigned POST in the answer's `upload`."""

    model_config = ConfigDict(
        title="UploadTarget", json_schema_extra={"examples": [{"upload": {"contentType": "image/png"}}]}
    )
    upload: UploadSpec


class S3KeyTarget(_Body):
    """An image already in the stack's bucket."""

    model_config = ConfigDict(title="S3KeyTarget", json_schema_extra={"examples": [{"s3Key": "inbox/alice/beach.jpg"}]})
    s3Key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)


class UrlTarget(_Body):
    """An http(s) URL Swapdrop fetches (SSRF rules as for result downloads) and keeps as the job's input."""

    model_config = ConfigDict(
        title="UrlTarget", json_schema_extra={"examples": [{"url": "https://example.com/beach.jpg"}]}
    )
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)


def _target_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, dict):
        return None
    kinds = [kind for kind in ("upload", "s3Key", "url") if kind in value]
    return kinds[0] if len(kinds) == 1 else None


Target = Annotated[
    Annotated[UploadTarget, Tag("upload")] | Annotated[S3KeyTarget, Tag("s3Key")] | Annotated[UrlTarget, Tag("url")],
    Discriminator(
        _target_kind,
        custom_error_type="target_kind",
        custom_error_message="a target is an object with exactly one of 'upload', 's3Key' or 'url'",
    ),
]

Metadata = Annotated[
    dict[str, str],
    Field(
        max_length=MAX_METADATA_KEYS,
        description=f"Your own labels, kept and returned as given: at most {MAX_METADATA_KEYS} keys of 1.."
        f"{MAX_METADATA_KEY_CHARS} characters, string values of at most {MAX_METADATA_VALUE_CHARS} characters.",
        examples=[{"order": "A-1042"}],
    ),
]


WEBHOOK_EVENTS = ("started", "progress", "completed")
MAX_TASK_TOKEN_CHARS = 1024
"""Step Functions task tokens are at most 1024 characters."""


class WebhookRequest(_Body):
    """Where to tell about this job, signed as Standard Webhooks; `events` default to ["completed"]."""

    model_config = ConfigDict(
        extra="forbid",
        title="WebhookRequest",
        json_schema_extra={"examples": [{"url": "https://example.com/hooks/swapdrop", "events": ["completed"]}]},
    )
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    events: list[Literal["started", "progress", "completed"]] = Field(
        default_factory=lambda: ["completed"], min_length=1, max_length=3
    )

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each event may be named once")
        return value


class _WithMetadata(_Body):
    metadata: Metadata | None = None
    webhook: WebhookRequest | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, item in (value or {}).items():
            if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
                raise ValueError(f"metadata keys must be 1 to {MAX_METADATA_KEY_CHARS} characters")
            if len(item) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"metadata values must be at most {MAX_METADATA_VALUE_CHARS} characters")
        return value


class JobRequest(_WithMetadata):
    """One swap: `face` (faces/<face>.<ext> must exist when the job is submitted) onto `target`."""

    model_config = ConfigDict(
        title="JobRequest",
        json_schema_extra={"examples": [{"face": "alice", "target": {"upload": {"contentType": "image/jpeg"}}}]},
    )
    face: str = Field(min_length=1, max_length=128, examples=["alice"])
    target: Target
    taskToken: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TASK_TOKEN_CHARS,
        description="A Step Functions task token: answered with SendTaskSuccess or SendTaskFailure when the job ends.",
    )


class BatchJobRequest(_WithMetadata):
    """Up to 100 swaps of one face; each target is created or refused on its own."""

    model_config = ConfigDict(
        title="BatchJobRequest",
        json_schema_extra={
            "examples": [
                {"face": "alice", "targets": [{"s3Key": "inbox/x/a.jpg"}, {"url": "https://example.com/b.png"}]}
            ]
        },
    )
    face: str = Field(min_length=1, max_length=128, examples=["alice"])
    targets: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Each item is a target as in JobRequest.target (UploadTarget, S3KeyTarget or UrlTarget); "
        "a bad item is refused in its own entry of the answer.",
        json_schema_extra={
            "items": {
                "oneOf": [
                    {"$ref": "#/components/schemas/UploadTarget"},
                    {"$ref": "#/components/schemas/S3KeyTarget"},
                    {"$ref": "#/components/schemas/UrlTarget"},
                ]
            }
        },
    )


def _request_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "targets" in value else "single"


CreateJobsBody = Annotated[
    Annotated[JobRequest, Tag("single")] | Annotated[BatchJobRequest, Tag("batch")],
    Discriminator(_request_kind),
]


# --- job views ------------------------------------------------------------------------------


class JobTarget(BaseModel):
    model_config = ConfigDict(title="JobTarget")
    key: str = Field(description="The target's key in the bucket.", examples=[f"uploads/{JOB_ID_EXAMPLE}/target.jpg"])
    url: str | None = Field(default=None, description="The URL the target was (or will be) fetched from.")


class JobResult(BaseModel):
    model_config = ConfigDict(title="JobResult")
    key: str = Field(examples=[f"results/alice/jobs/{JOB_ID_EXAMPLE}.jpg"])
    url: str = Field(description="A presigned GET, valid for a short, configurable time (ResultUrlSeconds).")
    contentType: str | None = Field(default=None, examples=["image/jpeg"])
    bytes: int | None = Field(default=None, examples=[61234])


class JobLinks(BaseModel):
    model_config = ConfigDict(title="JobLinks", populate_by_name=True)
    self_: str = Field(alias="self", examples=[f"/jobs/{JOB_ID_EXAMPLE}"])
    cancel: str = Field(examples=[f"/jobs/{JOB_ID_EXAMPLE}/cancel"])
    retry: str = Field(examples=[f"/jobs/{JOB_ID_EXAMPLE}/retry"])


class WebhookDeliveryView(BaseModel):
    """One webhook message's delivery, as the WebhookFunction recorded it."""

    model_config = ConfigDict(title="WebhookDelivery")
    webhookId: str = Field(description="The message's `webhook-id` header (the same on every retry).")
    type: str = Field(examples=["completed"])
    state: str = Field(description="pending | delivered | failed | disabled", examples=["delivered"])
    attempts: int = Field(ge=0, examples=[3])
    lastStatus: int | None = Field(default=None, examples=[200])
    lastError: str | None = None
    deliveredAt: str | None = None


class JobWebhook(BaseModel):
    """The job's webhook: where (without the URL's query), which events, and what became of each message."""

    model_config = ConfigDict(title="JobWebhook")
    url: str = Field(description="The webhook URL without its query string.")
    events: list[str]
    status: str | None = Field(
        default=None, description="The completed message's fate: pending | delivered | failed | disabled."
    )
    deliveries: list[WebhookDeliveryView] = Field(default_factory=list)


class JobView(BaseModel):
    """The public job record."""

    model_config = ConfigDict(title="Job")
    jobId: str = Field(examples=[JOB_ID_EXAMPLE])
    status: JobStatus
    progress: int = Field(ge=0, le=100, examples=[45])
    queuePosition: int | None = None
    failReason: str | None = None
    createdAt: str = Field(examples=["2024-10-16T09:59:21.500Z"])
    updatedAt: str = Field(examples=["2024-10-16T10:00:02.113Z"])
    finishedAt: str | None = None
    face: str | None = Field(default=None, examples=["alice"])
    target: JobTarget
    origin: str = Field(
        default="inbox",
        description="'inbox' (the drop folder), 'api' (POST /jobs, a retry) or 'event' (a Swap Requested event).",
    )
    metadata: dict[str, str] = Field(default_factory=dict)
    retryOf: str | None = None
    retriedBy: str | None = None
    links: JobLinks
    result: JobResult | None = None
    webhook: JobWebhook | None = None
    webhookStatus: str | None = Field(
        default=None, description="The completed webhook's fate: pending | delivered | failed | disabled."
    )
    upload: UploadForm | None = Field(
        default=None, description="Only in the answer that created an upload job: the presigned POST for the target."
    )


class BatchEntry(BaseModel):
    model_config = ConfigDict(title="BatchEntry")
    index: int = Field(description="The target's position in `targets`.", examples=[0])
    job: JobView | None = None
    error: ErrorDetail | None = None


class BatchResponse(BaseModel):
    model_config = ConfigDict(title="BatchResponse")
    jobs: list[BatchEntry] = Field(description="One entry per target, in order: a job or an error.")


class JobSummary(BaseModel):
    """A job as the list shows it (from the list indexes: no progress, no presigned result URL)."""

    model_config = ConfigDict(title="JobSummary")
    jobId: str = Field(examples=[JOB_ID_EXAMPLE])
    status: JobStatus
    face: str | None = None
    createdAt: str
    finishedAt: str | None = None
    failReason: str | None = None
    origin: str | None = Field(default=None, description="'inbox' (the drop folder), 'api' or 'event'.")
    target: JobTarget
    resultKey: str | None = None
    links: JobLinks


class JobList(BaseModel):
    model_config = ConfigDict(title="JobList")
    jobs: list[JobSummary] = Field(description="Newest first.")
    cursor: str | None = Field(default=None, description="Pass as ?cursor= (with the same filters) for the next page.")


class Health(BaseModel):
    model_config = ConfigDict(title="Health")
    version: str = Field(examples=["1.4.0"])
    apiKeySet: bool = Field(description="Whether the swap API's key is set (not the stack's placeholder).")
