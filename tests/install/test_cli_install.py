"""`pip install .` on the oldest Python the CLI supports gives a working `swapdrop` without the image stack.

A fresh venv with Python 3.10 (scripts/find-python310: else the oldest of 3.11/3.12; none fails loudly)
gets a non-editable install of a copy of the repository (no venvs, out/ or .aws-sam). Then, from that venv:
`swapdrop --help`; no numpy, OpenCV, MediaPipe, moto, scikit-image or matplotlib in `pip list`; faces,
a swap and `jobs --json` against a local stack running in the test's own (3.13) process, over real HTTP;
and `swapdrop local`, whose packages are an extra, exits 2 with the install hint.

Needs the package registry (or pip's cache). `pytest -s` prints how long the venv and the install took.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.conftest import CliStack, running_cli_stack

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT / "tests" / "fixtures" / "faces"
IMAGE_STACK = ("numpy", "opencv", "mediapipe", "moto", "scikit-image", "matplotlib")
"""Distributions (or name prefixes: opencv-python, opencv-contrib-python-headless, …) the CLI must not pull in."""
NOT_COPIED = (".venv*", "out", ".aws-sam", ".git", "*.egg-info", "build", "dist", "__pycache__", ".*_cache")
NOT_COPIED += (".hypothesis",)
_CLEARED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "SWAPDROP_STACK", "AWS_REGION", "PYTHONPATH")

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]


@dataclass
class Installed:
    python: Path
    swapdrop: Path
    version: str


def oldest_python() -> str:
    found = subprocess.run([str(ROOT / "scripts/find-python310")], capture_output=True, text=True, check=False)
    if found.returncode != 0 or not found.stdout.strip():
        pytest.fail(
            "no Python 3.10, 3.11 or 3.12 found (pyenv install 3.10.13, or put python3.10 on PATH): "
            "the CLI's promise to run on Python >= 3.10 cannot be checked"
        )
    return found.stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    source = base / "swapdrop-src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    venv = base / "venv"
    started = time.monotonic()
    subprocess.run([oldest_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    made = time.monotonic()
    pip = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    done = time.monotonic()
    assert pip.returncode == 0, f"pip install . failed:\n{pip.stdout}\n{pip.stderr}"
    version = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    print(f"python {version}: venv {made - started:.1f} s, pip install . {done - made:.1f} s")
    return Installed(venv / "bin/python", venv / "bin/swapdrop", version)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    """A local stack in this (3.13) process, for the 3.10 CLI to talk to."""
    with running_cli_stack(tmp_path_factory.mktemp("packaging-stack"), "packaging-secret-key") as stack:
        yield stack


def run(installed: Installed, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    return subprocess.run(
        [str(installed.swapdrop), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180, check=False
    )


def test_the_venv_runs_the_oldest_supported_python(installed: Installed) -> None:
    assert installed.version.startswith(("3.10.", "3.11.", "3.12.")), installed.version


def test_swapdrop_help_works(installed: Installed) -> None:
    result = run(installed, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("face", "swap", "jobs", "doctor"):
        assert command in result.stdout


def test_the_image_stack_is_not_installed(installed: Installed) -> None:
    listed = subprocess.run(
        [str(installed.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)}
    assert {"boto3", "requests", "rich"} <= names, names
    pulled_in = sorted(name for name in names if name.startswith(IMAGE_STACK))
    assert not pulled_in, f"pip install . pulled in the image stack: {pulled_in}"


def test_faces_a_swap_and_jobs_against_a_local_stack(installed: Installed, local_stack: CliStack, tmp_path) -> None:
    local = ("--local", str(local_stack.info_file))
    added = run(installed, "face", "add", "grace", str(FACES / "grace_hopper.jpg"), *local)
    assert added.returncode == 0, added.stderr
    listed = run(installed, "face", "list", "--json", *local)
    assert listed.returncode == 0, listed.stderr
    assert "grace" in {json.loads(line).get("face") for line in listed.stdout.splitlines()}

    swapped = run(installed, "swap", "grace", str(FACES / "astronaut.png"), "--wait", "--out", str(tmp_path), *local)
    assert swapped.returncode == 0, f"{swapped.stdout}\n{swapped.stderr}"
    assert (tmp_path / "astronaut.png").is_file(), f"no result in --out: {sorted(tmp_path.rglob('*'))}"

    jobs = run(installed, "jobs", "--json", *local)
    assert jobs.returncode == 0, jobs.stderr
    records = [json.loads(line) for line in jobs.stdout.splitlines()]
    assert [record["status"] for record in records] == ["SUCCESS"], records


def test_swapdrop_local_without_the_extra_says_how_to_install_it(installed: Installed) -> None:
    result = run(installed, "local")
    assert result.returncode == 2, result.stderr
    assert "pip install 'swapdrop[local]'" in result.stderr
