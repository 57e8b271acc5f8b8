"""`swapdrop doctor`: checks a stack end to end, one ✓/✗ line each, with the fix for every ✗."""

from __future__ import annotations

import argparse
from typing import Any

from swapdrop_cli.checks import DEFAULT_DRAIN_SECONDS, Doctor, run_checks
from swapdrop_cli.errors import ExitCode

EXAMPLES = """\
checks (run at once; each ✗ says what to run or change):
  API key secret is set                 the swap API's key is not the placeholder (it is never shown);
                                        with an upstream pool in the secret: every member's key
  swap API answers and accepts the key  fetches an unknown task with the key (401/403: refused),
                                        on every upstream pool member
  callback URL reachable from outside   a bogus callback for an unknown job gets CallbackFunction's 403
  jobs API answers (GET /health)        ApiUrl/health answers
  bucket notification in place          inbox/ and uploads/ send new objects to the submit queue
  queues empty or draining              dead-letter queues empty; waiting messages go down
  reconciler ran recently               its log group saw an event within 3x ReconcileSchedule
  alarms in OK                          none of the stack's alarms is in ALARM (no data yet is fine)

Examples:
  swapdrop doctor                              the default stack ($SWAPDROP_STACK, else swapdrop)
  swapdrop doctor --stack swapdrop-prod --region eu-west-1
  swapdrop doctor --local                      a running `swapdrop local`
  swapdrop doctor --json | jq 'select(.ok|not)'
exit status: 0 when every check is ✓, 1 when any is ✗."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"expected 0 to 600 seconds, got {value:g}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check a stack end to end: a ✓/✗ line each, with the fix for every ✗",
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "--drain-seconds",
        type=_positive,
        default=DEFAULT_DRAIN_SECONDS,
        metavar="S",
        help=f"how long to watch a queue with waiting messages go down ({DEFAULT_DRAIN_SECONDS:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=30.0,
        metavar="S",
        help="give up on a check that takes longer than this (30)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any) -> int:
    target = ctx.target
    output = ctx.output
    doctor = Doctor(target, drain_seconds=args.drain_seconds)
    if not output.json_mode:
        output.note(f"checking {target.description} ({target.region})…")
    results = run_checks(doctor, timeout=max(args.timeout, args.drain_seconds + 10))
    for result in results:
        if output.json_mode:
            output.emit(result.as_json())
        else:
            output.check(result.ok, result.name, result.detail, result.fix)
    failed = sum(1 for result in results if not result.ok)
    if not output.json_mode:
        output.note("all checks passed" if not failed else f"{failed} of {len(results)} checks failed")
    return ExitCode.JOBS_FAILED if failed else ExitCode.OK
