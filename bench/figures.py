"""One table for every bench: each figure next to its floor or comparison, the ratio, the target, pass/fail.

A bench module exposes `figures(large: bool) -> list[Figure]`; bench/run.py collects them and prints
one table. Ratios are value / comparison, lower is better unless the figure says otherwise
(`higher_is_better`): the target is then a minimum, not a maximum.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    comparison: str = ""
    """What the value is measured against (the floor, the old way), '' when it stands alone."""
    comparison_value: float | None = None
    ratio: float | None = None
    target: float | None = None
    """The ratio's (or, without a comparison, the value's) limit; None: reported, not judged."""
    passed: bool | None = None
    note: str = ""
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        if self.ratio is None and self.comparison_value:
            self.ratio = self.value / self.comparison_value
        if self.passed is None and self.target is not None:
            judged = self.ratio if self.ratio is not None else self.value
            self.passed = judged >= self.target if self.higher_is_better else judged <= self.target


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".strip()


def rows(figures: Iterable[Figure]) -> list[list[str]]:
    table = [["figure", "value", "comparison (floor)", "ratio", "target", "result"]]
    for figure in figures:
        comparison = figure.comparison
        if figure.comparison_value is not None:
            comparison = f"{comparison} {_number(figure.comparison_value, figure.unit)}".strip()
        ratio = f"{figure.ratio:.3g}x" if figure.ratio is not None else ""
        if figure.target is None:
            target = ""
        else:
            bound = ">=" if figure.higher_is_better else "<="
            target = f"{bound} {figure.target:g}{'x' if figure.ratio is not None else ' ' + figure.unit}"
        result = {True: "pass", False: "FAIL", None: ""}[figure.passed]
        name = f"{figure.name} ({figure.note})" if figure.note else figure.name
        table.append([name, _number(figure.value, figure.unit), comparison, ratio, target, result])
    return table


def format_table(figures: Iterable[Figure]) -> str:
    """A markdown table (pasteable into the README as it is)."""
    table = rows(figures)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in table
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def print_table(figures: Iterable[Figure]) -> None:
    print(format_table(figures))
