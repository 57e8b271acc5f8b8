"""The functions' logs as Lambda keeps them: off the console, in CloudWatch Logs and the stack's log file.

Each worker's stdout and stderr (fd 1 and 2) are one pipe read by a single pump thread here. Every line
goes to the stack's log file (JSON lines: the function's own JSON record with "function" added, other
output wrapped as {"function", "message"}) and, as on Lambda, to the function's log group on moto, one
stream per worker (`YYYY/MM/DD/[$LATEST]<id>`). CloudWatch gets the lines in batches from a second
thread (put_log_events: at most 10,000 events or 1 MiB a call, in timestamp order), flushed at stop,
so a busy function costs one HTTP call a second, not one per line.

The stack's own logging (swapdrop.local, the emulator) goes to the same file through `LogFileHandler`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import selectors
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("swapdrop.local")

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
"""CloudWatch counts each event as its UTF-8 message plus 26 bytes."""
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
SHIP_INTERVAL_SECONDS = 1.0
READ_BYTES = 65536


@dataclass
class _Source:
    function: str
    group: str
    stream: str
    pending: bytearray = field(default_factory=bytearray)


class LogFile:
    """The stack's log file: JSON lines written under a lock (several threads write); each stack starts it afresh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = path.open("w", encoding="utf-8")

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        with self._lock:
            if not self._handle.closed:
                self._handle.write(text)
                self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()


_FORMATTER = logging.Formatter()


class LogFileHandler(logging.Handler):
    """A logging handler writing each record as a JSON line to the stack's log file."""

    def __init__(self, log_file: LogFile, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.log_file = log_file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = {
                "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                entry["exception"] = _FORMATTER.formatException(record.exc_info)
            self.log_file.write([entry])
        except Exception:
            self.handleError(record)


class FunctionLogs:
    """Collects the workers' output (see the module docstring); `attach` gives a worker its pipe."""

    def __init__(self, log_file: LogFile, log_groups: dict[str, str], logs_client: Any | None) -> None:
        self.log_file = log_file
        self.log_groups = log_groups
        self._logs = logs_client
        self._selector = selectors.DefaultSelector()  # registered from any thread, selected by the pump
        self._wake_read, self._wake_write = os.pipe()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._events: list[tuple[str, str, int, str]] = []  # (group, stream, timestamp ms, message)
        self._events_lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()
        self._stopping = threading.Event()
        self._ship_now = threading.Event()
        self.shipped = 0
        self._pump = threading.Thread(target=self._pump_forever, name="function-logs", daemon=True)
        self._shipper = threading.Thread(target=self._ship_forever, name="function-logs-shipper", daemon=True)
        self._pump.start()
        if self._logs is not None:
            self._shipper.start()

    def attach(self, function: str) -> tuple[int, str]:
        """A new worker's output: the write end of its pipe (the caller hands it to the worker and closes it)
        and its log stream's name."""
        read, write = os.pipe()
        os.set_blocking(read, False)
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        source = _Source(function, self.log_groups.get(function, f"/aws/lambda/{function}"), stream)
        self._selector.register(read, selectors.EVENT_READ, source)
        os.write(self._wake_write, b"x")  # the pump picks the new pipe up on its next select
        return write, stream

    def stop(self, timeout: float = 10.0) -> None:
        """Read what the workers left in their pipes, then ship the rest to CloudWatch."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        self._pump.join(timeout=timeout)
        if self._shipper.is_alive():
            self._ship_now.set()
            self._shipper.join(timeout=timeout)
        for key in list(self._selector.get_map() or {}):
            with contextlib.suppress(Exception):
                self._selector.unregister(key)
                os.close(key)
        self._selector.close()
        os.close(self._wake_write)

    # --- the pump ---------------------------------------------------------------------------

    def _pump_forever(self) -> None:
        while True:
            ready = self._selector.select(timeout=0.2 if self._stopping.is_set() else 1.0)
            for key, _ in ready:
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(key.fd, READ_BYTES)
                    continue
                self._read(key.fd, key.data)
            if self._stopping.is_set() and (not ready or len(self._selector.get_map()) == 1):
                return  # every worker's pipe read to its end (or silent for 0.2 s)

    def _read(self, fd: int, source: _Source) -> None:
        try:
            chunk = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            source.pending += chunk
            *lines, rest = source.pending.split(b"\n")
            source.pending = bytearray(rest)
            if len(source.pending) > MAX_EVENT_BYTES:  # a line too long for one event: cut it
                lines.append(bytes(source.pending))
                source.pending.clear()
        else:  # the worker is gone
            lines = [bytes(source.pending)] if source.pending else []
            source.pending.clear()
            self._selector.unregister(fd)
            os.close(fd)
        self._take(source, [line.decode("utf-8", "replace") for line in lines if line.strip()])

    def _take(self, source: _Source, lines: list[str]) -> None:
        if not lines:
            return
        now = int(time.time() * 1000)
        records = []
        for line in lines:
            record: Any = None
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
            if isinstance(record, dict):
                record.setdefault("function", source.function)
            else:
                record = {"function": source.function, "message": line}
            records.append(record)
        self.log_file.write(records)
        if self._logs is not None:
            with self._events_lock:
                self._events.extend((source.group, source.stream, now, line) for line in lines)

    # --- the shipper ----------------------------------------------------------------------------

    def _ship_forever(self) -> None:
        while True:
            stopping = self._stopping.is_set() and not self._pump.is_alive()
            try:
                self._ship()
            except Exception:  # moto going away: the file still has every line
                if not self._stopping.is_set():
                    log.exception("shipping function logs to CloudWatch Logs failed")
            if stopping:
                return
            self._ship_now.wait(SHIP_INTERVAL_SECONDS)
            self._ship_now.clear()

    def _ship(self) -> None:
        with self._events_lock:
            events, self._events = self._events, []
        by_stream: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for group, stream, timestamp, message in events:
            by_stream.setdefault((group, stream), []).append((timestamp, message))
        for (group, stream), entries in by_stream.items():
            if (group, stream) not in self._streams:
                with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                    self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._streams.add((group, stream))
            entries.sort(key=lambda e: e[0])  # stable: lines of one millisecond keep their order
            for batch in _batches(entries):
                self._logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": t, "message": m} for t, m in batch],
                )
                self.shipped += len(batch)


def _batches(entries: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """put_log_events' limits: at most 10,000 events and 1 MiB (message bytes + 26 each) a call."""
    batches: list[list[tuple[int, str]]] = [[]]
    size = 0
    for entry in entries:
        event_size = len(entry[1].encode("utf-8")) + EVENT_OVERHEAD_BYTES
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += event_size
    return [b for b in batches if b]
