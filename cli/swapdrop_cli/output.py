"""Where output goes: results on stdout (rich tables for people, JSON lines with --json),
notes, progress and errors on stderr, so `swapdrop jobs --json | jq` always gets clean lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from swapdrop_cli.errors import CliError

PIPE_WIDTH = 200
"""rich's width when stdout is not a terminal (it would assume 80 and fold 32-character job ids)."""


class Output:
    def __init__(
        self, json_mode: bool = False, quiet: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """rich on stdout: colour and the terminal's width on a terminal, plain text elsewhere."""
        if self._console is None:
            tty = self.stdout.isatty()
            self._console = Console(
                file=self.stdout, width=None if tty else PIPE_WIDTH, highlight=False, soft_wrap=not tty
            )
        return self._console

    def emit(self, obj: Any) -> None:
        """One JSON line on stdout (json mode only)."""
        if self.json_mode:
            self.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False, default=str) + "\n")
            self.stdout.flush()

    def line(self, text: str = "") -> None:
        """A line of human output on stdout (not in json mode, not with --quiet)."""
        if not self.json_mode and not self.quiet:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def result(self, text: str) -> None:
        """Human output that --quiet keeps (an id, a path: what a script would capture)."""
        if not self.json_mode:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def note(self, text: str) -> None:
        """A diagnostic for a person, on stderr (silenced by --quiet)."""
        if not self.quiet:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def warn(self, text: str) -> None:
        """A warning on stderr, even with --quiet."""
        self.stderr.write(f"warning: {text}\n")
        self.stderr.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str | None = None) -> None:
        """A rich table on stdout (human mode). `empty`: what to say on stderr when there are no rows."""
        if self.json_mode:
            return
        rows = list(rows)
        if not rows:
            if empty:
                self.note(empty)
            return
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(escape("" if cell is None else str(cell)) for cell in row))
        self.console.print(table)

    def check(self, ok: bool | None, name: str, detail: str = "", fix: str | None = None) -> None:
        """A doctor line: ✓ or ✗ (or '-' when a check could not run), and the fix for a ✗."""
        if self.json_mode:
            self.emit({"check": name, "ok": ok, "detail": detail, "fix": fix if not ok else None})
            return
        mark = "✓" if ok else ("-" if ok is None else "✗")
        text = f"{mark} {name}" + (f": {detail}" if detail else "")
        self.stdout.write(text + "\n")
        if not ok and fix:
            self.stdout.write(f"    fix: {fix}\n")
        self.stdout.flush()

    def error(self, error: CliError) -> None:
        """`error: …` (and `  hint: …`) on stderr; with --json also a JSON line on stdout."""
        self.stderr.write(f"error: {error.message}\n")
        if error.hint:
            self.stderr.write(f"  hint: {error.hint}\n")
        self.stderr.flush()
        if self.json_mode:
            self.emit(error.as_json())
