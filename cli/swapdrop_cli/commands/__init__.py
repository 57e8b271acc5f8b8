"""The subcommands, in the order `swapdrop --help` lists them. Each module has
`register(subparsers)`, which adds its parser(s) with `func=run`, `run(args, ctx) -> int`."""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS = ("faces", "swap", "wait", "jobs", "dlq", "doctor", "logs", "local")
"""Module names under swapdrop_cli.commands."""


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMANDS]
