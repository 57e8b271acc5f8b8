"""Live progress of jobs being waited on, on stderr.

On a terminal: a rich Live table (status, progress bar, queue position, elapsed), redrawn a few
times a second. Elsewhere (CI logs, pipes): one plain line per change of a job's status, progress
or queue position, so a log stays short and greppable. Updates come from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from swapdrop.layout import printable

from swapdrop_cli.timestamps import parse_utc

TERMINAL = frozenset({"SUCCESS", "FAILURE", "REJECTED", "CANCELLED"})
STATUS_STYLES = {
    "SUCCESS": "green",
    "FAILURE": "red",
    "REJECTED": "red",
    "CANCELLED": "yellow",
    "IN_PROGRESS": "cyan",
    "SUBMITTED": "blue",
}
REFRESH_PER_SECOND = 4
BAR_WIDTH = 12
FIXED_COLUMNS_WIDTH = 12 + 15 + BAR_WIDTH + 4 + 5 + 7 + 6 * 2
"""The live table's columns other than the target, with rich's one-space padding on each side."""
TARGET_CHARS = 48
"""A target longer than this is shown with its start cut off (the end names the file)."""


def parse_time(text: str | None) -> float | None:
    """An API timestamp ('2024-10-16T09:59:21.500Z') as epoch seconds; Python 3.10 needs '+00:00'."""
    moment = parse_utc(text) if text else None
    return moment.timestamp() if moment else None


@dataclass
class JobRow:
    """What the display shows of one job; `update` takes the API's job view."""

    job_id: str
    target: str
    status: str = "AWAITING_UPLOAD"
    progress: int = 0
    queue_position: int | None = None
    created: float | None = None
    finished: float | None = None
    note: str = ""
    """Why it failed, or where its result went."""
    seen_at: float = field(default_factory=time.time)

    def update(self, view: dict[str, Any]) -> None:
        self.status = str(view.get("status") or self.status)
        self.progress = _percent(view.get("progress"), self.progress)
        position = view.get("queuePosition")
        self.queue_position = position if isinstance(position, int) and not isinstance(position, bool) else None
        self.created = parse_time(view.get("createdAt")) or self.created
        self.finished = parse_time(view.get("finishedAt")) or self.finished
        if self.status in TERMINAL and self.status != "SUCCESS" and view.get("failReason"):
            self.note = printable(str(view["failReason"]))
        if self.status == "SUCCESS":
            self.progress = 100

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the job was created (or first seen), until it finished."""
        start = self.created or self.seen_at
        end = self.finished if self.done and self.finished else (now or time.time())
        return max(0.0, end - start)

    def queue_text(self) -> str:
        return "" if self.queue_position is None else f"#{self.queue_position}"


def _percent(value: Any, fallback: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fallback
    return max(0, min(100, int(value)))


def short_target(text: str, limit: int = TARGET_CHARS) -> str:
    text = printable(text)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def format_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """No display (--quiet, --json on a pipe): the interface the others share."""

    def start(self, rows: list[JobRow]) -> None:
        self.rows = rows

    def changed(self, row: JobRow) -> None:
        """Called (from any thread) after `row` was updated."""

    def message(self, text: str) -> None:
        """A note for the person while the display runs (a retry, a download that failed)."""

    def stop(self) -> None:
        pass


class LineProgress(Progress):
    """One line per change: `<job id>  <STATUS>  <n>%  [queue #k]  <elapsed>  <target>[  <note>]`."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple] = {}

    def start(self, rows: list[JobRow]) -> None:
        super().start(rows)
        self.stream.write(f"waiting for {len(rows)} job{'s' if len(rows) != 1 else ''}\n")
        self.stream.flush()
        for row in rows:
            self.changed(row)

    def changed(self, row: JobRow) -> None:
        state = (row.status, row.progress, row.queue_position, row.note)
        with self._lock:
            if self._last.get(row.job_id) == state:
                return
            self._last[row.job_id] = state
            self.stream.write(self.render(row) + "\n")
            self.stream.flush()

    def render(self, row: JobRow) -> str:
        parts = [row.job_id, f"{row.status:<15}", f"{row.progress:3d}%"]
        if row.queue_position is not None:
            parts.append(f"queue {row.queue_text()}")
        parts.append(f"{format_elapsed(row.elapsed(self.clock())):>7}")
        parts.append(short_target(row.target, 200))
        if row.note:
            parts.append(row.note)
        return "  ".join(parts)

    def message(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()


class LiveProgress(Progress):
    """A rich Live table on a terminal: unfinished jobs first, then the finished ones, with a count."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False)
        self._lock = threading.Lock()
        self._live: Any = None

    def start(self, rows: list[JobRow]) -> None:
        from rich.live import Live

        super().start(rows)
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def message(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(escape(text))

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        rows = sorted(self.rows, key=lambda row: row.done)
        room = max(3, self.console.size.height - 6)
        shown = rows[:room]
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        # Every column but the target keeps its width; the target gives way on a narrow terminal.
        room_for_target = max(10, min(TARGET_CHARS, self.console.width - FIXED_COLUMNS_WIDTH))
        for column, justify, width in (("job", "left", 12), ("target", "left", room_for_target),
                                       ("status", "left", 15), ("", "left", BAR_WIDTH), ("%", "right", 4),
                                       ("queue", "right", 5), ("elapsed", "right", 7)):  # fmt: skip
            table.add_column(column, justify=justify, no_wrap=True, width=width)
        for row in shown:
            style = STATUS_STYLES.get(row.status, "")
            table.add_row(
                row.job_id[:12],
                escape(short_target(row.target, room_for_target)),
                Text(row.status, style=style),
                ProgressBar(total=100, completed=row.progress, width=BAR_WIDTH),
                f"{row.progress}%",
                row.queue_text(),
                format_elapsed(row.elapsed(now)),
            )
        finished = sum(row.done for row in rows)
        failed = sum(row.status in TERMINAL - {"SUCCESS"} for row in rows)
        summary = f"{finished}/{len(rows)} finished" + (f", {failed} failed" if failed else "")
        if len(rows) > len(shown):
            summary += f" ({len(rows) - len(shown)} more not shown)"
        return Group(table, Text(summary, style="bold"))


def make_progress(stream: TextIO, quiet: bool = False) -> Progress:
    """Live on a terminal, lines elsewhere, nothing with --quiet."""
    if quiet:
        return Progress()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return LiveProgress(stream)
    return LineProgress(stream)
