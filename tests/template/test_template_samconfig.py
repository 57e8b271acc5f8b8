"""samconfig.toml: the default and prod environments, and overrides that the template accepts."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest
from cfn_template import ROOT


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def test_default_environment(samconfig: dict[str, Any]) -> None:
    assert str(samconfig["version"]) == "0.1"
    default = samconfig["default"]
    assert default["global"]["parameters"]["stack_name"] == "swapdrop"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("env", ["default", "prod"])
def test_deploy_settings(samconfig: dict[str, Any], env: str) -> None:
    deploy = samconfig[env]["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split(), "the functions' roles need CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    assert deploy["region"] == "us-east-1"


def test_prod_is_a_separate_stack(samconfig: dict[str, Any]) -> None:
    names = {samconfig[env]["global"]["parameters"]["stack_name"] for env in ("default", "prod")}
    assert len(names) == 2, "prod must deploy to its own stack"


def test_parameter_overrides_name_real_parameters_with_allowed_values(
    samconfig: dict[str, Any], parameters: dict[str, Any]
) -> None:
    for env, sections in samconfig.items():
        if not isinstance(sections, dict):
            continue
        overrides = sections.get("deploy", {}).get("parameters", {}).get("parameter_overrides")
        if overrides is None:
            continue
        for item in shlex.split(overrides) if isinstance(overrides, str) else overrides:
            name, _, value = item.partition("=")
            assert name in parameters, f"[{env}] override {name} is not a template parameter"
            spec = parameters[name]
            if "AllowedValues" in spec:
                allowed = [str(v) for v in spec["AllowedValues"]]
                assert value in allowed, f"[{env}] {name}={value} not in {allowed}"
            if "AllowedPattern" in spec:
                assert re.fullmatch(spec["AllowedPattern"], value), f"[{env}] {name}={value} fails the pattern"
            if spec["Type"] == "Number":
                number = float(value)
                assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), f"[{env}] {item}"
