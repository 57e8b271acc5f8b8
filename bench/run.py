"""`make bench`: every bench module's figures in one table; exit 1 when a figure with a target fails.

Each bench/bench_*.py with `figures(large: bool) -> list[Figure]` is run in this one process (a
bench may spawn its own subprocesses), in name order. `--large` runs the big variants (minutes
more), `--only NAME` one bench (`cold_start` or `bench_cold_start`). A bench that raises is a
failed row with its error, and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from figures import Figure, print_table  # noqa: E402 - bench/ is not a package


def bench_names() -> list[str]:
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def run(names: list[str], large: bool) -> list[Figure]:
    table: list[Figure] = []
    for name in names:
        started = time.monotonic()
        print(f"running {name}...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(name)
            if not hasattr(module, "figures"):
                print(f"  {name} has no figures(large); skipped", file=sys.stderr)
                continue
            table += module.figures(large)
        except Exception as error:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            table.append(Figure(f"{name} did not run", 0, "", passed=False, note=f"{type(error).__name__}: {error}"))
        print(f"  {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="the big runs too")
    parser.add_argument("--only", action="append", metavar="NAME", help="one bench (repeatable), e.g. cold_start")
    args = parser.parse_args(argv)
    names = bench_names()
    if args.only:
        wanted = {only if only.startswith("bench_") else f"bench_{only}" for only in args.only}
        unknown = sorted(wanted - set(names))
        if unknown:
            parser.error(f"no such bench {', '.join(unknown)}; there are {', '.join(names)}")
        names = [name for name in names if name in wanted]
    table = run(names, args.large)
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}{', --large' if args.large else ''}")
    print_table(table)
    failed = [figure.name for figure in table if figure.passed is False]
    if failed:
        print(f"\n{len(failed)} figure(s) missed their target: {'; '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
