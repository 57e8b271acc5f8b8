"""EnableTracing: one parameter sets the functions' X-Ray mode and Powertools' Tracer, never one without the other."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import parameter_defaults, resolve
from test_template_functions import EXPECTED_FUNCTIONS


def test_enable_tracing_is_a_true_false_switch_off_by_default(parameters: dict[str, Any]) -> None:
    spec = parameters["EnableTracing"]
    assert spec["AllowedValues"] == ["true", "false"]
    assert spec["Default"] == "false", "tracing costs each cold start the X-Ray SDK (bench/bench_cold_start.py)"


@pytest.mark.parametrize("name", sorted(EXPECTED_FUNCTIONS))
@pytest.mark.parametrize(
    ("enabled", "mode", "disabled_env"), [("true", "Active", "false"), ("false", "PassThrough", "true")]
)
def test_enable_tracing_wires_the_mode_and_the_tracer(
    template: dict[str, Any],
    lambda_functions: dict[str, Any],
    name: str,
    enabled: str,
    mode: str,
    disabled_env: str,
) -> None:
    params = parameter_defaults(template) | {"EnableTracing": enabled}
    props = lambda_functions[name]
    assert resolve(template, props["Tracing"], params) == mode, f"{name}: Tracing with EnableTracing={enabled}"
    variables = resolve(template, props["Environment"]["Variables"], params)
    assert variables.get("POWERTOOLS_TRACE_DISABLED") == disabled_env, (
        f"{name}: POWERTOOLS_TRACE_DISABLED must be {disabled_env!r} with EnableTracing={enabled}"
    )
