"""The wait display: one plain line per change off a terminal, a rich table on one, nothing with --quiet."""

from __future__ import annotations

import io

from swapdrop_cli.progress import (
    JobRow,
    LineProgress,
    LiveProgress,
    Progress,
    format_elapsed,
    make_progress,
    parse_time,
    short_target,
)

JOB = "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617"


def _view(status: str, progress: int = 0, position: int | None = None, **extra: object) -> dict:
    return {
        "jobId": JOB,
        "status": status,
        "progress": progress,
        "queuePosition": position,
        "createdAt": "2024-10-16T09:59:00.000Z",
        **extra,
    }


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_tty_prints_one_line_per_change_only() -> None:
    stream = io.StringIO()
    clock = parse_time("2024-10-16T09:59:04.500Z")
    display = LineProgress(stream, clock=lambda: clock)
    row = JobRow(job_id=JOB, target="photos/beach.jpg")
    row.update(_view("AWAITING_UPLOAD"))
    display.start([row])
    for view in (
        _view("PENDING", 0, 3),
        _view("PENDING", 0, 3),  # no change: no line
        _view("SUBMITTED", 0, 1),
        _view("IN_PROGRESS", 45),
        _view("IN_PROGRESS", 45),
        _view("FAILURE", 45, finishedAt="2024-10-16T09:59:12Z", failReason="no face\x1b[2J found"),
    ):
        row.update(view)
        display.changed(row)
    display.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "waiting for 1 job"
    assert lines[1].split() == [JOB, "AWAITING_UPLOAD", "0%", "4.5s", "photos/beach.jpg"]
    assert lines[2].split() == [JOB, "PENDING", "0%", "queue", "#3", "4.5s", "photos/beach.jpg"]
    assert lines[3].split()[1:5] == ["SUBMITTED", "0%", "queue", "#1"]
    assert lines[4].split()[1:4] == ["IN_PROGRESS", "45%", "4.5s"]
    assert lines[5].split()[1:4] == ["FAILURE", "45%", "12.0s"]  # finished: elapsed stops at finishedAt
    assert lines[5].endswith("no face\\x1b[2J found"), "a fail reason cannot drive the terminal"
    assert len(lines) == 6


def test_success_shows_100_percent_and_odd_progress_values_are_ignored() -> None:
    row = JobRow(job_id=JOB, target="x")
    row.update(_view("IN_PROGRESS", 150))
    assert row.progress == 100
    row.update(_view("IN_PROGRESS", "lots"))  # type: ignore[arg-type]
    assert row.progress == 100
    row.update(_view("IN_PROGRESS", True))  # type: ignore[arg-type]
    assert row.progress == 100
    row.update(_view("IN_PROGRESS", -5))
    assert row.progress == 0
    row.update(_view("SUCCESS", 80))
    assert (row.progress, row.done) == (100, True)
    row.update(_view("SUCCESS", 80, position=True))  # type: ignore[arg-type]
    assert row.queue_position is None


def test_times_parse_with_z_on_every_python() -> None:
    assert parse_time("2024-10-16T09:59:21.500Z") == parse_time("2024-10-16T09:59:21.500+00:00")
    assert parse_time("2024-10-16T09:59:21") == parse_time("2024-10-16T09:59:21Z")
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_formatting_helpers() -> None:
    assert [format_elapsed(s) for s in (0.25, 59.94, 61, 3725)] == ["0.2s", "59.9s", "1m01s", "1h02m"]
    assert short_target("a" * 100, 10) == "…" + "a" * 9
    assert short_target("evil\x1b.jpg") == "evil\\x1b.jpg"


def test_tty_gets_a_live_table_and_quiet_gets_nothing() -> None:
    tty = Tty()
    assert isinstance(make_progress(tty), LiveProgress)
    assert isinstance(make_progress(io.StringIO()), LineProgress)
    quiet = make_progress(tty, quiet=True)
    assert type(quiet) is Progress
    rows = [JobRow(job_id=JOB, target="beach.jpg"), JobRow(job_id="b" * 32, target="sea.png")]
    rows[0].update(_view("IN_PROGRESS", 40, 2))
    rows[1].update(_view("REJECTED", 0, failReason="not an image"))
    live = make_progress(tty)
    live.start(rows)
    live.changed(rows[0])
    live.stop()
    text = tty.getvalue()
    for expected in ("IN_PROGRESS", "40%", "#2", "REJECTED", "beach.jpg", "1/2 finished, 1 failed"):
        assert expected in text
