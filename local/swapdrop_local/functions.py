"""The template's Lambda functions, run locally the way Lambda runs them.

Each function gets a supervisor and a fixed set of worker processes, its "containers": a
worker imports the handler once (cold start), keeps its module state between invocations,
and handles one event at a time. Concurrency is the number of workers, as Lambda's is the
number of containers, so handlers that are safe on Lambda are safe here without being
thread-safe. As on Lambda, a worker that dies or runs past the function's timeout fails
only the invocation it was running and is replaced by a fresh one; a function whose
workers are all busy throttles (TooManyRequestsException) instead of queueing forever.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from swapdrop_local.lambda_context import LocalLambdaContext
from swapdrop_local.log_shipper import FunctionLogs
from swapdrop_local.template import NO_VALUE, PROJECT_ROOT, Resolver

log = logging.getLogger("swapdrop.local")

THROTTLE_WAIT_SECONDS = 10.0
"""How long a synchronous invocation waits for a free worker before it is throttled."""
INIT_TIMEOUT_SECONDS = 60.0
"""Lambda gives init 10 s; a busy laptop importing boto3 in several workers needs more."""

# Lambda's errorType values for failures that are not the handler's own exception.
EXIT_ERROR = "Runtime.ExitError"
TIMED_OUT = "Sandbox.Timedout"
THROTTLED = "TooManyRequestsException"
IMPORT_ERROR = "Runtime.ImportModuleError"
MARSHAL_ERROR = "Runtime.MarshalError"
SHUT_DOWN = "ServiceException"

PROFILE_DIR_VARIABLE = "SWAPDROP_LOCAL_PROFILE_DIR"
"""When a function's environment sets it, each of its workers runs its invocations under cProfile and
writes the stats to <dir>/<function>-<pid>.prof when it stops (where a warm invocation's time goes)."""

_handlers: dict[str, Any] = {}
_SIGNAL_TEXT = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGTERM: "terminated"}


class FunctionError(Exception):
    """An invocation that failed, as Lambda reports it: errorType, errorMessage, stackTrace."""

    def __init__(self, error_type: str, error_message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = stack_trace or []

    def payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.error_message, "stackTrace": self.stack_trace}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    events: dict[str, Any]
    reserved_concurrency: int | None = None

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


def function_specs(resolver: Resolver) -> dict[str, FunctionSpec]:
    template = resolver.template
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        reserved = resolver.resolve(props.get("ReservedConcurrentExecutions"))
        specs[name] = FunctionSpec(
            name=name,
            code_dir=PROJECT_ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=int(resolver.resolve(props.get("Timeout", defaults.get("Timeout", 3)))),
            memory=int(resolver.resolve(props.get("MemorySize", defaults.get("MemorySize", 128)))),
            events=resolver.resolve(props.get("Events", {})),
            reserved_concurrency=None if reserved in (None, "", NO_VALUE) else int(reserved),
        )
    return specs


def layer_dirs(resolver: Resolver) -> list[Path]:
    """Where the functions' layers' code lives (ContentUri), as Lambda mounts them on sys.path."""
    return [
        PROJECT_ROOT / resource["Properties"]["ContentUri"]
        for resource in resolver.template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    ]


def _start_container(paths: list[str], environment: dict[str, str]) -> None:
    os.environ.update(environment)
    for path in reversed(paths):
        sys.path.insert(0, path)


def _load(spec: FunctionSpec) -> Any:
    handler = _handlers.get(spec.name)
    if handler is None:
        module_name, attribute = spec.handler.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attribute)
        _handlers[spec.name] = handler
    return handler


def send_message(conn: Connection, message: Any) -> None:
    """Send one message, pickled to bytes first.

    Connection.send pickles into a BytesIO and writes a view of it. When the other end has
    died, the OSError's frames pin that view; if the error ends up in a reference cycle, the
    BytesIO is collected later with the view still open and Python reports an unraisable
    BufferError in whatever thread the collector happens to run.
    """
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _error_reply(exc: BaseException, error_type: str | None = None) -> tuple[str, str, str, list[str]]:
    return ("error", error_type or type(exc).__name__, str(exc), traceback.format_exception(exc))


def _redirect_output(conn: Connection) -> None:
    """stdout and stderr into the pipe the supervisor sends first (Lambda's log capture), line by line."""
    fd = reduction.recv_handle(conn)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[attr-defined]


def _worker_main(
    conn: Connection, spec: FunctionSpec, paths: list[str], environment: dict[str, str], captured: bool = False
) -> None:
    """One container: init (import the handler), say ready, then run one event at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the supervisor, which stops its workers
    if captured:
        _redirect_output(conn)
    _start_container(paths, environment)
    try:
        handler = _load(spec)
    except Exception as exc:
        send_message(conn, _error_reply(exc, IMPORT_ERROR if isinstance(exc, ImportError) else None))
        return
    send_message(conn, ("ready", os.getpid()))
    profile_dir = os.environ.get(PROFILE_DIR_VARIABLE)
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        handler = _profiled(handler, profiler)
        try:
            _serve(conn, spec, handler)
        finally:
            profiler.dump_stats(os.path.join(profile_dir, f"{spec.name}-{os.getpid()}.prof"))
        return
    _serve(conn, spec, handler)


def _profiled(handler: Any, profiler: Any) -> Any:
    def run(event: dict[str, Any], context: Any) -> Any:
        profiler.enable()
        try:
            return handler(event, context)
        finally:
            profiler.disable()

    return run


def _serve(conn: Connection, spec: FunctionSpec, handler: Any) -> None:
    """Run one event at a time until the supervisor says stop (None) or goes away."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        request_id, event = message
        context = LocalLambdaContext(
            spec.name, timeout_seconds=spec.timeout, memory_limit_in_mb=spec.memory, aws_request_id=request_id
        )
        try:
            reply: tuple[Any, ...] = ("ok", handler(event, context))
        except Exception as exc:  # the handler's error; SystemExit & co. end the container, as on Lambda
            reply = _error_reply(exc)
        try:
            send_message(conn, reply)
        except Exception as exc:  # a result that cannot leave the container
            send_message(conn, _error_reply(exc, MARSHAL_ERROR))


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    log_stream: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class LocalFunction:
    """A function's supervisor: `concurrency` workers, each replaced when it dies or times out."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        layers: list[Path],
        concurrency: int,
        throttle_wait: float = THROTTLE_WAIT_SECONDS,
        init_timeout: float = INIT_TIMEOUT_SECONDS,
        logs: FunctionLogs | None = None,
    ) -> None:
        """`logs`: where the workers' stdout and stderr go (None: this process's own, for tests)."""
        self.spec = spec
        self._logs = logs
        self.concurrency = max(1, concurrency)
        self.throttle_wait = throttle_wait
        self.init_timeout = init_timeout
        self._paths = [str(spec.code_dir), *(str(p) for p in layers)]
        self._environment = environment
        self._mp = multiprocessing.get_context("spawn")
        self._lock = threading.Condition()
        self._closed = threading.Event()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        for _ in range(self.concurrency):
            worker = self._spawn()
            self._workers.append(worker)
            self._idle.append(worker)
        self._monitor = threading.Thread(target=self._watch_idle, name=f"supervisor-{spec.name}", daemon=True)
        self._monitor.start()

    # --- what the stack uses ------------------------------------------------------------

    def invoke(self, event: dict[str, Any], wait: float | None = None) -> Any:
        """Synchronous invocation. The handler's result, or a FunctionError as Lambda reports it.

        `wait`: how long to wait for a free worker before throttling (default `throttle_wait`);
        event sources that retry throttles (SQS, schedules) pass a longer one."""
        worker = self._acquire(self.throttle_wait if wait is None else wait)
        request_id = str(uuid.uuid4())
        healthy = False
        try:
            reply = self._call(worker, request_id, event)
            healthy = True
        finally:
            if healthy:
                self._release(worker)
            else:
                self._replace(worker)
        if reply[0] == "ok":
            return reply[1]
        _, error_type, message, trace = reply
        log.info("%s request %s: the handler raised %s", self.spec.name, request_id, error_type)
        raise FunctionError(error_type, message, trace)

    def worker_pids(self) -> list[int]:
        """The PIDs of the live workers (for tests and chaos runs that kill them)."""
        with self._lock:
            return [w.pid for w in self._workers if w.process.is_alive()]

    def log_streams(self) -> list[str]:
        """The live workers' log streams (each worker writes to its own, as each Lambda container does)."""
        with self._lock:
            return [w.log_stream for w in self._workers if w.log_stream and w.process.is_alive()]

    def busy_worker_pids(self) -> list[int]:
        """The PIDs of the live workers that are running an invocation now."""
        with self._lock:
            return [w.pid for w in self._workers if w not in self._idle and w.process.is_alive()]

    def warm_up(self) -> None:
        """Wait until every container has imported its handler, so the first event is warm."""
        deadline = time.monotonic() + self.init_timeout
        workers = [self._acquire(max(0.0, deadline - time.monotonic())) for _ in range(self.concurrency)]
        failed: FunctionError | None = None
        for worker in workers:
            try:
                if not worker.ready:
                    self._await_ready(worker, "warm-up", max(0.0, deadline - time.monotonic()))
                self._release(worker)
            except FunctionError as exc:
                failed = exc
                self._replace(worker)
        if failed:
            raise failed

    def close(self, grace: float = 10.0) -> None:
        """Stop every worker: idle ones at once, busy ones after `grace` seconds."""
        self._closed.set()
        with self._lock:
            self._lock.notify_all()
            self._lock.wait_for(lambda: len(self._idle) == len(self._workers), timeout=grace)
            workers = list(self._workers)
        for worker in workers:
            with contextlib.suppress(OSError):
                send_message(worker.conn, None)
        for worker in workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
        self._monitor.join(timeout=2)

    # --- the supervisor --------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent, child = self._mp.Pipe()
        output, stream, environment = None, None, self._environment
        if self._logs:
            output, stream = self._logs.attach(self.spec.name)
            environment = {**environment, "AWS_LAMBDA_LOG_STREAM_NAME": stream}
        process = self._mp.Process(
            target=_worker_main,
            args=(child, self.spec, self._paths, environment, output is not None),
            name=f"{self.spec.name}-worker",
            daemon=True,
        )
        try:
            process.start()
            child.close()
            if output is not None:  # the worker's first read: it blocks until this arrives
                with contextlib.suppress(OSError):  # a worker that died at once is reported by the supervisor
                    reduction.send_handle(parent, output, process.pid)
        finally:
            if output is not None:
                os.close(output)
        return _Worker(process, parent, log_stream=stream)

    def _acquire(self, wait_seconds: float) -> _Worker:
        with self._lock:
            ready = self._lock.wait_for(lambda: self._idle or self._closed.is_set(), timeout=max(0.0, wait_seconds))
            if self._closed.is_set():
                raise FunctionError(SHUT_DOWN, f"{self.spec.name} is shutting down")
            if not ready:
                log.warning("%s throttled: every worker stayed busy for %.1f s", self.spec.name, wait_seconds)
                raise FunctionError(THROTTLED, "Rate Exceeded.")
            return self._idle.pop()  # the most recently used: the warmest, as Lambda prefers

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)
            self._lock.notify_all()

    def _replace(self, worker: _Worker) -> None:
        """Retire a dead, hung or broken worker and start a fresh one (its cold start comes later)."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        fresh = None if self._closed.is_set() else self._spawn()
        with self._lock:
            index = self._workers.index(worker)
            if fresh is None:
                self._idle.append(worker)  # counted as stopped, so close() need not wait for it
            else:
                self._workers[index] = fresh
                self._idle.append(fresh)
                log.warning(
                    "%s worker %d replaced by worker %d (cold start on its next invocation)",
                    self.spec.name,
                    worker.pid,
                    fresh.pid,
                )
            self._lock.notify_all()

    def _exit_message(self, worker: _Worker, request_id: str) -> FunctionError:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code is not None and code < 0:
            number = -code
            text = f"signal: {_SIGNAL_TEXT.get(number) or signal.Signals(number).name}"
        else:
            text = f"exit status {code}"
        level = logging.INFO if self._closed.is_set() else logging.ERROR  # at shutdown we stop them ourselves
        log.log(level, "%s worker %d died during request %s (%s)", self.spec.name, worker.pid, request_id, text)
        return FunctionError(EXIT_ERROR, f"RequestId: {request_id} Error: Runtime exited with error: {text}")

    def _receive(self, worker: _Worker, request_id: str, timeout: float) -> tuple[Any, ...] | None:
        """The worker's next message, None on timeout; a FunctionError if the worker died."""
        ready = wait([worker.conn, worker.process.sentinel], timeout=timeout)
        if worker.conn in ready:
            try:
                return worker.conn.recv()
            except (EOFError, OSError):
                raise self._exit_message(worker, request_id) from None
        if ready:
            raise self._exit_message(worker, request_id)
        return None

    def _await_ready(self, worker: _Worker, request_id: str, timeout: float) -> None:
        message = self._receive(worker, request_id, timeout)
        if message is None:
            log.error("%s worker %d did not finish init within %.0f s", self.spec.name, worker.pid, timeout)
            raise FunctionError("Runtime.InitTimeout", f"RequestId: {request_id} init did not finish in {timeout} s")
        if message[0] != "ready":
            _, error_type, text, trace = message
            log.error("%s worker %d failed its init: %s", self.spec.name, worker.pid, error_type)
            raise FunctionError(error_type, text, trace)
        worker.ready = True

    def _call(self, worker: _Worker, request_id: str, event: dict[str, Any]) -> tuple[Any, ...]:
        if not worker.ready:  # a cold start: init is not part of the invocation's timeout
            self._await_ready(worker, request_id, self.init_timeout)
        try:
            send_message(worker.conn, (request_id, event))
        except OSError:
            raise self._exit_message(worker, request_id) from None
        reply = self._receive(worker, request_id, self.spec.timeout)
        if reply is None:
            log.error(
                "%s request %s timed out after %d s: killing worker %d",
                self.spec.name,
                request_id,
                self.spec.timeout,
                worker.pid,
            )
            message = f"RequestId: {request_id} Task timed out after {self.spec.timeout:.2f} seconds"
            raise FunctionError(TIMED_OUT, message)
        return reply

    def _watch_idle(self) -> None:
        """Replace workers that die between invocations, so the function keeps its concurrency."""
        while not self._closed.is_set():
            with self._lock:
                idle = {w.process.sentinel: w for w in self._idle}
            if not idle:
                self._closed.wait(0.5)
                continue
            for sentinel in wait(list(idle), timeout=0.5):
                worker = idle[sentinel]
                with self._lock:
                    if self._closed.is_set() or worker not in self._idle or worker not in self._workers:
                        continue
                    self._idle.remove(worker)
                worker.process.join(timeout=5)
                log.error(
                    "%s worker %d died while idle (exit code %s)", self.spec.name, worker.pid, worker.process.exitcode
                )
                self._replace(worker)
