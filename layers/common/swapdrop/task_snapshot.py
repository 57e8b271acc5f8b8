"""The upstream's task snapshot: what a callback POSTs and what fetch/list-by-condition return.

Implementations add many fields of their own; unknown ones are ignored, and
the known ones are accepted in every shape the implementations are seen to send.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PERCENT = re.compile(r"^\s*(\d{1,3})(?:\.\d+)?\s*%?\s*$")


class UpstreamStatus(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    MODAL = "MODAL"
    IN_PROGRESS = "IN_PROGRESS"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    CANCEL = "CANCEL"


class TaskSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=128)
    status: UpstreamStatus
    action: str | None = None
    state: str | None = None
    progress: int = 0
    imageUrl: str | None = Field(default=None, max_length=4096)
    failReason: str | None = Field(default=None, max_length=4096)
    description: str | None = Field(default=None, max_length=4096)
    submitTime: int | None = None
    startTime: int | None = None
    finishTime: int | None = None
    properties: dict[str, Any] | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        # Task ids are 16-digit strings; some relays send them as JSON numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: object) -> int:
        """'45%', '45', 45, '' or null → 0..100."""
        if value is None or value == "":
            return 0
        if isinstance(value, bool):
            raise ValueError("progress must be a percentage")
        if isinstance(value, int | float):
            number = int(value)
        else:
            match = _PERCENT.match(str(value))
            if not match:
                raise ValueError(f"progress {str(value)[:20]!r} is not a percentage")
            number = int(match.group(1))
        if not 0 <= number <= 100:
            raise ValueError("progress must be between 0% and 100%")
        return number

    @field_validator("imageUrl", "failReason", "description", "state", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
