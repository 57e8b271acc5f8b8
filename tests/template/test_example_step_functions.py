"""examples/step-functions: its SAM template and its ASL pass cfn-lint, and the ASL asks for a swap
the way Swapdrop takes one (Swap Requested on its bus with the task token, errors it sends caught).

cfn-lint does not read a DefinitionUri file, so the ASL is also linted inlined as a state machine's
Definition (rule E3601 checks it against the States language schema). Needs .venv-tools (`make tools`)
or CFN_LINT_BIN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfn_template import ROOT, load_template
from swapdrop.jobs import JobStatus

pytestmark = [pytest.mark.build, pytest.mark.timeout(300)]

EXAMPLE = ROOT / "examples/step-functions"


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(os.environ.get("CFN_LINT_BIN") or ROOT / ".venv-tools/bin/cfn-lint")
    if not binary.exists():
        pytest.fail(f"cfn-lint not found at {binary}: run `make tools` or set CFN_LINT_BIN")
    return subprocess.run([str(binary), str(path)], capture_output=True, text=True, timeout=240, check=False)


def asl() -> dict[str, Any]:
    return json.loads((EXAMPLE / "statemachine.asl.json").read_text(encoding="utf-8"))


def inlined(definition: dict[str, Any], tmp_path: Path) -> Path:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Pipeline": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/pipeline",
                    "Definition": definition,
                    "DefinitionSubstitutions": {"SwapdropEventBusName": "swapdrop-jobs", "ApprovedPrefix": "approved/"},
                },
            }
        },
    }
    path = tmp_path / "inlined.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    return path


def test_the_example_template_passes_cfn_lint() -> None:
    result = cfn_lint(EXAMPLE / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_asl_passes_cfn_lint_and_a_broken_one_does_not(tmp_path: Path) -> None:
    result = cfn_lint(inlined(asl(), tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = asl()
    broken["States"]["Done"]["Type"] = "Tusk"  # cfn-lint checks the schema (not where Next points)
    assert cfn_lint(inlined(broken, tmp_path)).returncode != 0, "the lint must see the ASL"


def test_the_template_substitutes_every_variable_the_asl_uses() -> None:
    text = (EXAMPLE / "statemachine.asl.json").read_text(encoding="utf-8")
    resource = load_template(EXAMPLE / "template.yaml")["Resources"]["SwapPipeline"]["Properties"]
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == set(resource["DefinitionSubstitutions"]), used
    assert resource["DefinitionUri"] == "statemachine.asl.json"


def test_the_asl_asks_swapdrop_for_a_swap_and_catches_what_swapdrop_sends() -> None:
    ask = asl()["States"][asl()["StartAt"]]
    assert ask["Resource"] == "arn:aws:states:::events:putEvents.waitForTaskToken"
    [entry] = ask["Parameters"]["Entries"]
    assert entry["DetailType"] == "Swap Requested" and entry["Source"] != "swapdrop"  # the rule ignores its own
    assert entry["EventBusName"] == "${SwapdropEventBusName}"
    assert entry["Detail"]["taskToken.$"] == "$$.Task.Token"
    assert set(entry["Detail"]) >= {"face.$", "target", "taskToken.$", "idempotencyKey.$"}
    failures = {s.value for s in JobStatus if s.is_terminal and s is not JobStatus.SUCCESS}
    caught = {error for rule in ask["Catch"] for error in rule["ErrorEquals"]}
    assert caught == failures == {"FAILURE", "REJECTED", "CANCELLED"}
    assert ask["TimeoutSeconds"] > 3600, "longer than Swapdrop's default job timeout (60 min) and the reconciler"


def test_every_transition_goes_to_a_state_and_every_state_is_reached() -> None:
    """What cfn-lint's schema check does not see."""
    states = asl()["States"]
    targets = {asl()["StartAt"]}
    for state in states.values():
        targets |= {state["Next"]} if "Next" in state else set()
        targets |= {rule["Next"] for rule in state.get("Catch", [])}
    assert targets == set(states), (targets, set(states))
