"""`swapdrop-emulator`: run the swap API emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import AUTH_STYLES, EXPIRED_STATUSES, UNKNOWN_TASK_STYLES, EmulatorConfig
from .emulator import SwapEmulator
from .engines import ENGINES
from .faults import FaultSpecError, parse_faults

API_KEY_ENV = "SWAPDROP_EMULATOR_API_KEY"
DEFAULT_API_KEY = "local-api-key"
log = logging.getLogger("swapdrop_emulator.cli")


def _fault_spec(text: str) -> str:
    try:
        if not parse_faults(text):
            raise FaultSpecError("an empty fault spec")
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swapdrop-emulator",
        description="A local emulator of the Midjourney-proxy-style InsightFace swap API, with fault injection.",
        epilog=(
            "Fault specs: [SCOPE:]NAME[=VALUE][@PROBABILITY], several joined with ';'. Scopes: submit (default), "
            "fetch, list, task_list, image, any. Names: latency=S, status=HTTP, timeout[=S], reset, code=N, "
            "timeout_after_accept[=S], reset_after_accept, status_after_accept=HTTP, "
            "drop_callbacks[=all|final|progress], duplicate_callbacks[=N], "
            "reorder_callbacks[=reverse|shuffle], ignore_notify_hook, fail=REASON, expire_results=S, stall[=PCT], "
            "odd_snapshot=KIND, odd_snapshot_ratio=R, odd_outcome=failure|success, non_list[=SHAPE], drip[=S]. "
            "At run time: the X-Emulator-Fault header (one request) or POST /_emulator/faults."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free one)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"the key clients must send (default: ${API_KEY_ENV}, else {DEFAULT_API_KEY!r}); never printed",
    )
    parser.add_argument("--auth-style", choices=AUTH_STYLES, default="bearer")
    parser.add_argument("--concurrency", type=int, default=2, help="tasks running at once (default 2)")
    parser.add_argument("--queue-size", type=int, default=10, help="tasks that may wait (default 10)")
    parser.add_argument("--queue-full-code", type=int, choices=(23, 9), default=23, help="23 (novicezk) or 9 (trueai)")
    parser.add_argument("--step-delay", type=_non_negative, default=0.05, help="seconds between task steps")
    parser.add_argument("--result-ttl", type=_non_negative, default=None, help="result URLs expire after S seconds")
    parser.add_argument("--expired-status", type=int, choices=EXPIRED_STATUSES, default=404)
    parser.add_argument("--max-image-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--unknown-task", choices=UNKNOWN_TASK_STYLES, default="empty", help="fetch of an unknown id")
    parser.add_argument(
        "--no-task-list", action="store_true", help="GET /mj/task/list answers 404 (a relay that does not expose it)"
    )
    parser.add_argument(
        "--no-cancel", action="store_true", help="POST /mj/task/{id}/cancel answers 404 (a relay that lacks it)"
    )
    parser.add_argument(
        "--drip-length", type=int, default=1_000_000, help="Content-Length a drip fault declares (default 1000000)"
    )
    parser.add_argument("--notify-hook", default="", help="global callback URL for tasks submitted without one")
    parser.add_argument("--public-url", default=None, help="base URL of imageUrl values (default: the listen URL)")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="faceswap", help="echo: no swap, target as PNG")
    parser.add_argument("--manual", action="store_true", help="tasks stay SUBMITTED (no worker runs them)")
    parser.add_argument(
        "--fault", action="append", type=_fault_spec, default=[], metavar="SPEC", help="per-run fault (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for probabilistic faults")
    parser.add_argument("--info-file", type=Path, default=None, help="write {url, ...} as JSON here once serving")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_key=api_key,
        auth_style=args.auth_style,
        engine=ENGINES[args.engine],
        auto_run=not args.manual,
        concurrency=args.concurrency,
        queue_size=args.queue_size,
        queue_full_code=args.queue_full_code,
        step_delay=args.step_delay,
        result_ttl_seconds=args.result_ttl,
        expired_status=args.expired_status,
        max_image_bytes=args.max_image_bytes,
        unknown_task=args.unknown_task,
        task_list=not args.no_task_list,
        cancel=not args.no_cancel,
        drip_length=args.drip_length,
        notify_hook=args.notify_hook,
        public_url=args.public_url,
        faults=tuple(args.fault),
        seed=args.seed,
    )


def _write_info(path: Path, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # readers never see half a file


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
        emulator = SwapEmulator(config)
    except (ValueError, OSError) as error:
        parser.exit(2, f"swapdrop-emulator: error: {error}\n")
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    emulator.start()
    info = {
        "url": emulator.url,
        "host": emulator.url.rsplit(":", 1)[0].removeprefix("http://"),
        "port": int(emulator.url.rsplit(":", 1)[1]),
        "auth_style": config.auth_style,
        "engine": args.engine,
        "faults_url": f"{emulator.url}/_emulator/faults",
        "pid": os.getpid(),
    }
    try:
        if args.info_file:
            _write_info(args.info_file, info)
        print(f"swapdrop-emulator listening on {emulator.url}", flush=True)
        print(
            f"  auth: {config.auth_style} (key not shown), engine: {args.engine}, "
            f"concurrency {config.concurrency}, queue {config.queue_size}"
            + (f", faults: {'; '.join(config.faults)}" if config.faults else ""),
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        if args.info_file:
            args.info_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("swapdrop-emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
