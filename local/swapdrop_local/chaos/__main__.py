"""`python -m swapdrop_local.chaos [--size full|small] [--only NAME ...] [--out out/chaos]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from swapdrop_local.chaos.harness import write_json
from swapdrop_local.chaos.report import markdown
from swapdrop_local.chaos.scenarios import FULL, SCENARIOS, SMALL, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swapdrop_local.chaos", description=__doc__)
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run these scenarios only")
    parser.add_argument("--out", type=Path, default=Path("out/chaos"), help="table, JSON and logs go here")
    args = parser.parse_args(argv)
    size = FULL if args.size == "full" else SMALL
    names = [n for n in SCENARIOS if not args.only or n in args.only]
    if "secrets" in names:  # it scans the logs of every other scenario: last
        names = [n for n in names if n != "secrets"] + ["secrets"]
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    results = []
    started = time.monotonic()
    for name in names:
        print(f"chaos: {name} ({size.name}) ...", flush=True)
        figures = run(name, size, log_dir)
        print(f"chaos: {name}: {figures.verdict}", flush=True)
        results.append(figures)
    table = markdown(results)
    total = time.monotonic() - started
    print()
    print(table)
    print(
        f"{len(results)} scenarios, {sum(not f.violations for f in results)} passed, {total:.0f} s; logs in {log_dir}"
    )
    (args.out / "table.md").write_text(table, encoding="utf-8")
    write_json(
        args.out / "results.json",
        {"size": size.name, "seconds": round(total), "scenarios": [f.as_dict() for f in results]},
    )
    return 0 if all(not f.violations for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
