"""`swapdrop local` and `swapdrop demo`: run the stack on this machine, or show it working.

They start a stack rather than talk to one, so they keep their own parser (local/swapdrop_local/cli.py)
and are handed their arguments whole. swapdrop_local is imported only here and only when used: a
`pip install swapdrop` without the local extras has everything else.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from swapdrop_cli.errors import CliError, ExitCode

NEEDS_LOCAL = "swapdrop local needs the local stack's packages: pip install 'swapdrop[local]' (or make venv)"

LOCAL_HELP = "run the whole stack on this machine (moto, the swap emulator, the functions) until Ctrl-C"
LOCAL_EXAMPLES = """\
Examples:
  swapdrop local --info-file out/local.json          # then, elsewhere: swapdrop --local face list
  swapdrop local --info-file out/local.json --watch drop/
  swapdrop local --upstream https://swap.example.com --api-key "$KEY" --auth-style mj-api-secret
  swapdrop local --param ReconcileQuietSeconds=5 --reconcile-interval 2"""

DEMO_HELP = "swap a face end to end on a fresh local stack (drop folder and jobs API) and save the images"
DEMO_EXAMPLES = """\
Examples:
  swapdrop demo                      # images in out/demo/
  swapdrop demo --out /tmp/demo --timeout 300"""

EXAMPLES = {"local": LOCAL_EXAMPLES, "demo": DEMO_EXAMPLES}


def register(subparsers: Any) -> None:
    """Listed in `swapdrop --help`; the arguments go to swapdrop_local's parser untouched."""
    for name, text in (("local", LOCAL_HELP), ("demo", DEMO_HELP)):
        parser = subparsers.add_parser(name, help=text, epilog=EXAMPLES[name], add_help=False)
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(func=run, local_command=name)


def run(args: argparse.Namespace, ctx: Any) -> int:
    rest = list(args.rest)
    if getattr(args, "json", False) and "--json" not in rest:  # `swapdrop --json local …`
        rest.append("--json")
    return delegate([args.local_command, *rest])


def delegate(argv: list[str]) -> int:
    """Run swapdrop_local's command line on `argv` (["local", …] or ["demo", …])."""
    if sys.version_info < (3, 13):  # the functions run as Lambda runs them
        raise CliError(
            f"swapdrop {argv[0]} needs Python 3.13 (this is {sys.version_info.major}.{sys.version_info.minor}) "
            "and the local stack's packages: pip install 'swapdrop[local]' with Python 3.13 (or make venv)",
            ExitCode.USAGE,
        )
    try:
        from swapdrop_local import cli
    except ModuleNotFoundError as error:  # moto, werkzeug, …: the local extras are not installed
        raise CliError(f"{NEEDS_LOCAL} (missing: {error.name})", ExitCode.USAGE) from None
    if any(item in ("-h", "--help") for item in argv[1:]):
        parser = cli.build_parser()
        command = _subparser(parser, argv[0])
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.description = LOCAL_HELP if argv[0] == "local" else DEMO_HELP
        command.epilog = EXAMPLES[argv[0]]
        command.print_help(sys.stdout)
        return ExitCode.OK
    return int(cli.main(argv) or 0)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise LookupError(name)
