"""The emulator's settings (one dataclass, shared by the Python API and the CLI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Engine = Callable[[bytes, bytes], bytes]
"""(source image, target image) -> PNG bytes; raises with the failReason as its message."""

AUTH_STYLES = ("bearer", "mj-api-secret", "none")
UNKNOWN_TASK_STYLES = ("empty", "null", "404")
EXPIRED_STATUSES = (403, 404, 410)
MIB = 1024 * 1024


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    api_key: str = "test-api-key"
    auth_style: str = "bearer"
    """bearer (`Authorization: Bearer <key>`, relays), mj-api-secret (novicezk's header) or none."""
    engine: Engine | None = None
    """None: the real face swap (swapdrop_emulator.faceswap, imported on first use)."""
    auto_run: bool = True
    """False: tasks stay SUBMITTED until a test drives them (progress/succeed/fail)."""
    concurrency: int = 2
    """Tasks run at once; later ones wait in the queue (novicezk's core pool size)."""
    queue_size: int = 10
    """Tasks that may wait for a worker; one more is refused with `queue_full_code`."""
    queue_full_code: int = 23
    """23 QUEUE_REJECTED (novicezk) or 9 FAILURE (trueai's "queue full, try later")."""
    step_delay: float = 0.05
    """Seconds between two lifecycle steps (SUBMITTED, each IN_PROGRESS step, the end)."""
    progress_steps: Sequence[int] = (15, 45, 80)
    """IN_PROGRESS percentages reported before the end; the engine runs after the first."""
    result_ttl_seconds: float | None = None
    """Result images answer `expired_status` this long after the task finished (None: never)."""
    expired_status: int = 404
    """404 (CDN-style), 410 or 403 (an expired presigned URL)."""
    max_image_bytes: int = 10 * MIB
    """Decoded size limit per image (the real default is 10 MiB)."""
    max_body_bytes: int | None = None
    """Request body limit (HTTP 413 above it); None: enough for two images at the limit."""
    unknown_task: str = "empty"
    """What fetch answers for an unknown id: empty (novicezk: HTTP 200, empty body), null, 404."""
    notify_hook: str = ""
    """The global hook, used for tasks submitted without a notifyHook (as novicezk's setting)."""
    callback_workers: int = 4
    """Threads that deliver callbacks; with more than 1 the order is not guaranteed."""
    callback_timeout: float = 10.0
    public_url: str | None = None
    """Base of the imageUrl values (default: the emulator's own URL)."""
    instance_id: str = "emulator-1"
    """The instanceId reported when the submit named no accountFilter.instanceId."""
    faults: Sequence[str] = ()
    """Per-run (sticky) fault specs, e.g. ["latency=0.5", "code=23@0.3"]; see faults.py."""
    seed: int | None = None
    """Seed for probabilistic faults and shuffled callbacks (None: unpredictable)."""
    timeout_hold_seconds: float = 30.0
    """How long a `timeout` fault holds the connection without answering (stop() cuts it short)."""
    task_list: bool = True
    """Whether ``GET /mj/task/list`` exists (trueai has it); False answers 404, as relays that hide it."""
    cancel: bool = True
    """Whether ``POST /mj/task/{id}/cancel`` exists (trueai has it); False answers 404, as relays that lack it."""
    drip_length: int = 1_000_000
    """The Content-Length a `drip` fault declares for the result image."""

    def __post_init__(self) -> None:
        self.auth_style = str(getattr(self.auth_style, "value", self.auth_style)).strip().lower()
        if self.auth_style not in AUTH_STYLES:
            raise ValueError(f"auth_style must be one of {', '.join(AUTH_STYLES)}, not {self.auth_style!r}")
        if self.auth_style != "none" and not self.api_key:
            raise ValueError("api_key must not be empty unless auth_style is 'none'")
        if self.unknown_task not in UNKNOWN_TASK_STYLES:
            raise ValueError(f"unknown_task must be one of {', '.join(UNKNOWN_TASK_STYLES)}")
        if self.expired_status not in EXPIRED_STATUSES:
            raise ValueError(f"expired_status must be one of {EXPIRED_STATUSES}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must not be negative")
        if self.callback_workers < 1:
            raise ValueError("callback_workers must be at least 1")
        if self.step_delay < 0 or self.timeout_hold_seconds < 0 or self.callback_timeout <= 0:
            raise ValueError("step_delay and timeout_hold_seconds must be >= 0, callback_timeout > 0")
        if self.drip_length < 1:
            raise ValueError("drip_length must be positive")
        if self.max_image_bytes < 1:
            raise ValueError("max_image_bytes must be positive")
        if any(not 0 < int(p) < 100 for p in self.progress_steps):
            raise ValueError("progress_steps must lie strictly between 0 and 100")
        self.progress_steps = tuple(sorted(int(p) for p in self.progress_steps))
        if isinstance(self.faults, str):
            self.faults = (self.faults,)

    @property
    def body_limit(self) -> int:
        """Two base64 images at the size limit (4/3 each) plus room for the other fields."""
        return self.max_body_bytes or 3 * self.max_image_bytes + MIB
