"""pytest puts tests/ on sys.path: a test package named like an installed module hides that module
from every test (tests/packaging once hid `packaging`, and MediaPipe failed to import under pytest)."""

from __future__ import annotations

from importlib.metadata import packages_distributions
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_package_shadows_an_installed_module() -> None:
    installed = set(packages_distributions())
    ours = {path.parent.name for path in TESTS.glob("*/__init__.py")} | {path.stem for path in TESTS.glob("*.py")}
    assert ours & installed == set(), "rename these test packages/modules: they hide installed modules under pytest"
