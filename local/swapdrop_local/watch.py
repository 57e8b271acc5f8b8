"""A drop folder on a laptop: DIR/faces and DIR/inbox mirrored into the bucket, results back.

- Changes come from watchdog (inotify, FSEvents, ReadDirectoryChangesW), not a scan loop. A
  file is uploaded once it is complete: size, mtime and inode unchanged for `settle` seconds
  and, where inotify says so (Linux), no write since its writer last closed it. A photo
  copied in two halves is one upload of the whole file; a file replaced while settling is
  uploaded once, as its last version. A file written in a brand-new folder in the instant
  before watchdog has added that folder's watch shows no open writer: like a file on macOS
  or Windows, it is judged by the settle time alone.
- Results come down only into DIR/results, which is not watched, so a result is never
  uploaded again. A results key that would land anywhere else ('..', absolute parts,
  control characters, backslashes, a symlink out of DIR/results) is refused with a log line.
- A name the layout refuses (a control character, say) is still uploaded under inbox/, so
  its job ends REJECTED with the reason where people look for it (DESIGN: every upload ends
  with a job record). Only names S3 cannot hold (not UTF-8, over 1,024 bytes) stay local,
  with a log line. Every key in a log line goes through `printable`.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from swapdrop.layout import (
    FACES_PREFIX,
    INBOX_PREFIX,
    MAX_KEY_BYTES,
    RESULTS_PREFIX,
    LayoutError,
    key_problem,
    parse_inbox_key,
    printable,
)
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = logging.getLogger("swapdrop.local.watch")
MIRRORED = ("faces", "inbox")
RESULTS = "results"
TEMPORARY_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", "~")
"""Names browsers, editors and copiers write before renaming to the final name: never uploaded."""


@dataclass(frozen=True, slots=True)
class Signature:
    """What changes when a file's content does (the inode too: a file replaced by rename)."""

    size: int
    mtime_ns: int
    inode: int


def signature_of(path: Path) -> Signature | None:
    """None when the path is gone or is not a regular file."""
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return Signature(info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass(slots=True)
class _Settling:
    signature: Signature
    stable_since: float
    last_write: float | None = None
    """When inotify last reported a write with no close after it; None once closed."""


class Settler:
    """Which files are complete: unchanged for `settle` seconds and, when the platform reports
    closes, not written since their writer's last close. A close that never comes (an event
    lost to a full queue) stops counting `writer_grace` seconds after the last write."""

    def __init__(
        self,
        settle: float,
        writer_grace: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settle = settle
        self.writer_grace = writer_grace
        self._clock = clock
        self._wall_clock = wall_clock
        self._files: dict[Path, _Settling] = {}

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def signature(self, path: Path) -> Signature | None:
        entry = self._files.get(path)
        return entry.signature if entry else None

    def seen(self, path: Path, signature: Signature) -> None:
        """The file as it is now; a new signature starts its settle time again. The clock starts
        at its mtime (if recent): a file untouched for `settle` seconds is already complete."""
        entry = self._files.get(path)
        if entry and entry.signature == signature:
            return
        now = self._clock()
        age = min(max(self._wall_clock() - signature.mtime_ns / 1e9, 0.0), self.settle)
        same_file = entry is not None and entry.signature.inode == signature.inode
        last_write = entry.last_write if same_file and entry else None
        self._files[path] = _Settling(signature, now - age, last_write)

    def written(self, path: Path, signature: Signature) -> None:
        self.seen(path, signature)
        self._files[path].last_write = self._clock()

    def closed(self, path: Path, signature: Signature) -> None:
        self.seen(path, signature)
        self._files[path].last_write = None

    def postpone(self, path: Path) -> None:
        """Try again a full settle time from now (after a failed upload)."""
        entry = self._files.get(path)
        if entry:
            entry.stable_since = self._clock()

    def forget(self, path: Path) -> None:
        self._files.pop(path, None)

    def forget_under(self, folder: Path) -> None:
        for path in [p for p in self._files if p.is_relative_to(folder)]:
            del self._files[path]

    def due(self) -> list[Path]:
        now = self._clock()
        return sorted(path for path, entry in self._files.items() if self._wait(entry, now) <= 0)

    def next_check(self) -> float | None:
        """Seconds until some file may be due; None when nothing is settling."""
        now = self._clock()
        return min((max(self._wait(entry, now), 0.0) for entry in self._files.values()), default=None)

    def _wait(self, entry: _Settling, now: float) -> float:
        wait = entry.stable_since + self.settle - now
        if entry.last_write is not None:
            wait = max(wait, entry.last_write + self.writer_grace - now)
        return wait


class _Forward(FileSystemEventHandler):
    """watchdog calls this on its own thread; the mirror handles events on one thread of its own."""

    def __init__(self, events: queue.SimpleQueue[FileSystemEvent | None]) -> None:
        self._events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._events.put(event)


class FolderMirror:
    def __init__(
        self,
        root: Path,
        s3: Any,
        bucket: str,
        interval: float = 1.0,
        settle: float = 3.0,
        writer_grace: float = 60.0,
        observer_factory: Callable[[], BaseObserver] = Observer,
    ) -> None:
        """`interval`: how often results are fetched. `settle`: how long a file must stay unchanged
        before upload (3 s: longer than the pause of the two-halves copy that issue 6 reported)."""
        for name in (*MIRRORED, RESULTS):
            (Path(root) / name).mkdir(parents=True, exist_ok=True)
        self.root = Path(root).resolve()
        self._mirrored = {name: (self.root / name).resolve() for name in MIRRORED}
        self._results = (self.root / RESULTS).resolve()
        for name, folder in self._mirrored.items():
            if self._results.is_relative_to(folder) or folder.is_relative_to(self._results):
                raise ValueError(f"{self._results} and {folder} overlap: results would be uploaded as {name}")
        self._s3 = s3
        self._bucket = bucket
        self._interval = interval
        self._settler = Settler(settle, writer_grace)
        self._uploaded: dict[Path, Signature] = {}
        self._downloaded: dict[str, str] = {}
        self._events: queue.SimpleQueue[FileSystemEvent | None] = queue.SimpleQueue()
        self._observer_factory = observer_factory
        self._observer: BaseObserver | None = None
        self._knows_closes = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def start(self) -> FolderMirror:
        observer = self._observer_factory()
        handler = _Forward(self._events)
        for folder in self._mirrored.values():
            observer.schedule(handler, str(folder), recursive=True)
        observer.start()
        self._observer = observer
        self._knows_closes = _reports_closes(observer)
        with self._lock:
            self._scan()  # what was there before the watch began; events cover everything after
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._events.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)

    def sync_once(self, timeout: float = 60.0) -> tuple[int, int]:
        """One pass without the watcher: upload every file under faces/ and inbox/ once it is
        complete (waiting up to `timeout` seconds for files still settling), then fetch new
        results. How many of each."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._scan()
            uploaded = self._upload_due()
            while (delay := self._settler.next_check()) is not None and not self._stop.is_set():
                if time.monotonic() + delay > deadline:
                    break
                self._stop.wait(delay)
                uploaded += self._upload_due()
            return uploaded, self._download_results()

    # --- the watcher's thread ---------------------------------------------------------

    def _run(self) -> None:
        next_results = 0.0
        while not self._stop.is_set():
            waits = [max(next_results - time.monotonic(), 0.0)]
            if (settling := self._settler.next_check()) is not None:
                waits.append(settling)
            try:
                event = self._events.get(timeout=min(waits))
            except queue.Empty:
                event = None
            try:
                with self._lock:
                    for pending in self._drain(event):
                        self._on_event(pending)
                    self._upload_due()
                    if time.monotonic() >= next_results:
                        next_results = time.monotonic() + self._interval
                        self._download_results()
            except Exception:
                log.exception("folder sync failed")

    def _drain(self, first: FileSystemEvent | None) -> Iterator[FileSystemEvent]:
        event = first
        while True:
            if event is not None:
                yield event
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _on_event(self, event: FileSystemEvent) -> None:
        source = Path(os.fsdecode(event.src_path))
        target = Path(os.fsdecode(event.dest_path)) if event.dest_path else None
        if event.is_directory:
            if event.event_type == "created":
                self._scan(source)
            elif event.event_type == "moved" and target is not None:
                self._settler.forget_under(source)
                self._scan(target)
            elif event.event_type == "deleted":
                self._settler.forget_under(source)
            return
        match event.event_type:
            case "deleted":
                self._settler.forget(source)
            case "moved":
                self._settler.forget(source)
                if target is not None:
                    self._note(target)
            case "created" | "attrib":
                self._note(source)
            case "modified":
                self._note(source, writing=self._knows_closes)
            case "closed":
                self._note(source, closed=True)
            case _:  # opened, closed without writing: reads (ours too) change nothing
                pass

    # --- uploads ----------------------------------------------------------------------

    def _scan(self, folder: Path | None = None) -> None:
        for top in [folder] if folder else self._mirrored.values():
            for path in sorted(top.rglob("*")):
                if path.is_file():
                    self._note(path)

    def _note(self, path: Path, writing: bool = False, closed: bool = False) -> None:
        if self._key_for(path) is None:
            return
        signature = signature_of(path)
        if signature is None or self._uploaded.get(path) == signature:
            self._settler.forget(path)
        elif writing:
            self._settler.written(path, signature)
        elif closed:
            self._settler.closed(path, signature)
        else:
            self._settler.seen(path, signature)

    def _key_for(self, path: Path) -> str | None:
        """The key a local file is uploaded as, or None for files the mirror leaves alone
        (outside faces/ and inbox/, hidden, or a download still in progress)."""
        inside = [(name, folder) for name, folder in self._mirrored.items() if path.is_relative_to(folder)]
        if not inside or path == inside[0][1]:
            return None
        name, folder = inside[0]
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.name.endswith(TEMPORARY_SUFFIXES):
            return None
        return f"{name}/{relative.as_posix()}"

    def _upload_due(self) -> int:
        count = 0
        for path in self._settler.due():
            expected = self._settler.signature(path)
            signature = signature_of(path)
            if signature is None or self._uploaded.get(path) == signature:
                self._settler.forget(path)
            elif signature != expected:
                self._settler.seen(path, signature)  # changed since last seen: settle again
            else:
                count += self._upload(path, signature)
        return count

    def _upload(self, path: Path, signature: Signature) -> int:
        key = self._key_for(path)
        assert key is not None
        refusal = _unstorable(key)
        if refusal:
            log.warning("not uploaded: %s %s", printable(key), refusal)
            self._settler.forget(path)
            self._uploaded[path] = signature  # said once; a new version is looked at again
            return 0
        try:
            body = path.read_bytes()
        except OSError as error:
            log.warning("not uploaded: %s could not be read (%s)", printable(key), error.strerror or error)
            self._settler.forget(path)
            return 0
        after = signature_of(path)
        if after != signature:  # written to while we read it: not complete after all
            if after is None:
                self._settler.forget(path)
            else:
                self._settler.seen(path, after)
            return 0
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        except Exception as error:
            log.warning("upload of %s failed (%s); will try again", printable(key), type(error).__name__)
            self._settler.postpone(path)
            return 0
        self._settler.forget(path)
        self._uploaded[path] = signature
        warning = _layout_warning(key)
        if warning:
            log.warning("uploaded %s, but %s", printable(key), warning)
        else:
            log.info("uploaded %s", printable(key))
        return 1

    # --- results ----------------------------------------------------------------------

    def _download_results(self) -> int:
        count = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=RESULTS_PREFIX):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj["ETag"]
                if self._downloaded.get(key) == etag:
                    continue
                target = self._result_path(key)
                if target is None:
                    self._downloaded[key] = etag  # refused once, with a log line
                    continue
                body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                try:
                    self._write_result(target, body)
                except OSError as error:
                    log.warning("result %s not saved: %s", printable(key), error.strerror or error)
                else:
                    count += 1
                    log.info("result %s", printable(key))
                self._downloaded[key] = etag
        return count

    def _result_path(self, key: str) -> Path | None:
        """Where a results key is saved: inside DIR/results and nowhere else, or None (logged)."""
        problem = key_problem(key) if key.startswith(RESULTS_PREFIX) else f"is not under {RESULTS_PREFIX}"
        parts = key[len(RESULTS_PREFIX) :].split("/")
        if problem is None and any(_not_a_plain_name(part) for part in parts):
            problem = "has a part that is not a plain file or folder name"
        if problem is None:
            resolved = self._results.joinpath(*parts).resolve()
            if not resolved.is_relative_to(self._results) or resolved == self._results:
                problem = f"would be saved outside {self._results}"
            elif any(resolved.is_relative_to(folder) for folder in self._mirrored.values()):
                problem = "would be saved where the mirror uploads from"
            else:
                return resolved
        log.warning("result %s refused: %s", printable(key), _without_quoted_key(problem, key))
        return None

    def _write_result(self, target: Path, body: bytes) -> None:
        """Whole or not at all (a temporary file renamed into place), and only inside DIR/results,
        checked again after creating its folders in case one of them is a symlink out."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(self._results):
            raise OSError(f"{printable(str(target.parent))} leads outside {self._results}")
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".swapdrop-", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(body)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _reports_closes(observer: BaseObserver) -> bool:
    """Only inotify tells when a writer closes a file; elsewhere the settle time alone decides."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return False
    return isinstance(observer, InotifyObserver)


def _unstorable(key: str) -> str | None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "(its name is not valid UTF-8, which S3 keys must be; rename it)"
    if size > MAX_KEY_BYTES:
        return f"(its key is {size:,} bytes, over S3's limit of {MAX_KEY_BYTES:,}; use a shorter name or path)"
    return None


def _layout_warning(key: str) -> str | None:
    """Why an uploaded name will not work, told on the laptop as well as in the job record."""
    if key.startswith(INBOX_PREFIX):
        try:
            parse_inbox_key(key)
        except LayoutError as error:
            return f"its job will be REJECTED: {error}"
    elif key.startswith(FACES_PREFIX):
        name = key[len(FACES_PREFIX) :]
        problem = key_problem(key)
        if problem:
            return f"it cannot be used as a face: {problem}"
        if "/" in name:
            return f"faces in subfolders are not used: put it directly in {FACES_PREFIX}"
    return None


def _not_a_plain_name(part: str) -> bool:
    """A name the local filesystem would read as more than one name (or as a drive, on Windows)."""
    pure = PurePath(part)
    return pure.is_absolute() or bool(pure.drive) or len(pure.parts) != 1 or pure.name != part


def _without_quoted_key(problem: str, key: str) -> str:
    """key_problem's messages start with the key; the log line already shows it."""
    quoted = f"'{printable(key)}' "
    return problem.removeprefix(quoted) if problem.startswith(quoted) else problem
