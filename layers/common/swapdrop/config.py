"""The environment, read once into a typed model: a typo fails at cold start, not mid-job."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cache

from pydantic import BaseModel, Field, HttpUrl, field_validator


class AuthStyle(StrEnum):
    """How the swap API wants its key: relays use Bearer, midjourney-proxy uses mj-api-secret."""

    BEARER = "bearer"
    MJ_API_SECRET = "mj-api-secret"  # noqa: S105 - a header name, not a secret


class Settings(BaseModel, frozen=True):
    bucket_name: str = Field(min_length=3)
    jobs_table_name: str = Field(min_length=1)
    open_jobs_index_name: str = "OpenJobsByShard"
    legacy_open_jobs_index_name: str = ""
    """The unsharded OpenJobs index of a stack deployed before the shards: read until dropped ("" : none)."""
    event_bus_name: str = Field(min_length=1)
    upstream_base_url: HttpUrl
    upstream_auth_style: AuthStyle = AuthStyle.BEARER
    upstream_api_key_secret_id: str = Field(min_length=1)
    upstream_instance_id: str = ""
    upstream_timeout_seconds: float = Field(default=30, gt=0, le=300)
    callback_base_url: HttpUrl | None = None
    """Only the submitter needs it; API Gateway's URL cannot be given to the function it calls."""
    callback_token_secret_id: str = Field(min_length=1)
    max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_submit_attempts: int = Field(default=5, ge=1, le=50)
    capacity_retry_seconds: int = Field(default=20, ge=1, le=900)
    """How soon a job waiting for upstream capacity (every pool member full or benched) is tried again
    (jittered 0.5-1.5x; the local stack uses about 1). Such a wait spends no submit attempt."""
    job_timeout_minutes: int = Field(default=60, ge=1)
    """How long a job with an upstream task may run, from its submit (submittedAt)."""
    max_queue_wait_hours: int = Field(default=24, ge=1, le=312)
    """How long a PENDING job may wait for upstream capacity, from its creation (at most 13 days: the submit
    queue's retention, so its message outlives the wait)."""
    reconcile_quiet_seconds: int = Field(default=120, ge=0)
    allow_private_result_urls: bool = False
    # --- the jobs API (ApiFunction); other functions leave these unset ---
    submit_queue_url: str = ""
    """Where the jobs API enqueues {"jobId": …} for the submitter."""
    idempotency_table_name: str = ""
    """Powertools idempotency records for the jobs API's Idempotency-Key header."""
    upload_url_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    """How long a presigned POST (a face or a job's target) stays valid."""
    upload_grace_seconds: int = Field(default=300, ge=0, le=24 * 3600)
    """After a job's upload form expires, how long before the job ends FAILURE "target never uploaded"."""
    result_url_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    """How long the presigned GET in GET /jobs/{jobId}'s `result.url` stays valid."""
    swapdrop_version: str = "dev"
    # --- per-job webhooks ---
    webhook_queue_url: str = ""
    """The WebhookQueue: where finishers hand webhook messages over (empty: webhooks are not handed over)."""
    webhook_dead_letter_queue_url: str = ""
    webhook_secret_id: str = ""
    """WebhookSecret: JSON {"current", "previous"}; see webhook_signing for the receivers' whsec_ keys."""
    webhook_retry_scale: float = Field(default=1.0, gt=0, le=1)
    """Multiplies the webhook retry schedule (1 on AWS; the local stack compresses it)."""
    allow_private_webhook_urls: bool = False
    """Loopback/private webhook receivers: only the local stack's tests turn this on, never AWS."""

    @field_validator("upstream_instance_id", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("callback_base_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def upstream_base(self) -> str:
        return str(self.upstream_base_url).rstrip("/")

    @property
    def callback_base(self) -> str:
        if self.callback_base_url is None:
            raise ValueError("CALLBACK_BASE_URL is not set; the submitter needs it for notifyHook")
        return str(self.callback_base_url).rstrip("/")

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(values)


@cache
def settings() -> Settings:
    """The process's settings; cached for the life of the Lambda container."""
    return Settings.from_environ()
