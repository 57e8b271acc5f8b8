"""`swapdrop`: the parser (global options before or after the subcommand), dispatch, and the one
place errors become messages and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from swapdrop_cli import __version__
from swapdrop_cli.errors import EXIT_CODES_HELP, CliError, ExitCode
from swapdrop_cli.output import Output
from swapdrop_cli.target import DEFAULT_LOCAL_INFO, Target, boto_error, resolve_target

DESCRIPTION = """\
Swapdrop from the command line: faces, swaps and jobs on a deployed stack (--stack, found through
its CloudFormation outputs) or on `swapdrop local` (--local), plus the checks an operator needs."""

EPILOG = f"""\
targets:
  --stack NAME          a deployed stack (default: $SWAPDROP_STACK, else 'swapdrop'), with the usual
                        AWS profile, region and credentials
  --local [INFO_FILE]   a running `swapdrop local` (default info file: {DEFAULT_LOCAL_INFO})

{EXIT_CODES_HELP}

Run `swapdrop COMMAND --help` for a command's options and examples."""

LOCAL_COMMANDS = ("local", "demo")
"""Handed whole to swapdrop_local's own parser (they start a stack; they do not talk to one)."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as CliError (exit 2, and a JSON line with --json)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise CliError(message, ExitCode.USAGE, hint=f"{self.prog} --help shows the options and examples")


class Context:
    """What a command gets: the output, and the target and API client made on first use."""

    def __init__(self, args: argparse.Namespace, output: Output, target_factory: Callable[[], Target]) -> None:
        self.args = args
        self.output = output
        self._target_factory = target_factory
        self._target: Target | None = None
        self._api: Any = None

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = self._target_factory()
        return self._target

    @property
    def api(self) -> Any:
        """The jobs API client (swapdrop_cli.api.JobsApi) for the target."""
        if self._api is None:
            from swapdrop_cli.api import JobsApi

            self._api = JobsApi(self.target)
        return self._api


def global_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (SUPPRESS: a later parser keeps an earlier value)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("target and output")
    group.add_argument(
        "--stack",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="a deployed stack (default: $SWAPDROP_STACK, else 'swapdrop')",
    )
    group.add_argument(
        "--local",
        metavar="INFO_FILE",
        nargs="?",
        const=str(DEFAULT_LOCAL_INFO),
        default=argparse.SUPPRESS,
        help=f"a running `swapdrop local`, through its info file ({DEFAULT_LOCAL_INFO}; "
        "another: --local=FILE, or a path with a / or ending in .json)",
    )
    group.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of --stack (else AWS_REGION/profile)")
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile for --stack")
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="JSON lines on stdout (one object per job, face, check…), for scripts",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only what a script would capture; no notes on stderr",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    from swapdrop_cli import commands

    parent = global_options()
    parser = Parser(
        prog="swapdrop",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"swapdrop {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=Parser)
    subparsers.required = True
    for module in commands.modules():
        module.register(_Subparsers(subparsers, parent))
    return parser


class _Subparsers:
    """add_parser with the global options, the examples-friendly formatter and our Parser already set."""

    def __init__(self, subparsers: Any, parent: argparse.ArgumentParser) -> None:
        self._subparsers = subparsers
        self._parent = parent

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs["parents"] = [*kwargs.get("parents", []), self._parent]
        if "help" in kwargs and "description" not in kwargs:
            kwargs["description"] = kwargs["help"]
        return self._subparsers.add_parser(name, **kwargs)

    def add_subparsers(self, parser: argparse.ArgumentParser, **kwargs: Any) -> _Subparsers:
        """Nested commands (face add/list/rm) with the same defaults."""
        kwargs.setdefault("parser_class", Parser)
        kwargs.setdefault("metavar", "COMMAND")
        inner = parser.add_subparsers(**kwargs)
        inner.required = True
        return _Subparsers(inner, self._parent)


def pin_local_info(argv: list[str], commands: set[str]) -> list[str]:
    """`--local` takes an optional INFO_FILE, so `swapdrop --local jobs` or `swapdrop status --local JOB` would
    read `jobs` / `JOB` as the file. A value is taken as the file only when it looks like one (ends in .json,
    has a path separator or names an existing file); otherwise --local means the default file."""
    pinned, index = [], 0
    while index < len(argv):
        item = argv[index]
        if item == "--":
            pinned.extend(argv[index:])
            break
        if item == "--local":
            following = argv[index + 1] if index + 1 < len(argv) else None
            if following is None or following.startswith("-") or not _looks_like_file(following, commands):
                pinned.append(f"--local={DEFAULT_LOCAL_INFO}")
                index += 1
                continue
        pinned.append(item)
        index += 1
    return pinned


def _looks_like_file(text: str, commands: set[str]) -> bool:
    if text in commands:
        return False
    return text.endswith(".json") or os.sep in text or "/" in text or Path(text).is_file()


def _local_command(argv: list[str]) -> list[str] | None:
    """`local`/`demo` with their own arguments, after any of --json, -q (which they take too); else None."""
    leading = [item for item in argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]]
    if len(leading) == len(argv) or argv[len(leading)] not in LOCAL_COMMANDS:
        return None
    if not set(leading) <= {"--json", "-q", "--quiet"}:
        return None  # the parser says what is wrong with them
    rest = argv[len(leading) + 1 :]
    if "--json" in leading and "--json" not in rest:
        rest.append("--json")
    return [argv[len(leading)], *rest]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    local_argv = _local_command(argv)
    if local_argv is not None:
        from swapdrop_cli.commands.local import delegate

        return _guarded(lambda: delegate(local_argv), Output(json_mode="--json" in argv))
    output = Output(json_mode="--json" in argv, quiet="-q" in argv or "--quiet" in argv)
    try:
        parser = build_parser()
        if not argv:  # `swapdrop` alone: what there is to do, as a usage error for scripts
            parser.print_help(sys.stdout)
            return ExitCode.USAGE
        commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
        args = parser.parse_args(pin_local_info(argv, commands))
    except CliError as error:
        if set(argv) & set(LOCAL_COMMANDS):  # e.g. `swapdrop --stack prod local …`
            error = CliError(
                error.message,
                error.exit_code,
                hint="swapdrop local and demo start a stack of their own and take their options after the "
                "command (swapdrop local --help); only --json and -q may come before it",
            )
        output.error(error)
        return error.exit_code
    for name, default in (
        ("stack", None),
        ("local", None),
        ("region", None),
        ("profile", None),
        ("json", False),
        ("quiet", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, default)
    output = Output(json_mode=args.json, quiet=args.quiet)
    context = Context(args, output, lambda: resolve_target(args))
    return _guarded(lambda: args.func(args, context), output)


def _guarded(run: Callable[[], int], output: Output) -> int:
    """Run a command: CliError → its message and exit code; AWS SDK errors → theirs; Ctrl-C → 130."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return int(run() or 0)
    except CliError as error:
        output.error(error)
        return error.exit_code
    except (BotoCoreError, ClientError) as error:
        cli_error = boto_error(error, "the AWS call")
        output.error(cli_error)
        return cli_error.exit_code
    except KeyboardInterrupt:
        output.stderr.write("\ninterrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `swapdrop jobs | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit: into nothing
        return ExitCode.OK
