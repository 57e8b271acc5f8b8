"""SwapEmulator: the swap API's routes, task lifecycle, worker pool, callbacks and faults.

Routes (`/mj-fast`, `/mj-relax` and `/mj-turbo` prefixes work too, as trueai accepts them):

- ``POST /mj/insight-face/swap``           submit (auth)
- ``GET  /mj/task/{id}/fetch``             one snapshot (auth); an unknown id gets what
                                           ``EmulatorConfig.unknown_task`` says (default, as
                                           novicezk: HTTP 200 with an empty body)
- ``POST /mj/task/list-by-condition``      ``{"ids": [...]}`` -> snapshots of the known ones (auth)
- ``GET  /mj/task/list``                   the latest 100 tasks, newest first, as trueai exposes it
                                           (auth; HTTP 404 when ``EmulatorConfig.task_list`` is off)
- ``POST /mj/task/{id}/cancel``            trueai's cancel (auth): HTTP 200, empty body, whatever
                                           happens; an unfinished task ends FAILURE "取消任务"
                                           (HTTP 404 when ``EmulatorConfig.cancel`` is off)
- ``GET  /mj/image/{id}.png``              result images (no auth; may expire)
- ``GET|POST|DELETE /_emulator/faults``    the fault plan (no auth; see ``_control_faults``)
- ``GET  /_emulator/health``, ``GET /_emulator/tasks``
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import requests

from . import hostile, protocol
from .callbacks import CallbackRecord, CallbackSender
from .config import EmulatorConfig
from .engines import faceswap_engine, run_engine
from .faults import FaultPlan, FaultSpecError, RequestFaults, parse_faults
from .server import EmulatorHTTPServer, HttpReply, HttpRequest
from .tasks import FAILURE, IN_PROGRESS, SUBMITTED, SUCCESS, TERMINAL, SubmittedSwap, Task, TaskIds, now_ms

log = logging.getLogger("swapdrop_emulator")

SWAP_PATH = "/mj/insight-face/swap"
LIST_PATH = "/mj/task/list-by-condition"
TASK_LIST_PATH = "/mj/task/list"
TASK_LIST_LIMIT = 100
_MODE_PREFIX = re.compile(r"^/mj-(?:fast|relax|turbo)(?=/mj/)")
_FETCH = re.compile(r"^/mj/task/([^/]+)/fetch$")
_CANCEL = re.compile(r"^/mj/task/([^/]+)/cancel$")
_IMAGE = re.compile(r"^/mj/image/([^/]+)\.png$")
FAULT_HEADER = "x-emulator-fault"


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SwapEmulator:
    """The swap API on 127.0.0.1, over real HTTP. See the package docstring for the API."""

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = EmulatorConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.engine = config.engine or faceswap_engine
        self.faults = FaultPlan(config.faults, seed=config.seed, default_hold=config.timeout_hold_seconds)
        self.swaps: list[SubmittedSwap] = []
        """Every authenticated submit request, in order (also the refused and faulted ones)."""
        self.tasks: dict[str, Task] = {}
        self.list_requests: list[list[str]] = []
        """The ids of each list-by-condition request."""
        self.fetch_requests: list[str] = []
        self.task_list_requests = 0
        """GET /mj/task/list requests answered (with the list or with 404)."""
        self.task_list_enabled = config.task_list
        """Whether GET /mj/task/list exists (also set by POST /_emulator/faults {"task_list": false})."""
        self.cancel_requests: list[str] = []
        """The task id of every POST /mj/task/{id}/cancel answered (with 200 or with 404)."""
        self.cancel_enabled = config.cancel
        """Whether POST /mj/task/{id}/cancel exists (also set by POST /_emulator/faults {"cancel": false})."""
        self._odd_candidates = 0
        self.responses: list[tuple[int, Any]] = []
        """Scripted answers to the next submits: (HTTP status, JSON payload | bytes | None)."""
        self.result_image: bytes | None = None
        """When set, every result URL serves these bytes instead of the task's own image."""
        self._ids = TaskIds()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._running = 0
        self._waiting: deque[Task] = deque()
        self._workers: set[threading.Thread] = set()
        self._callbacks = CallbackSender(config.callback_workers, config.callback_timeout)
        self._server = EmulatorHTTPServer((config.host, config.port), self._handle, self._stopping, config.body_limit)
        self._serve_thread: threading.Thread | None = None
        self._stopped = False

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only to print a reachable address
            host = "127.0.0.1"
        elif ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def public_url(self) -> str:
        return (self.config.public_url or self.url).rstrip("/")

    def start(self) -> SwapEmulator:
        if self._serve_thread is None:
            self._callbacks.start()
            self._serve_thread = threading.Thread(
                target=self._server.serve_until_stopped, name="emulator-http", daemon=True
            )
            self._serve_thread.start()
            log.info(
                "swap API emulator on %s (auth %s, concurrency %d, queue %d, %s mode)",
                self.url,
                self.config.auth_style,
                self.config.concurrency,
                self.config.queue_size,
                "auto" if self.config.auto_run else "manual",
            )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut held connections, let workers and callback threads go. Never hangs:
        an engine call in progress is not interrupted, but it is not waited for past `timeout`."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        deadline = time.monotonic() + timeout
        self._server.wake()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._server.server_close()
        self._server.close_connections()
        self._callbacks.stop(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=max(0.05, deadline - time.monotonic()))
        log.info("swap API emulator on %s stopped", self.url)

    def __enter__(self) -> SwapEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests use -------------------------------------------------------------------------

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every callback attempted or dropped, in the order it happened."""
        return self._callbacks.records

    def script_submit(self, status: int, payload: Any = None) -> None:
        """The next submit answers exactly this (an accepting payload with a `result` makes that task)."""
        self.responses.append((status, payload))

    def task(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r} in the emulator") from None

    def snapshot(self, task_id: str) -> dict[str, Any]:
        return self.task(task_id).snapshot()

    def progress(self, task_id: str, status: str, progress: str) -> dict[str, Any]:
        """Set status and progress; returns the snapshot. Sends no callback."""
        task = self.task(task_id)
        changes: dict[str, Any] = {"status": status, "progress": progress}
        if status in (SUBMITTED, IN_PROGRESS) and task.start_time is None:
            changes["start_time"] = now_ms()
        return task.update(**changes)

    def succeed(self, task_id: str, image: bytes | None = None) -> dict[str, Any]:
        """Finish with SUCCESS (the engine runs unless `image` is given; if it raises: FAILURE).
        Returns the snapshot. Sends no callback."""
        task = self.task(task_id)
        if image is None:
            image, reason = run_engine(self.engine, task.source, task.target)
            if image is None:
                return self._finish_failure(task, reason or "the engine failed")
        return self._finish_success(task, image)

    def fail(self, task_id: str, reason: str) -> dict[str, Any]:
        """Finish with FAILURE and this failReason; returns the snapshot. Sends no callback."""
        return self._finish_failure(self.task(task_id), reason)

    def callback(
        self, task_id: str, snapshot: dict[str, Any] | None = None, hook: str | None = None
    ) -> requests.Response:
        """Deliver one callback now, in this thread (no faults; errors raise)."""
        task = self.task(task_id)
        target = hook or task.notify_hook or self.config.notify_hook
        if not target:
            raise ValueError(f"task {task_id} has no notifyHook and there is no global hook")
        response = self._callbacks.post(task, target, snapshot or task.snapshot(), raise_errors=True)
        assert response is not None
        return response

    def notify(self, task_id: str) -> None:
        """Send the task's current snapshot as the emulator would (pool, faults apply)."""
        task = self.task(task_id)
        self._notify(task, task.snapshot())

    def expire_result(self, task_id: str) -> None:
        """Make the task's result URL answer the expired status from now on."""
        self.task(task_id).update(image_expires_at=float("-inf"))

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no task is queued or running and every callback has been delivered (or
        failed). Stalled tasks and callbacks held by reorder_callbacks for them do not count."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running, waiting = self._running, len(self._waiting)
            pending = self._callbacks.pending
            if not running and not waiting and not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the emulator is not idle after {timeout} s: {running} task(s) running, "
                    f"{waiting} queued, {pending} callback job(s) pending"
                )
            time.sleep(0.005)

    # --- HTTP dispatch --------------------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> HttpReply:
        path = _MODE_PREFIX.sub("", request.path)
        method = request.method
        try:
            if path.startswith("/_emulator/"):
                return self._control(request, path)
            matched = _IMAGE.match(path)
            if matched and method in ("GET", "HEAD"):
                return self._image(request, unquote(matched.group(1)))
            if path.startswith("/mj/"):
                if not self._authorised(request.headers):
                    return HttpReply(401)
                if path == SWAP_PATH and method == "POST":
                    return self._submit(request)
                matched = _FETCH.match(path)
                if matched and method == "GET":
                    return self._fetch(request, unquote(matched.group(1)))
                if path == LIST_PATH and method == "POST":
                    return self._list(request)
                if path == TASK_LIST_PATH and method == "GET":
                    return self._task_list(request)
                matched = _CANCEL.match(path)
                if matched and method == "POST":
                    return self._cancel(request, unquote(matched.group(1)))
            return self._spring_error(404, "Not Found", request.path)
        except _BadRequest as error:
            return HttpReply.json({"error": error.message}, 400)

    def _authorised(self, headers: dict[str, str]) -> bool:
        style, key = self.config.auth_style, self.config.api_key.encode()
        if style == "none":
            return True
        if style == "bearer":
            scheme, _, token = headers.get("authorization", "").strip().partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key)
        return hmac.compare_digest(headers.get("mj-api-secret", "").strip().encode(), key)

    def _resolve(self, scope: str, request: HttpRequest) -> RequestFaults:
        try:
            return self.faults.resolve(scope, request.headers.get(FAULT_HEADER))
        except FaultSpecError as error:
            raise _BadRequest(f"bad X-Emulator-Fault header: {error}") from None

    @staticmethod
    def _early(faults: RequestFaults) -> HttpReply | None:
        """The reply of an answer fault that replaces the real answer, if any."""
        if faults.reset:
            return HttpReply(reset=True)
        if faults.timeout is not None:
            return HttpReply(hold=faults.timeout)
        if faults.status is not None:
            body, content_type = protocol.status_answer(faults.status)
            return HttpReply(faults.status, body, content_type, delay=faults.latency)
        return None

    @staticmethod
    def _spring_error(status: int, error: str, path: str) -> HttpReply:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        return HttpReply.json(protocol.spring_error(status, error, path, stamp), status)

    @staticmethod
    def _json_body(request: HttpRequest) -> Any:
        try:
            return json.loads(request.body) if request.body.strip() else None
        except ValueError:
            return _INVALID

    # --- submit ---------------------------------------------------------------------------------

    def _submit(self, request: HttpRequest) -> HttpReply:
        body = self._json_body(request)
        if not isinstance(body, dict):
            return self._spring_error(400, "Bad Request", request.path)
        faults = self._resolve("submit", request)
        source = protocol.lenient_image(body.get("sourceBase64"))
        target = protocol.lenient_image(body.get("targetBase64"))
        swap = SubmittedSwap(dict(request.headers), body, source.data, target.data, source.mime, target.mime)
        with self._lock:
            self.swaps.append(swap)
            scripted = self.responses.pop(0) if self.responses else None
        if scripted is not None:
            reply = self._scripted(*scripted, body=body, swap=swap, faults=faults)
        else:
            reply = self._early(faults) or self._accept(body, swap, faults)
        if reply.hold is None and not reply.reset:
            reply.delay = max(reply.delay, faults.latency)
        return reply

    def _accept(self, body: dict[str, Any], swap: SubmittedSwap, faults: RequestFaults) -> HttpReply:
        if faults.code is not None and faults.code not in protocol.ACCEPTING_CODES:
            log.info("submit refused by a fault: code %s", faults.code)
            return HttpReply.json(protocol.code_answer(faults.code))
        try:
            protocol.validate_submit(body, self.config.max_image_bytes)
        except protocol.InvalidRequest as error:
            log.info("submit refused: code 4 (%s)", error)
            return HttpReply.json(protocol.submit_answer(protocol.VALIDATION_ERROR, str(error)))
        task = self._new_task(self._ids.next(), body, swap, faults)
        ahead = self._admit(task)
        if ahead is None:
            code = self.config.queue_full_code
            log.info("submit refused: queue full (code %s)", code)
            return HttpReply.json(protocol.submit_answer(code, protocol.QUEUE_FULL_DESCRIPTIONS.get(code)))
        if faults.code == protocol.IN_QUEUE:
            ahead = max(ahead, 1)
        if faults.code == protocol.EXISTED:
            answer = protocol.submit_answer(protocol.EXISTED, result=task.id)
        elif ahead:
            answer = protocol.queued_answer(task.id, ahead)
        else:
            answer = protocol.submit_answer(protocol.SUCCESS, result=task.id)
        log.info(
            "submit accepted: task %s, code %s%s%s",
            task.id,
            answer["code"],
            f", {ahead} ahead" if ahead else "",
            f" (faults: {faults})" if faults.applied else "",
        )
        if faults.timeout_after_accept is not None:
            return HttpReply(hold=faults.timeout_after_accept)
        if faults.reset_after_accept:
            return HttpReply(reset=True)
        if faults.status_after_accept is not None:
            body, content_type = protocol.status_answer(faults.status_after_accept)
            return HttpReply(faults.status_after_accept, body, content_type)
        return HttpReply.json(answer)

    def _scripted(
        self, status: int, payload: Any, *, body: dict[str, Any], swap: SubmittedSwap, faults: RequestFaults
    ) -> HttpReply:
        if isinstance(payload, dict) and payload.get("code") in protocol.ACCEPTING_CODES:
            task_id = payload.get("result")
            if isinstance(task_id, str | int) and not isinstance(task_id, bool) and str(task_id).strip():
                task = self._new_task(str(task_id).strip(), body, swap, faults)
                self._admit(task, force=True)
        log.info("submit answered from the script: HTTP %s", status)
        if payload is None:
            return HttpReply(status)
        if isinstance(payload, bytes):
            return HttpReply(status, payload, "application/octet-stream")
        if isinstance(payload, str):
            return HttpReply(status, payload.encode(), "text/plain; charset=utf-8")
        return HttpReply.json(payload, status)

    def _new_task(self, task_id: str, body: dict[str, Any], swap: SubmittedSwap, faults: RequestFaults) -> Task:
        hook = body.get("notifyHook")
        hook = hook.strip() if isinstance(hook, str) else ""
        if faults.task.ignore_notify_hook:
            hook = ""  # stripped, as new-api does unless an operator enables callbacks
        state = body.get("state")
        state = "" if state is None else state if isinstance(state, str) else json.dumps(state)
        account_filter = body.get("accountFilter")
        instance = account_filter.get("instanceId") if isinstance(account_filter, dict) else None
        if faults.task.odd_snapshot is not None:
            with self._lock:
                candidate, self._odd_candidates = self._odd_candidates, self._odd_candidates + 1
            if not hostile.picked(candidate, faults.odd_snapshot_ratio):
                faults.task.odd_snapshot = None
        return Task(
            id=task_id,
            notify_hook=hook,
            state=state,
            status="NOT_START" if self.config.auto_run else SUBMITTED,
            instance_id=instance if isinstance(instance, str) and instance else self.config.instance_id,
            source=swap.source,
            target=swap.target,
            source_mime=swap.source_mime,
            target_mime=swap.target_mime,
            faults=faults.task,
        )

    def _admit(self, task: Task, force: bool = False) -> int | None:
        """Queue position (tasks waiting ahead: 0 when it starts at once, or waits behind
        running ones only), or None when the queue is full. As novicezk's thread pool: a task
        starts when a worker is free, else waits; code 22 only when others wait ahead of it."""
        start = False
        with self._lock:
            if not self.config.auto_run:
                ahead = 0
            elif self._running < self.config.concurrency:
                self._running += 1
                start, ahead = True, 0
            elif len(self._waiting) >= self.config.queue_size and not force:
                return None
            else:
                ahead = len(self._waiting)
                self._waiting.append(task)
            self.tasks[task.id] = task
        if start:
            worker = threading.Thread(target=self._work, args=(task,), name=f"emulator-task-{task.id}", daemon=True)
            with self._lock:
                self._workers.add(worker)
            worker.start()
        return ahead

    # --- the worker pool and the lifecycle ------------------------------------------------------

    def _work(self, first: Task) -> None:
        task: Task | None = first
        try:
            while task is not None:
                try:
                    self._run(task)
                except Exception as error:
                    log.exception("task %s crashed in the emulator", task.id)
                    self._finish_failure(task, f"[Internal Server Error] {error}", notify=True, if_open=True)
                with self._lock:
                    if self._waiting and not self._stopping.is_set():
                        task = self._waiting.popleft()
                    else:
                        self._running -= 1
                        task = None
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _pause(self) -> bool:
        """Wait one step; False when the emulator is stopping."""
        return not self._stopping.wait(self.config.step_delay)

    def _run(self, task: Task) -> None:
        """The task's lifecycle; every step leaves a task that was cancelled meanwhile as it is."""
        if self._stopping.is_set() or task.terminal:
            return
        self._transition(task, status=SUBMITTED, progress="0%", start_time=now_ms())
        if task.faults.stall is not None:
            if self._pause():
                self._transition(task, status=IN_PROGRESS, progress=f"{task.faults.stall}%")
                log.info("task %s stalls at %s%% (a fault)", task.id, task.faults.stall)
            return
        image: bytes | None = None
        reason = task.faults.fail
        odd_failure = task.faults.odd_snapshot is not None and task.faults.odd_outcome != "success"
        if reason is None and odd_failure:  # every progress step is reported (odd), then FAILURE
            reason = hostile.odd_reason(str(task.faults.odd_snapshot))
        steps = self.config.progress_steps
        for index, percent in enumerate(steps):
            if not self._pause() or task.terminal:
                return
            self._transition(task, status=IN_PROGRESS, progress=f"{percent}%")
            if index == 0 and reason is None:
                image, reason = run_engine(self.engine, task.source, task.target)
            if reason is not None and not odd_failure:
                break
        if not steps and reason is None:
            image, reason = run_engine(self.engine, task.source, task.target)
        if not self._pause():
            return
        if reason is not None or image is None:
            self._finish_failure(task, reason or "the engine failed", notify=True, if_open=True)
        else:
            self._finish_success(task, image, notify=True, if_open=True)

    def _transition(self, task: Task, **changes: Any) -> None:
        snapshot = task.update_if_open(**changes)
        if snapshot is not None:
            self._notify(task, snapshot)

    def _finish_success(self, task: Task, image: bytes, notify: bool = False, if_open: bool = False) -> dict[str, Any]:
        """`if_open`: only if the task has not ended meanwhile (a cancel), else leave it as it is."""
        ttl = task.faults.expire_results
        if ttl is None:
            ttl = self.config.result_ttl_seconds
        update = task.update_if_open if if_open else task.update
        snapshot = update(
            status=SUCCESS,
            progress="100%",
            image=image,
            image_url=f"{self.public_url}/mj/image/{task.id}.png",
            fail_reason=None,
            finish_time=now_ms(),
            image_expires_at=None if ttl is None else time.monotonic() + ttl,
        )
        if snapshot is None:
            log.info("task %s: already %s, its result is dropped", task.id, task.status)
            return task.snapshot()
        log.info("task %s: SUCCESS", task.id)
        if notify:
            self._notify(task, snapshot)
        return snapshot

    def _finish_failure(self, task: Task, reason: str, notify: bool = False, if_open: bool = False) -> dict[str, Any]:
        update = task.update_if_open if if_open else task.update
        snapshot = update(status=FAILURE, progress="", fail_reason=reason, image_url=None, finish_time=now_ms())
        if snapshot is None:
            log.info("task %s: already %s, stays so", task.id, task.status)
            return task.snapshot()
        log.info("task %s: FAILURE (%s)", task.id, reason)
        if notify:
            self._notify(task, snapshot)
        return snapshot

    def _notify(self, task: Task, snapshot: dict[str, Any]) -> None:
        """One callback per change, with the task's callback faults applied."""
        faults = task.faults
        hook = task.notify_hook or self.config.notify_hook
        if faults.ignore_notify_hook or not hook:
            return
        terminal = snapshot["status"] in TERMINAL
        snapshot = self._report(task, snapshot)
        dropped = faults.drop_callbacks == "all" or faults.drop_callbacks == ("final" if terminal else "progress")
        if dropped:
            self._callbacks.dropped(task, hook, snapshot)
        if not faults.reorder_callbacks:
            if not dropped:
                self._callbacks.enqueue(task, hook, [snapshot], faults.duplicate_callbacks)
            return
        with task.lock:
            if not dropped:
                task.held_callbacks.append(snapshot)
            if not terminal:
                return
            held, task.held_callbacks = task.held_callbacks, []
        if faults.reorder_callbacks == "shuffle":
            self.faults.shuffle(held)
        else:
            held.reverse()
        if held:
            self._callbacks.enqueue(task, hook, held, faults.duplicate_callbacks)

    # --- fetch, list, images --------------------------------------------------------------------

    @staticmethod
    def _report(task: Task, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
        """The snapshot as the API reports it: odd if the task carries odd_snapshot."""
        snapshot = task.snapshot() if snapshot is None else snapshot
        kind = task.faults.odd_snapshot
        return snapshot if kind is None else hostile.odd_snapshot(snapshot, kind)

    @staticmethod
    def _listing(snapshots: list[dict[str, Any]], faults: RequestFaults) -> Any:
        """A list answer with this request's odd_snapshot / non_list faults applied."""
        snapshots = hostile.odd_answer(snapshots, faults.odd_snapshot, faults.odd_snapshot_ratio)
        return snapshots if faults.non_list is None else hostile.non_list(faults.non_list, snapshots)

    def _fetch(self, request: HttpRequest, task_id: str) -> HttpReply:
        faults = self._resolve("fetch", request)
        early = self._early(faults)
        if early:
            return early
        with self._lock:
            self.fetch_requests.append(task_id)
        task = self.tasks.get(task_id)
        if task is not None:
            (snapshot,) = hostile.odd_answer([self._report(task)], faults.odd_snapshot, None)
            reply = HttpReply.json(snapshot)
        elif self.config.unknown_task == "null":
            reply = HttpReply.json(None)
        elif self.config.unknown_task == "404":
            reply = self._spring_error(404, "Not Found", request.path)
        else:
            reply = HttpReply(200)  # novicezk returns null from the controller: no body at all
        reply.delay = faults.latency
        return reply

    def _list(self, request: HttpRequest) -> HttpReply:
        body = self._json_body(request)
        ids = body.get("ids") if isinstance(body, dict) else _INVALID
        if ids is None:
            ids = []
        if not isinstance(ids, list):
            return self._spring_error(400, "Bad Request", request.path)
        faults = self._resolve("list", request)
        early = self._early(faults)
        if early:
            return early
        wanted = [str(i) for i in ids if isinstance(i, str | int) and not isinstance(i, bool)]
        with self._lock:
            self.list_requests.append(wanted)
        found = [self._report(self.tasks[i]) for i in wanted if i in self.tasks]
        return HttpReply.json(self._listing(found, faults), delay=faults.latency)

    def _task_list(self, request: HttpRequest) -> HttpReply:
        """trueai's ``GET /mj/task/list``: the latest TASK_LIST_LIMIT tasks, newest first."""
        with self._lock:
            self.task_list_requests += 1
            enabled = self.task_list_enabled
            latest = list(self.tasks.values())[-TASK_LIST_LIMIT:][::-1]
        if not enabled:  # a relay that does not expose it: the same 404 as any unknown route
            return self._spring_error(404, "Not Found", request.path)
        faults = self._resolve("task_list", request)
        early = self._early(faults)
        if early:
            return early
        snapshots = [self._report(task) for task in latest]
        return HttpReply.json(self._listing(snapshots, faults), delay=faults.latency)

    def _cancel(self, request: HttpRequest, task_id: str) -> HttpReply:
        """trueai's ``POST /mj/task/{id}/cancel``: HTTP 200 and an empty body whatever happens.

        An unfinished task (queued, running or stalled) ends FAILURE with failReason "取消任务"
        and its callback goes out as for any final status; a finished task stays as it is (a
        cancel can lose the race with a SUCCESS); an unknown id changes nothing."""
        with self._lock:
            self.cancel_requests.append(task_id)
            enabled = self.cancel_enabled
            task = self.tasks.get(task_id)
            if enabled and task is not None and task in self._waiting:
                self._waiting.remove(task)  # it never runs, and frees its place in the queue
        if not enabled:  # a relay that does not expose it: the same 404 as any unknown route
            return self._spring_error(404, "Not Found", request.path)
        if task is None:
            log.info("cancel of unknown task %s: nothing to do", task_id)
        elif task.terminal:
            log.info("cancel of task %s: already %s, stays so", task_id, task.status)
        else:
            self._finish_failure(task, protocol.CANCEL_REASON, notify=True, if_open=True)
        return HttpReply(200)

    def _image(self, request: HttpRequest, task_id: str) -> HttpReply:
        faults = self._resolve("image", request)
        early = self._early(faults)
        if early:
            return early
        task = self.tasks.get(task_id)
        if task is None or task.image is None:
            reply = HttpReply(404, b"Not Found", "text/plain; charset=utf-8")
        elif task.image_expires_at is not None and time.monotonic() >= task.image_expires_at:
            status = self.config.expired_status
            body, content_type = protocol.EXPIRED_BODIES[status]
            reply = HttpReply(status, body, content_type)
        else:
            data = self.result_image if self.result_image is not None else task.image
            reply = HttpReply(200, data, "image/png", {"Cache-Control": "no-store"})
            drip = faults.drip if faults.drip is not None else task.faults.drip
            if drip is not None:
                reply.drip, reply.declared_length = drip, self.config.drip_length
                log.info("result of task %s drips: one byte every %s s", task.id, drip)
        reply.delay = faults.latency
        return reply

    # --- the control endpoint -------------------------------------------------------------------

    def _control(self, request: HttpRequest, path: str) -> HttpReply:
        method = request.method
        if path == "/_emulator/health" and method == "GET":
            return HttpReply.json({"status": "ok", "tasks": len(self.tasks), "submits": len(self.swaps)})
        if path == "/_emulator/tasks" and method == "GET":
            return HttpReply.json([task.snapshot() for task in list(self.tasks.values())])
        if path == "/_emulator/faults":
            if method == "GET":
                return HttpReply.json(self._plan())
            if method == "DELETE":
                self.faults.clear()
                self.task_list_enabled = self.config.task_list
                self.cancel_enabled = self.config.cancel
                return HttpReply.json(self._plan())
            if method == "POST":
                return self._control_faults(request)
        return self._spring_error(404, "Not Found", request.path)

    def _control_faults(self, request: HttpRequest) -> HttpReply:
        """POST /_emulator/faults with a JSON object, all keys optional::

            {"clear": true,                      # first forget all faults and scripted answers
             "seed": 7,                          # reseed the random generator
             "task_list": false,                 # GET /mj/task/list answers 404 (true: it is back)
             "cancel": false,                    # POST /mj/task/{id}/cancel answers 404 (true: it is back)
             "always": ["latency=0.2", ...],     # sticky faults (a spec or a list of specs)
             "next": ["code=23", "list:status=503"],  # once-only entries, routed by scope
             "script": [{"status": 200, "body": {"code": 23, "description": "..."}}]}

        Answers the plan as GET does; HTTP 400 with {"error": ...} when something does not parse
        (and then nothing is changed)."""
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _BadRequest("expected a JSON object")
        try:
            always = [parse_faults(spec) for spec in _specs(body.get("always"))]
            once = [parse_faults(spec) for spec in _specs(body.get("next"))]
            for faults in once:
                if len({fault.scope for fault in faults}) != 1 or faults[0].scope == "any":
                    raise FaultSpecError(f"{'; '.join(map(str, faults))}: a once-only entry needs one scope, not any")
        except FaultSpecError as error:
            raise _BadRequest(str(error)) from None
        script = body.get("script") or []
        if not isinstance(script, list) or not all(isinstance(s, dict) and "status" in s for s in script):
            raise _BadRequest('script must be a list of {"status": int, "body": ...}')
        seed = body.get("seed", ...)
        task_list = body.get("task_list", ...)
        if task_list is not ... and not isinstance(task_list, bool):
            raise _BadRequest("task_list must be true or false")
        cancel = body.get("cancel", ...)
        if cancel is not ... and not isinstance(cancel, bool):
            raise _BadRequest("cancel must be true or false")
        if body.get("clear"):
            self.faults.clear()
            self.responses.clear()
            self.task_list_enabled = self.config.task_list
            self.cancel_enabled = self.config.cancel
        if task_list is not ...:
            self.task_list_enabled = task_list
        if cancel is not ...:
            self.cancel_enabled = cancel
        if seed is not ...:
            self.faults.reseed(seed)
        for faults in always:
            self.faults.add(faults)
        for faults in once:
            self.faults.add(faults, once=True)
        for item in script:
            self.script_submit(int(item["status"]), item.get("body"))
        log.info("fault plan changed through the control endpoint: %s", self.faults.describe())
        return HttpReply.json(self._plan())

    def _plan(self) -> dict[str, Any]:
        return {
            **self.faults.describe(),
            "script": len(self.responses),
            "task_list": self.task_list_enabled,
            "cancel": self.cancel_enabled,
        }


_INVALID = object()


def _specs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise FaultSpecError("fault specs must be a string or a list of strings")
