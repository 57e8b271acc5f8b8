"""Exit codes scripts can rely on, and the one error type commands raise for a person to read."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    JOBS_FAILED = 1
    """A job ended FAILURE, REJECTED or CANCELLED (doctor: a check failed)."""
    USAGE = 2
    """Bad arguments, a bad face name, a missing or non-image file, an unknown job or face."""
    UNREACHABLE = 3
    """The stack was not found, or its endpoints did not answer, or it lacks what the command needs."""
    AUTH = 4
    """Credentials missing or refused (API 401/403, AccessDenied, an unknown or expired key)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT), as shells report it."""


EXIT_CODES_HELP = """\
exit codes:
  0    ok
  1    a job failed, was rejected or cancelled (doctor: a check failed)
  2    usage error: bad arguments, bad face name, missing or non-image file, unknown job or face
  3    stack not found or unreachable (or missing what the command needs)
  4    auth refused: no credentials, or the stack refused them
  130  interrupted (Ctrl-C); jobs keep running"""


class CliError(Exception):
    """What went wrong (one line) and, when there is one, what to do about it."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(exit_code)
        self.hint = hint

    def as_json(self) -> dict:
        return {"error": {"message": self.message, "exitCode": self.exit_code, "hint": self.hint}}
