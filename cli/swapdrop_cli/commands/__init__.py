"""The subcommands, in the order `swapdrop --help` lists them. Each module has
`register(subparsers)`, which adds its parser(s) with `func=run`, `run(args, ctx) -> int`."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

COMMANDS = ("faces", "swap", "wait", "jobs", "dlq", "doctor", "logs", "local")
"""Module names under swapdrop_cli.commands."""


def modules() -> list[ModuleType]:
    """The command modules present (swap, wait, dlq, doctor and logs arrive from other work in progress)."""
    found = []
    for name in COMMANDS:
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is not None:
            found.append(importlib.import_module(qualified))
    return found
