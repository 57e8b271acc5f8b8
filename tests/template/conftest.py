"""Fixtures for the template tests: template.yaml parsed once, functions with Globals merged."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import functions, load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]


@pytest.fixture(scope="session")
def parameters(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Parameters"]


@pytest.fixture(scope="session")
def lambda_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each AWS::Serverless::Function's Properties with Globals.Function merged in, as SAM does."""
    return functions(template)
