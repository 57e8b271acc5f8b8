"""Callback delivery as the real thing does it: one POST of the whole snapshot per change, JSON,
no signature, no auth header, no retries (a failure is only logged), from a pool of threads
(so with more than one the order is not guaranteed)."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .hostile import dumps
from .tasks import Task

log = logging.getLogger("swapdrop_emulator.callbacks")


def redact(url: str) -> str:
    """The URL without credentials, query or fragment (hooks carry tokens: never log those)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


@dataclass(frozen=True)
class CallbackRecord:
    task_id: str
    status: str
    progress: str
    hook: str
    """Redacted: scheme, host and path only."""
    outcome: str
    """delivered (2xx), failed (another status or no answer) or dropped (a fault lost it)."""
    http_status: int | None = None
    error: str | None = None


class CallbackSender:
    def __init__(self, workers: int, timeout: float) -> None:
        self._workers = workers
        self._timeout = timeout
        self._jobs: queue.Queue[tuple[Task, str, list[dict[str, Any]], int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.records: list[CallbackRecord] = []

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"emulator-callback-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def pending(self) -> int:
        """Jobs queued or being delivered."""
        with self._lock:
            return self._pending

    def enqueue(self, task: Task, hook: str, snapshots: list[dict[str, Any]], copies: int = 1) -> None:
        """Deliver these snapshots, in this order, each `copies` times (one pool job)."""
        if self._stopping.is_set():
            return
        with self._lock:
            self._pending += 1
        self._jobs.put((task, hook, snapshots, copies))

    def dropped(self, task: Task, hook: str, snapshot: dict[str, Any]) -> None:
        with task.lock:
            task.callbacks_dropped += 1
        status, progress = str(snapshot.get("status")), str(snapshot.get("progress"))
        self.records.append(CallbackRecord(task.id, status, progress, redact(hook), "dropped"))
        log.info("callback for task %s (%s %s) dropped by a fault", task.id, status, progress)

    def post(
        self, task: Task, hook: str, snapshot: dict[str, Any], raise_errors: bool = False
    ) -> requests.Response | None:
        """One POST now, in this thread; recorded and logged (and raised only if asked)."""
        body = dumps(snapshot).encode("utf-8")
        with task.lock:
            task.callbacks_sent += 1
        status, progress, where = snapshot.get("status"), snapshot.get("progress"), redact(hook)
        try:
            response = requests.post(
                hook,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": "swapdrop-emulator"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            self.records.append(
                CallbackRecord(task.id, str(status), str(progress), where, "failed", None, type(error).__name__)
            )
            log.warning(
                "callback for task %s (%s) to %s failed: %s (not retried)", task.id, status, where, type(error).__name__
            )
            if raise_errors:
                raise
            return None
        ok = 200 <= response.status_code < 300
        self.records.append(
            CallbackRecord(
                task.id, str(status), str(progress), where, "delivered" if ok else "failed", response.status_code
            )
        )
        code = response.status_code
        if ok:
            log.info("callback for task %s (%s %s) to %s: HTTP %s", task.id, status, progress, where, code)
        else:
            log.warning("callback for task %s (%s) to %s answered HTTP %s (not retried)", task.id, status, where, code)
        return response

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            task, hook, snapshots, copies = job
            try:
                for snapshot in snapshots:
                    for _ in range(copies):
                        if self._stopping.is_set():
                            break
                        self.post(task, hook, snapshot)
            except Exception:  # a bug here must not kill the worker
                log.exception("callback delivery for task %s crashed", task.id)
            finally:
                with self._lock:
                    self._pending -= 1

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        while True:  # what was not sent yet is lost, as when the real service stops
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                with self._lock:
                    self._pending -= 1
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=timeout / max(1, len(self._threads)))
