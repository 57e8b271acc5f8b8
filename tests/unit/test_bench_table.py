"""bench/figures.py and bench/run.py: ratios, targets and the exit status `make bench` reports."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from figures import Figure, format_table  # noqa: E402


def test_a_ratio_is_value_over_comparison_and_lower_passes() -> None:
    figure = Figure("cold start", 500, "ms", "floor", 400, target=1.25)
    assert figure.ratio == pytest.approx(1.25)
    assert figure.passed is True
    assert Figure("cold start", 600, "ms", "floor", 400, target=1.25).passed is False


def test_higher_is_better_makes_the_target_a_minimum() -> None:
    assert Figure("throughput", 5, "jobs/s", "bare", 10, target=0.5, higher_is_better=True).passed is True
    assert Figure("throughput", 4, "jobs/s", "bare", 10, target=0.5, higher_is_better=True).passed is False


def test_without_a_comparison_the_value_meets_the_target_and_without_a_target_nothing_is_judged() -> None:
    assert Figure("layer", 58, "MB", target=20).passed is False
    assert Figure("image check", 118, "ms", "decode", 196).passed is None


def test_the_table_shows_each_figure_with_its_comparison_ratio_target_and_result() -> None:
    text = format_table([Figure("cold start submit", 450, "ms", "floor", 400, target=1.25)])
    header, rule, row = text.splitlines()
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "figure",
        "value",
        "comparison (floor)",
        "ratio",
        "target",
        "result",
    ]
    assert set(rule) <= {"|", "-"}
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "cold start submit",
        "450 ms",
        "floor 400 ms",
        "1.12x",
        "<= 1.25x",
        "pass",
    ]


def fake_bench(monkeypatch: pytest.MonkeyPatch, name: str, figures: object) -> None:
    module = types.ModuleType(name)
    module.figures = figures  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)


def test_run_exits_1_when_a_target_is_missed_and_a_broken_bench_is_a_failed_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_bench(monkeypatch, "bench_good", lambda large: [Figure("good", 1, "ms", "floor", 1, target=1.25)])
    assert run.run(["bench_good"], large=False)[0].passed is True

    def broken(large: bool) -> list[Figure]:
        raise RuntimeError("no moto")

    fake_bench(monkeypatch, "bench_broken", broken)
    (row,) = run.run(["bench_broken"], large=False)
    assert row.passed is False and "no moto" in row.note
    monkeypatch.setattr(run, "bench_names", lambda: ["bench_broken", "bench_good"])
    assert run.main(["--only", "good"]) == 0
    assert run.main([]) == 1
    assert "missed their target" in capsys.readouterr().out


def test_only_names_an_existing_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "bench_names", lambda: ["bench_good"])
    with pytest.raises(SystemExit):
        run.main(["--only", "nonexistent"])
