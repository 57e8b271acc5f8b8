"""README's Operations section and metric list follow the template and the metric registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from swapdrop import metric_names

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    following = re.search(r"\n##? ", README[start + len(title) + 2 :])
    return README[start : start + len(title) + 2 + (following.start() if following else len(README))]


def test_the_alarm_table_names_exactly_the_templates_alarms(resources: dict[str, Any]) -> None:
    alarms = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            name = resource["Properties"]["AlarmName"]["Fn::Sub"]
            alarms.add(name.removeprefix("${AWS::StackName}-"))
    rows = [line for line in _section("### Alarms").splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z-]+)`", row.split("|")[1])}
    assert documented == alarms


def test_every_registered_metric_is_explained_in_the_readme() -> None:
    missing = sorted(name for name in metric_names.ALL if f"`{name}`" not in README)
    assert missing == [], f"README's metric list lacks {missing}"
