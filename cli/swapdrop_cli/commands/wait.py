"""`swapdrop wait JOB...`, and the waiting `swapdrop swap --wait` shares: poll, show, download.

Polling is GET /jobs/{id}?wait=N from a few worker threads. The stack's ApiFunction serves a
limited number of requests at once (its reserved concurrency; locally a handful of workers), and a
long poll holds one for up to N seconds: so while more jobs are open than there are pollers, each
job gets a quick look (wait=0) every PACE seconds, and only when every open job can have a poller
of its own do the polls hold (wait=N). Workers are daemon threads: Ctrl-C ends the wait at once.
"""

from __future__ import annotations

import argparse
import heapq
import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from swapdrop.layout import CONTENT_TYPES, extension_of, face_key_candidate_prefixes, match_face_keys, printable

from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.progress import TERMINAL, JobRow, Progress, format_elapsed, make_progress
from swapdrop_cli.targets import output_path, result_relative

POLL_WAIT_SECONDS = 3
"""?wait= of a held poll: it answers at once when the job ends, else after this long, so the display
still sees progress every few seconds (the API holds up to 25 s, but only a terminal status ends a hold)."""
PACE_SECONDS = 1.0
"""A job's quick polls come at most this often while there are more open jobs than pollers."""
MAX_REQUESTS_PER_SECOND = 10.0
"""Quick polls of many jobs together stay under this rate (the pace stretches with the job count)."""
POLLERS = {"local": 2, "stack": 4}
"""Concurrent polls: locally the ApiFunction has 4 workers and uploads and creates need some too
(measured: bench figures in the report); a deployed ApiFunction has ApiConcurrency (20 by default)."""
RESULT_SETTLE_SECONDS = 60.0
"""SUCCESS comes a moment before the result is copied into the bucket: ask again this long."""
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Back-off after a failed poll (API 5xx, 429, connection refused); the last delay repeats."""
MANIFEST = ".swapdrop-jobs.json"
"""In --out: job id → the result's relative path, so `swapdrop wait --out` names results as swap did."""
FAILED_STATUSES = TERMINAL - {"SUCCESS"}

HELP = "wait for jobs to finish, showing their progress, and download their results"
EXAMPLES = """\
Examples:
  swapdrop wait 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617
  swapdrop wait JOB1 JOB2 --out results/ --timeout 600
  swapdrop wait JOB --json | jq -r .status

Progress goes to stderr (a live table on a terminal, one line per change elsewhere); the summary
to stdout. With --out, results are saved there: under the paths `swapdrop swap --out` used for the
same folder, else as <jobId>.<ext>. Ctrl-C stops waiting, not the jobs.
Exit status: 0 when every job succeeded, 1 when one failed, was rejected or cancelled, when a result
could not be saved, or when --timeout passed first; 130 on Ctrl-C."""


# --- what is waited on ------------------------------------------------------------------------


@dataclass
class Watched:
    """One job being waited on, and what became of its result."""

    row: JobRow
    view: dict
    relative: str | None = None
    """The result's path below --out (its extension replaced by the result's); None: the job id."""
    source: Path | None = None
    """The local target file, for --side-by-side (else the target is read from the bucket)."""
    done: bool = False
    saved: Path | None = None
    side_by_side: Path | None = None
    problem: str | None = None
    """Why the result was not saved (the job itself may have succeeded): the run fails."""
    warning: str | None = None
    """Something asked for that could not be made (a side-by-side image): said, but the run does not fail."""
    success_since: float | None = None

    @property
    def job_id(self) -> str:
        return self.row.job_id

    @property
    def ok(self) -> bool:
        return self.row.status == "SUCCESS" and self.problem is None

    def summary(self) -> dict[str, Any]:
        view = self.view
        record: dict[str, Any] = {"jobId": self.job_id, "target": self.row.target, "status": self.row.status}
        if view.get("failReason"):
            record["failReason"] = view["failReason"]
        if (view.get("result") or {}).get("key"):
            record["resultKey"] = view["result"]["key"]
        if self.saved:
            record["result"] = str(self.saved)
        if self.side_by_side:
            record["sideBySide"] = str(self.side_by_side)
        if self.problem:
            record["problem"] = self.problem
        if self.warning:
            record["warning"] = self.warning
        return record


class Waiter:
    """Polls jobs until each is terminal (with its result, for SUCCESS), calling `on_finished` for each."""

    def __init__(
        self,
        api: Any,
        watched: list[Watched],
        progress: Progress,
        pollers: int,
        on_finished: Callable[[Watched], None] | None = None,
        poll_wait: int = POLL_WAIT_SECONDS,
        pace: float = PACE_SECONDS,
        max_rate: float = MAX_REQUESTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.watched = {item.job_id: item for item in watched}
        self.progress = progress
        self.pollers = max(1, pollers)
        self.on_finished = on_finished or (lambda item: None)
        self.poll_wait = poll_wait
        self.pace = pace
        self.max_rate = max_rate
        self.clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._order = 0
        self._open = 0
        self._stop = False
        self._fatal: CliError | None = None
        self._failures: dict[str, int] = {}
        self._all_done = threading.Event()

    def run(self, timeout: float | None = None) -> bool:
        """True when every job finished; False when `timeout` passed first. KeyboardInterrupt propagates."""
        now = self.clock()
        for item in self.watched.values():
            if item.done:
                continue
            self._open += 1
            self._push(now, item.job_id)
        if self._open == 0:
            return True
        threads = [
            threading.Thread(target=self._work, name=f"swapdrop-poll-{n}", daemon=True)
            for n in range(min(self.pollers, self._open))
        ]
        for thread in threads:
            thread.start()
        deadline = None if timeout is None else now + timeout
        try:
            while not self._all_done.wait(0.1):
                if self._fatal is not None:
                    raise self._fatal
                if deadline is not None and self.clock() >= deadline:
                    return False
        finally:
            self.stop()
        if self._fatal is not None:
            raise self._fatal
        return True

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    @property
    def unfinished(self) -> list[str]:
        return [job_id for job_id, item in self.watched.items() if not item.done]

    # --- workers --------------------------------------------------------------------------

    def _push(self, when: float, job_id: str) -> None:
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, job_id))

    def _next(self) -> str | None:
        with self._cond:
            while not self._stop:
                now = self.clock()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)[2]
                delay = self._heap[0][0] - now if self._heap else 1.0
                self._cond.wait(min(max(delay, 0.01), 1.0))
            return None

    def _work(self) -> None:
        while True:
            job_id = self._next()
            if job_id is None:
                return
            try:
                self._poll(self.watched[job_id])
            except CliError as error:
                self._give_up(error)
                return
            except Exception as error:  # a bug must not hang the wait forever
                self._give_up(CliError(f"waiting failed: {type(error).__name__}: {error}", ExitCode.UNREACHABLE))
                return

    def _poll(self, item: Watched) -> None:
        settling = item.row.status == "SUCCESS"
        wait = self.poll_wait if (self._open <= self.pollers and not settling) else 0
        started = self.clock()
        try:
            view = self.api.get_job(item.job_id, wait=wait)
        except CliError as error:
            self._poll_failed(item, error)
            return
        self._failures.pop(item.job_id, None)
        item.view = view
        item.row.update(view)
        now = self.clock()
        status = item.row.status
        if status == "SUCCESS" and not view.get("result"):
            item.success_since = item.success_since or now
            if now - item.success_since < RESULT_SETTLE_SECONDS:
                self.progress.changed(item.row)
                self._again(item.job_id, now + 0.5)
                return
            item.problem = f"succeeded, but its result is not in the bucket yet: swapdrop result {item.job_id} later"
        if status in TERMINAL:
            self._finish(item)
            return
        self.progress.changed(item.row)
        held = wait > 0 and now - started >= 1.0
        self._again(item.job_id, now if held else now + self._pace())

    def _pace(self) -> float:
        return max(self.pace, self._open / self.max_rate)

    def _poll_failed(self, item: Watched, error: CliError) -> None:
        status = getattr(error, "status", None)
        if error.exit_code == ExitCode.AUTH:
            raise error
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            item.row.status = "UNKNOWN" if status == 404 else item.row.status
            item.problem = error.message  # asking again would get the same answer
            self._finish(item)
            return
        failures = self._failures.get(item.job_id, 0)
        self._failures[item.job_id] = failures + 1
        delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
        if failures == 0 or failures % 5 == 4:
            self.progress.message(f"polling {item.job_id} failed ({error.message}); retrying in {delay:.0f}s")
        self._again(item.job_id, self.clock() + delay)

    def _again(self, job_id: str, when: float) -> None:
        with self._cond:
            self._push(when, job_id)
            self._cond.notify()

    def _finish(self, item: Watched) -> None:
        if item.row.status in TERMINAL:
            try:
                self.on_finished(item)
            except CliError as error:
                item.problem = error.message
            except OSError as error:  # --out not writable, disk full: this result, not the whole wait
                item.problem = f"saving the result failed: {error.strerror or error}"
        if item.problem and not item.row.note:
            item.row.note = item.problem
        elif item.saved and item.row.status == "SUCCESS":
            item.row.note = f"→ {item.saved}"
        item.done = True
        self.progress.changed(item.row)
        with self._cond:
            self._open -= 1
            if self._open <= 0:
                self._all_done.set()
            self._cond.notify_all()

    def _give_up(self, error: CliError) -> None:
        with self._cond:
            if self._fatal is None:
                self._fatal = error
            self._stop = True
            self._cond.notify_all()


# --- results ----------------------------------------------------------------------------------


class Saver:
    """Downloads each finished job's result under --out and, with --side-by-side, its comparison image."""

    def __init__(self, api: Any, out_dir: Path, side_by_side: bool = False, target: Any = None) -> None:
        self.api = api
        self.out_dir = out_dir
        self.side_by_side = side_by_side
        self.target = target
        self._faces: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    def __call__(self, item: Watched) -> None:
        if item.row.status != "SUCCESS" or not item.view.get("result"):
            return
        result = item.view["result"]
        relative = result_relative(item.relative or item.job_id, result_extension(result))
        destination = output_path(self.out_dir, relative)
        try:
            self.api.download(result["url"], destination)
        except CliError:
            # A presigned URL that expired while we were busy: a fresh view has a fresh one.
            fresh = self.api.get_job(item.job_id)
            if not fresh.get("result"):
                raise
            self.api.download(fresh["result"]["url"], destination)
        item.saved = destination
        if self.side_by_side:
            self._side_by_side(item, destination)

    def _side_by_side(self, item: Watched, result_path: Path) -> None:
        from swapdrop_cli.side_by_side import compose, side_by_side_name

        face = self._face(item.view.get("face"))
        target = item.source.read_bytes() if item.source else self._object((item.view.get("target") or {}).get("key"))
        if face is None or target is None:
            item.warning = "no side-by-side image: the face or the target could not be read from the bucket"
            return
        destination = output_path(self.out_dir, side_by_side_name(_relative_to(result_path, self.out_dir)))
        try:
            image = compose(face, target, result_path.read_bytes())
        except ValueError as error:
            item.warning = f"no side-by-side image: {error}"
            return
        write_atomically(destination, image)
        item.side_by_side = destination

    def _face(self, face: str | None) -> bytes | None:
        if not face:
            return None
        with self._lock:
            if face not in self._faces:
                self._faces[face] = self._read_face(face)
            return self._faces[face]

    def _read_face(self, face: str) -> bytes | None:
        if self.target is None:
            return None
        s3 = self.target.client("s3")
        keys: list[str] = []
        try:
            for prefix in face_key_candidate_prefixes(face):
                listing = s3.list_objects_v2(Bucket=self.target.bucket, Prefix=prefix, MaxKeys=20)
                keys.extend(entry["Key"] for entry in listing.get("Contents") or [])
        except (BotoCoreError, ClientError):  # a side-by-side image is a nicety: say so and go on
            return None
        matches = match_face_keys(face, keys)
        return self._object(matches[0]) if len(matches) == 1 else None

    def _object(self, key: str | None) -> bytes | None:
        if not key or self.target is None:
            return None
        try:
            return self.target.client("s3").get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError):
            return None


def result_extension(result: dict) -> str:
    """The result's extension from its content type, else its key, else png."""
    content_type = str(result.get("contentType") or "").split(";")[0].strip().lower()
    return CONTENT_TYPES.get(content_type) or extension_of(str(result.get("key") or "")) or "png"


def _relative_to(path: Path, root: Path) -> str:
    return path.relative_to(root.resolve()).as_posix()


def write_atomically(destination: Path, data: bytes) -> None:
    """Whole or not at all; replaces a link at `destination` instead of writing through it."""
    import os
    import tempfile

    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_manifest(out_dir: Path | None) -> dict[str, str]:
    if out_dir is None:
        return {}
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in jobs.items()} if isinstance(jobs, dict) else {}


def write_manifest(out_dir: Path, relatives: dict[str, str]) -> None:
    """Add `relatives` (job id → result path) to --out's manifest, for a later `swapdrop wait --out`."""
    merged = {**read_manifest(out_dir), **relatives}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / MANIFEST, json.dumps({"jobs": merged}, indent=1).encode())


# --- the shared flow --------------------------------------------------------------------------


def wait_for(ctx: Any, watched: list[Watched], out_dir: Path | None, side_by_side: bool, timeout: float | None) -> int:
    """Wait for `watched`, save results, print the summary; the exit code (0, 1 or 130)."""
    output = ctx.output
    args = ctx.args
    target = ctx.target
    saver = Saver(ctx.api, out_dir, side_by_side, target) if out_dir is not None else None
    show_progress = not output.quiet
    progress = make_progress(output.stderr, quiet=not show_progress)
    rows = [item.row for item in watched]
    waiter = Waiter(
        ctx.api,
        watched,
        progress,
        pollers=POLLERS.get(target.kind, 2),
        on_finished=saver,
        poll_wait=POLL_WAIT_SECONDS,
        pace=PACE_SECONDS,
        max_rate=MAX_REQUESTS_PER_SECOND,
    )
    started = time.monotonic()
    progress.start(rows)
    try:
        finished = waiter.run(timeout)
    except KeyboardInterrupt:
        waiter.stop()
        progress.stop()
        output.stderr.write("\nstopped waiting; the jobs go on. To wait again:\n")
        output.stderr.write(resume_command(args, waiter.unfinished, out_dir) + "\n")
        output.stderr.flush()
        return ExitCode.INTERRUPTED
    finally:
        progress.stop()
    elapsed = time.monotonic() - started
    print_summary(output, watched)
    failed = [item for item in watched if item.done and not item.ok]
    succeeded = sum(item.ok for item in watched)
    if show_progress:
        output.note(
            f"{succeeded} of {len(watched)} succeeded in {format_elapsed(elapsed)}"
            + (f"; {len(failed)} did not" if failed else "")
        )
    if not finished:
        output.stderr.write(f"error: still waiting after {timeout:g}s; the jobs go on. To wait again:\n")
        output.stderr.write(resume_command(args, waiter.unfinished, out_dir) + "\n")
        return ExitCode.JOBS_FAILED
    return ExitCode.JOBS_FAILED if failed else ExitCode.OK


def print_summary(output: Any, watched: list[Watched]) -> None:
    if output.json_mode:
        for item in watched:
            output.emit(item.summary())
        return
    rows = []
    for item in watched:
        where = str(item.saved) if item.saved else (item.view.get("result") or {}).get("key") or ""
        fail_reason = printable(str(item.view.get("failReason"))) if item.view.get("failReason") else ""
        reason = item.problem or fail_reason or item.warning or ""
        rows.append((item.job_id, item.row.target, item.row.status, where, reason))
    columns = ["job", "target", "status", "result", "reason"]
    if not any(row[4] for row in rows):
        columns, rows = columns[:4], [row[:4] for row in rows]
    output.table(columns, rows)


def resume_command(args: Any, job_ids: list[str], out_dir: Path | None) -> str:
    """`swapdrop [target options] wait JOB… [--out DIR]`, ready to paste."""
    words = ["swapdrop"]
    if getattr(args, "local", None):
        info = str(args.local)
        # `--local X` reads X as the info file only when it looks like one (a '/', '.json'), else --local=X.
        words += ["--local", info] if "/" in info or info.endswith(".json") else [f"--local={info}"]
    elif getattr(args, "stack", None):
        words += ["--stack", args.stack]
    if getattr(args, "region", None):
        words += ["--region", args.region]
    if getattr(args, "profile", None):
        words += ["--profile", args.profile]
    words.append("wait")
    words += job_ids
    if out_dir is not None:
        words += ["--out", str(out_dir)]
    return shlex.join(words)


# --- the command ------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("wait", help=HELP, epilog=EXAMPLES)
    parser.add_argument("job_ids", metavar="JOB", nargs="+", help="job ids (as `swapdrop swap` printed them)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="save each successful job's result in DIR")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --out, also write <name>.side-by-side.jpg: face | target | result (needs swapdrop[images])",
    )
    parser.add_argument("--timeout", metavar="S", type=_seconds, help="stop waiting after S seconds (exit 1)")
    parser.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return value


def run(args: argparse.Namespace, ctx: Any) -> int:
    job_ids = list(dict.fromkeys(args.job_ids))
    for job_id in job_ids:
        if not job_id or len(job_id) > 64 or not (job_id.isascii() and job_id.isalnum()):
            raise CliError(f"'{printable(job_id)}' is not a job id", ExitCode.USAGE, hint="swapdrop jobs lists them")
    if args.side_by_side:
        if args.out is None:
            raise CliError("--side-by-side needs --out DIR (where to write the images)", ExitCode.USAGE)
        from swapdrop_cli.side_by_side import require_pillow

        require_pillow()
    api = ctx.api
    views = [api.get_job(job_id) for job_id in job_ids]  # unknown job → exit 2 before anything else
    manifest = read_manifest(args.out)
    watched = []
    for view in views:
        relative = manifest.get(view["jobId"])
        row = JobRow(job_id=view["jobId"], target=relative or describe_target(view))
        row.update(view)
        watched.append(Watched(row=row, view=view, relative=relative))
    return wait_for(ctx, watched, args.out, args.side_by_side, args.timeout)


def describe_target(view: dict) -> str:
    """What a job's target was, for a person: its URL, else its key."""
    target = view.get("target") or {}
    return str(target.get("url") or target.get("key") or "")
