"""`swapdrop` command line: `swapdrop local` runs the stack on this machine; `swapdrop demo` shows it."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from swapdrop_local.stack import RunningStack, StackOptions, redacted


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {text!r}")
    return name, value


def _seconds_between(low: float, high: float, whole: bool = False) -> Callable[[str], float]:
    """An argparse type: seconds in [low, high], whole seconds if `whole`, with a message that says which."""
    kind = "whole seconds" if whole else "seconds"

    def parse(text: str) -> float:
        try:
            seconds = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= seconds <= high:
            raise argparse.ArgumentTypeError(f"expected {low:g} to {high:g} {kind}, got {seconds:g}")
        return seconds

    return parse


def _whole_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {number}")
        return number

    return parse


def _member_fault(text: str) -> tuple[int, str]:
    """MEMBER=SPEC for --pool-fault: the member's number (1 = the first) and an emulator fault spec."""
    number, sep, spec = text.partition("=")
    if not sep or not number.strip().isdigit() or int(number) < 1 or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"expected MEMBER=SPEC with MEMBER 1, 2, …, e.g. 2=status=500@0.5, got {text!r}"
        )
    from swapdrop_emulator.faults import FaultSpecError, parse_faults

    try:
        parse_faults(spec)
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(f"--pool-fault {text!r}: {error}") from None
    return int(number), spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swapdrop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local", help="run the whole stack on this machine until Ctrl-C")
    _stack_options(local)
    local.add_argument("--info-file", type=Path, help="write the endpoints here as JSON once the stack is up")
    local.add_argument(
        "--watch",
        type=Path,
        metavar="DIR",
        help="mirror DIR/faces and DIR/inbox into the bucket, results into DIR/results",
    )
    local.add_argument(
        "--watch-settle",
        type=_seconds_between(0.1, 600),
        default=3.0,
        metavar="SECONDS",
        help="with --watch: upload a file once it has been unchanged this long (3; Linux also waits for close)",
    )
    demo = commands.add_parser("demo", help="swap a face end to end on the local stack and save the result")
    _stack_options(demo)
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write the images (out/demo)")
    demo.add_argument("--timeout", type=float, default=120, help="seconds to wait for the job (120)")
    return parser


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="for scripts: JSON lines on stdout (local: an 'up' line with the endpoints, then 'stopped'; "
        "demo: one summary line, its steps on stderr)",
    )
    parser.add_argument("--upstream", metavar="URL", help="use this swap API instead of starting the emulator")
    pool = parser.add_argument_group(
        "upstream pool",
        "start N emulators (each its own port and instance id) and store the pool JSON naming them in the "
        "key secret (README: Upstream pool); without --upstream-pool: one emulator and a plain key",
    )
    pool.add_argument(
        "--upstream-pool", type=_whole_between(1, 50), metavar="N", help="how many member emulators (1 to 50)"
    )
    pool.add_argument(
        "--pool-running",
        type=_whole_between(1, 1000),
        default=3,
        metavar="N",
        help="swaps each member runs at once (3)",
    )
    pool.add_argument(
        "--pool-queued", type=_whole_between(0, 10000), default=10, metavar="N", help="swaps each member queues (10)"
    )
    pool.add_argument(
        "--pool-fault",
        type=_member_fault,
        action="append",
        default=[],
        metavar="MEMBER=SPEC",
        help="an emulator fault for one member (repeatable), e.g. 2=status=500@0.5: member 2 answers half its "
        "submits with HTTP 500",
    )
    parser.add_argument("--api-key", default="local-api-key", help="the swap API's key (kept in the local secret)")
    parser.add_argument("--auth-style", choices=("bearer", "mj-api-secret"), default="bearer")
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often the reconciler runs (10; 0 disables it)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=_seconds_between(0, 43200, whole=True),  # what SQS allows
        default=20,
        metavar="SECONDS",
        help="the inbox queue's visibility timeout: a failed batch comes back after it (20; AWS uses the template's)",
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="the stack's log: the functions' JSON log lines and its own (local: next to --info-file, else a "
        "temporary file; demo: OUT/stack.log)",
    )
    parser.add_argument(
        "--param",
        type=_parameter,
        action="append",
        default=[],
        metavar="Name=Value",
        help="override a template parameter, e.g. --param ReconcileQuietSeconds=5",
    )


def options_from(args: argparse.Namespace) -> StackOptions:
    pool_size = getattr(args, "upstream_pool", None)
    faults: dict[int, list[str]] = {}
    for number, spec in getattr(args, "pool_fault", []):
        faults.setdefault(number, []).append(spec)
    if pool_size is None and faults:
        raise ValueError("--pool-fault needs --upstream-pool")
    if pool_size is not None and args.upstream:
        raise ValueError("--upstream and --upstream-pool exclude each other: the pool's members are local emulators")
    if pool_size is not None and faults and max(faults) > pool_size:
        raise ValueError(f"--pool-fault names member {max(faults)}, but the pool has {pool_size}")
    members = [
        {"concurrency": args.pool_running, "queue_size": args.pool_queued, "faults": faults.get(n, [])}
        for n in range(1, (pool_size or 0) + 1)
    ]
    return StackOptions(
        upstream_pool=pool_size,
        pool_members=members,
        region=args.region,
        upstream=args.upstream,
        api_key=args.api_key,
        auth_style=args.auth_style,
        reconcile_interval=args.reconcile_interval,
        parameters=dict(args.param),
        visibility_timeout=args.visibility_timeout,
        log_file=args.log_file,
    )


def run_local(args: argparse.Namespace) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    options = options_from(args)
    if options.log_file is None and args.info_file:
        options.log_file = args.info_file.with_suffix(".log")
    with RunningStack(options) as running:
        info = running.info()
        shown = redacted(info)
        if args.info_file:
            running.write_info(args.info_file)
        if args.json:
            up = {"event": "up", **shown, "info_file": str(args.info_file) if args.info_file else None}
            print(json.dumps(up), flush=True)
        else:
            _print_banner(shown, args.info_file)
        mirror = None
        if args.watch:
            from swapdrop_local.provision import local_client
            from swapdrop_local.watch import FolderMirror

            s3 = local_client("s3", info["region"], info["endpoint_url"])
            mirror = FolderMirror(args.watch, s3, info["bucket"], settle=args.watch_settle).start()
            if not args.json:
                print(f"  watching {args.watch}/faces and {args.watch}/inbox; results in {args.watch}/results")
        if not args.json:
            print("Ctrl-C stops everything.", flush=True)
        while not stopping.wait(0.5) and not running.failed.is_set():
            pass
        if not args.json:
            print("stopping…", flush=True)
        if mirror:
            mirror.stop()
    if args.info_file:
        args.info_file.unlink(missing_ok=True)
    if running.failure:
        print(f"swapdrop local: {running.failure}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"event": "stopped", **({"failure": running.failure} if running.failure else {})}), flush=True)
    return 1 if running.failure else 0


def _print_banner(shown: dict, info_file: Path | None) -> None:
    width = max(len(k) for k in shown)
    print("Swapdrop local stack is up:", flush=True)
    for key, value in shown.items():
        if key == "upstream_pool":  # one line per member
            for member in value:
                limits = f"{member['running']} running, {member['queued']} queued"
                print(f"  {'pool member':<{width}}  {member['name']} {member['url']} ({limits})", flush=True)
            continue
        print(f"  {key:<{width}}  {value}", flush=True)
    if info_file:
        print(f"  (endpoints and the API's secret key written to {info_file}, mode 0600)", flush=True)
    else:
        print("  (the API's secret key is in the info file: pass --info-file to get it)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options_from(args)  # options that exclude each other: a usage error before anything starts
    except ValueError as error:
        parser.error(str(error))
    # The console shows warnings and errors only: the stack's INFO lines and the functions' logs go to its log file.
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[console])
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):  # werkzeug adds its own handler below its level
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "local":
        return run_local(args)
    from swapdrop_local.demo import run_demo

    return run_demo(args, options_from(args))


if __name__ == "__main__":
    sys.exit(main())
