"""The chaos suite at its small sizes (`make chaos` runs the full ones): one test per
scenario of issue 6, each asserting that scenario's invariants on a fresh local stack.
A failure names the invariant that broke, with figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from swapdrop_local.chaos.report import markdown
from swapdrop_local.chaos.scenarios import SMALL, run

# 600 s: the crash scenario may have to wait out a killed submitter's lease.
pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(600)]
LOG_DIR = Path(__file__).resolve().parents[2] / "out" / "chaos-small" / "logs"
ORDER = [
    "duplicates",
    "upstream-faults",
    "callback-chaos",
    "expiring-results",
    "crashes",
    "hostile-callbacks",
    "hostile-uploads",
    "hostile-upstream",
    "secrets",  # last: it scans the logs of every scenario before it
]


@pytest.fixture(scope="session")
def chaos_logs() -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for old in LOG_DIR.glob("*.log"):
        old.unlink()
    return LOG_DIR


@pytest.mark.parametrize("scenario", ORDER)
def test_scenario_keeps_its_invariants(scenario: str, chaos_logs: Path) -> None:
    figures = run(scenario, SMALL, chaos_logs)
    assert not figures.violations, "\n" + markdown([figures])
