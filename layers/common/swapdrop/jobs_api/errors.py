"""The jobs API's one error shape: {"error": {"code", "message", "details"}}, raised as ApiError."""

from __future__ import annotations

from typing import Any

from swapdrop.layout import printable

MAX_SHOWN_INPUT = 80
"""Characters of a caller's input an error message may quote: never echo a huge value back."""


class ApiError(Exception):
    """A refusal for the caller: a stable `code`, the HTTP status, a message for a person."""

    def __init__(self, code: str, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid_request(message: str, details: Any = None) -> ApiError:
    return ApiError("invalid_request", 400, message, details)


def not_found(message: str) -> ApiError:
    return ApiError("not_found", 404, message)


def job_not_found(job_id: str) -> ApiError:
    return not_found(f"no job {shown(job_id)}")


def conflict(code: str, message: str, details: Any = None) -> ApiError:
    return ApiError(code, 409, message, details)


def shown(text: str) -> str:
    """A caller's value fit to quote in a message: printable and short."""
    text = printable(text)
    return text if len(text) <= MAX_SHOWN_INPUT else f"{text[:MAX_SHOWN_INPUT]}…"
