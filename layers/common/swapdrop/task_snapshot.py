"""The upstream's task snapshot: what a callback POSTs and what fetch/list-by-condition return.

Implementations add many fields of their own; unknown ones are ignored, and the known
ones are accepted in every shape the implementations are seen to send. Parsing never
raises on upstream data: a snapshot is either usable or refused, and within a usable one
a value that cannot be read is ignored or clamped (and counted), never an exception.

Per field, what makes a refusal and what is only clamped or ignored:

- `id`: text or a whole number, 1-128 characters. Anything else refuses the snapshot
  (it cannot be matched to a job).
- `status`: one of UpstreamStatus, exactly. Anything else refuses the snapshot (we cannot
  know what it means for the job).
- `progress`: '45%', '45', 45, 45.9 → 0-100; out of range is clamped; not finite (NaN,
  ±Infinity, 1e400), not a number, or a boolean is ignored (no progress news).
- `failReason`, `description`: text, truncated past 4,096 characters; other types ignored.
- `action`, `state`: text (truncated past 64 / 256 characters); other types ignored.
- `imageUrl`: text up to 4,096 characters; a longer one or another type is ignored
  (a cut URL is a wrong URL: SUCCESS without a usable URL fails the job with that reason).
- `submitTime`, `startTime`, `finishTime`: epoch milliseconds 0 to year 9999; else ignored.
- `properties`: an object, else ignored.

Text with lone surrogates (valid JSON, but not storable) has them replaced by '?'.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from swapdrop import metric_names

MAX_ID = 128
MAX_TEXT = 4096
_TEXT_LIMITS = {"action": 64, "state": 256, "failReason": MAX_TEXT, "description": MAX_TEXT}
_EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_PERCENT = re.compile(r"^\s*(-?\d{1,30})(?:\.\d*)?\s*%?\s*$")
_DIGITS = re.compile(r"^\s*\d{1,16}\s*$")

IGNORED = metric_names.UPSTREAM_VALUES_IGNORED
CLAMPED = metric_names.UPSTREAM_VALUES_CLAMPED


class UpstreamStatus(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    CANCEL = "CANCEL"


@dataclass(frozen=True, slots=True)
class SnapshotRefusal:
    """Why a snapshot is unusable: `reason` for a person, `errors` one line per field."""

    reason: str
    errors: tuple[str, ...]


class TaskSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=MAX_ID)
    status: UpstreamStatus
    action: str | None = None
    state: str | None = None
    progress: int = Field(default=0, ge=0, le=100)
    imageUrl: str | None = Field(default=None, max_length=MAX_TEXT)
    failReason: str | None = Field(default=None, max_length=MAX_TEXT)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    submitTime: int | None = None
    startTime: int | None = None
    finishTime: int | None = None
    properties: dict[str, Any] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> str:
        # Task ids are 16-digit strings; some relays send them as JSON numbers.
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 10**MAX_ID:
                raise ValueError(f"id is a number of more than {MAX_ID} digits")
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"id must be text or a whole number, not {json_kind(value)}")
        text = value.strip()
        if not text:
            raise ValueError("id is empty")
        if len(text) > MAX_ID:
            raise ValueError(f"id is longer than {MAX_ID} characters")
        if _has_surrogates(text):
            raise ValueError("id is not valid Unicode text")
        return text

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: object, info: ValidationInfo) -> int:
        """'45%', '45', 45, '' or null → 0..100; out of range clamped; unreadable ignored (0)."""
        if value is None or value == "":
            return 0
        number: float | int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value):
            number = int(value)
        elif isinstance(value, str) and len(value) <= 64 and (match := _PERCENT.match(value)):
            number = int(match.group(1))
        if number is None:
            _note(info, "progress", IGNORED)
            return 0
        if not 0 <= number <= 100:
            _note(info, "progress", CLAMPED)
            return min(max(number, 0), 100)
        return int(number)

    @field_validator("action", "state", "failReason", "description", mode="before")
    @classmethod
    def _text(cls, value: object, info: ValidationInfo) -> str | None:
        text = _clean_text(value, info)
        limit = _TEXT_LIMITS[info.field_name or ""]
        if text is not None and len(text) > limit:
            _note(info, info.field_name, CLAMPED)
            return text[: limit - 1] + "…"
        return text

    @field_validator("imageUrl", mode="before")
    @classmethod
    def _image_url(cls, value: object, info: ValidationInfo) -> str | None:
        text = _clean_text(value, info)
        if text is not None and len(text) > MAX_TEXT:
            _note(info, "imageUrl", IGNORED)
            return None
        return text

    @field_validator("submitTime", "startTime", "finishTime", mode="before")
    @classmethod
    def _epoch_ms(cls, value: object, info: ValidationInfo) -> int | None:
        if value is None or value == "":
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and 0 <= value <= _EPOCH_MS_MAX:
            number = int(value)
        elif isinstance(value, str) and _DIGITS.match(value):
            number = int(value.strip())
        if number is None or not 0 <= number <= _EPOCH_MS_MAX:
            _note(info, info.field_name, IGNORED)
            return None
        return number

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: object, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None or isinstance(value, dict):
            return value
        _note(info, "properties", IGNORED)
        return None


def parse_snapshot(value: object) -> TaskSnapshot | SnapshotRefusal:
    """A snapshot, or why not; never raises. Each value ignored or clamped is counted by field."""
    if not isinstance(value, dict):
        kind = json_kind(value)
        return SnapshotRefusal(
            f"a task snapshot is a JSON object, not {kind}", (f"body: expected an object, got {kind}",)
        )
    notes: list[tuple[str, str]] = []
    try:
        snapshot = TaskSnapshot.model_validate(value, context={"notes": notes})
    except ValidationError as error:
        errors = tuple(_error_line(e) for e in error.errors(include_input=False, include_url=False))[:10]
        return SnapshotRefusal("not a task snapshot: " + "; ".join(errors), errors)
    for field, metric in notes:
        _count(metric, field)
    return snapshot


def _error_line(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


def _clean_text(value: object, info: ValidationInfo) -> str | None:
    """Text as text (blank → None, lone surrogates → '?'); any other type is ignored."""
    if value is None:
        return None
    if not isinstance(value, str):
        _note(info, info.field_name, IGNORED)
        return None
    if not value.strip():
        return None
    if _has_surrogates(value):
        _note(info, info.field_name, CLAMPED)
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _note(info: ValidationInfo, field: str | None, metric: str) -> None:
    if isinstance(info.context, dict) and isinstance(info.context.get("notes"), list):
        info.context["notes"].append((field or "?", metric))


def _count(metric: str, field: str) -> None:
    """One EMF line per value, with the field as its own dimension (alarm on the total, read by field)."""
    with single_metric(name=metric, unit=MetricUnit.Count, value=1) as counted:
        counted.add_dimension(name="Field", value=field)


def json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
