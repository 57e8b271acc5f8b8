"""checkov on template.yaml: no failed check, and every skipped one says why.

Needs .venv-scan (`make scan-tools`) or CHECKOV_BIN. Offline: --skip-download keeps checkov
from fetching Prisma Cloud guidelines and policies.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfn_template import ROOT

pytestmark = [pytest.mark.build, pytest.mark.timeout(300)]

COMMAND = ("--framework", "cloudformation", "--compact", "--skip-download", "--output", "json")
# Checks that template.yaml suppresses on purpose. Skipping another one is a decision to review
# here, not something a Metadata comment does alone.
# CKV_AWS_26: the alarm topic cannot use the AWS managed key alias/aws/sns (CloudWatch may not use it,
# so alarms would never notify); it uses KmsKeyArn when set and is otherwise unencrypted.
ACCEPTED_SKIPS = {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_26"}


def checkov_bin() -> Path:
    path = Path(os.environ.get("CHECKOV_BIN") or ROOT / ".venv-scan/bin/checkov")
    if not path.exists():
        pytest.fail(f"checkov not found at {path}: run `make scan-tools` or set CHECKOV_BIN")
    return path


def scan(template: Path) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [str(checkov_bin()), "--file", str(template), *COMMAND],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode, report


@pytest.fixture(scope="module")
def report() -> tuple[int, dict[str, Any]]:
    return scan(ROOT / "template.yaml")


def _describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} {check['resource']}: {check['check_name']}"


def test_no_failed_check(report: tuple[int, dict[str, Any]]) -> None:
    code, data = report
    failed = data["results"]["failed_checks"]
    assert not failed, "checkov failures (fix them, or skip with a reason in the resource's Metadata):\n" + (
        "\n".join(_describe(c) for c in failed)
    )
    assert code == 0, f"checkov exited {code} with no failed check"
    assert data["summary"]["passed"] >= 30, f"checkov passed only {data['summary']['passed']} checks: did it parse?"


def test_every_skip_is_explained_and_accepted(report: tuple[int, dict[str, Any]]) -> None:
    skipped = report[1]["results"]["skipped_checks"]
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(comment.split()) >= 5, f"{_describe(check)} is skipped without a reason: {comment!r}"
        assert check["check_id"] in ACCEPTED_SKIPS, f"{_describe(check)} is skipped; not an accepted exception"


def test_checkov_fails_a_template_with_a_new_finding(tmp_path: Path) -> None:
    """The scan is live: an unencrypted queue added to the template fails it."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    marker = "\nResources:\n"
    assert marker in text
    extra = (
        "\nResources:\n  PlainQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n      SqsManagedSseEnabled: false\n"
    )
    (tmp_path / "template.yaml").write_text(text.replace(marker, extra, 1), encoding="utf-8")
    code, data = scan(tmp_path / "template.yaml")
    failed = {(c["check_id"], c["resource"]) for c in data["results"]["failed_checks"]}
    assert ("CKV_AWS_27", "AWS::SQS::Queue.PlainQueue") in failed, f"failed checks: {sorted(failed)}"
    assert code != 0, "checkov exited 0 with a failed check: make lint would pass it"
