"""Tasks as the swap API keeps them, what was submitted, and task ids."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .faults import TaskFaults

NOT_START = "NOT_START"
SUBMITTED = "SUBMITTED"
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
CANCEL = "CANCEL"
TERMINAL = frozenset({SUCCESS, FAILURE, CANCEL})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SubmittedSwap:
    """One submit request that passed authentication, as received (images decoded when they could be)."""

    headers: dict[str, str]
    body: dict[str, Any]
    source: bytes
    target: bytes
    source_mime: str
    target_mime: str


class TaskIds:
    """16-digit ids as trueai makes them: epoch milliseconds and 3 random digits; never twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            candidate = now_ms() * 1000 + secrets.randbelow(1000)
            self._last = max(candidate, self._last + 1)
            return str(self._last)


@dataclass(eq=False)
class Task:
    id: str
    notify_hook: str
    state: str
    status: str = NOT_START
    progress: str = "0%"
    image_url: str | None = None
    fail_reason: str | None = None
    submit_time: int = field(default_factory=now_ms)
    start_time: int | None = None
    finish_time: int | None = None
    instance_id: str = ""
    source: bytes = field(default=b"", repr=False)
    target: bytes = field(default=b"", repr=False)
    source_mime: str = "image/png"
    target_mime: str = "image/png"
    image: bytes | None = field(default=None, repr=False)
    """The result image (served at imageUrl)."""
    image_expires_at: float | None = None
    """time.monotonic() after which imageUrl answers the expired status."""
    faults: TaskFaults = field(default_factory=TaskFaults)
    callbacks_sent: int = 0
    """Callback POSTs attempted for this task (delivered or failed; not dropped ones)."""
    callbacks_dropped: int = 0
    held_callbacks: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """Snapshots held back by reorder_callbacks until the task ends."""
    nonce: str = field(default_factory=lambda: str(secrets.randbelow(10**18)))
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def update_if_open(self, **changes: Any) -> dict[str, Any] | None:
        """As update, unless the task has ended (a cancel got there first): then None, nothing changed."""
        with self.lock:
            return None if self.terminal else self.update(**changes)

    def update(self, **changes: Any) -> dict[str, Any]:
        """Change fields together; returns the snapshot right after the change."""
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            use_time = self.finish_time - self.start_time if self.finish_time is not None and self.start_time else None
            return {
                "id": self.id,
                "action": "SWAP_FACE",
                "status": self.status,
                "prompt": None,
                "promptEn": None,
                "description": "",
                "state": self.state,
                "submitTime": self.submit_time,
                "startTime": self.start_time,
                "finishTime": self.finish_time,
                "imageUrl": self.image_url,
                "progress": self.progress,
                "failReason": self.fail_reason,
                "properties": {},
                "buttons": [],
                # What real implementations add and receivers must ignore:
                "botType": "INSIGHT_FACE",
                "instanceId": self.instance_id,
                "mode": "FAST",
                "nonce": self.nonce,
                "seed": None,
                "isReplicate": True,
                "useTime": use_time,
                "imageUrls": [{"url": self.image_url}] if self.image_url else [],
            }
