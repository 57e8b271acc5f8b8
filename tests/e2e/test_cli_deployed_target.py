"""The deployed-stack target (`--stack NAME`, or $SWAPDROP_STACK) end to end, pointed at the local stack's
moto: AWS_ENDPOINT_URL and credentials in the environment, as a person with a deployed stack has them
from their profile. The CLI finds the stack through moto's CloudFormation (describe_stacks and its
Outputs) and runs jobs, doctor, dlq and logs through the same code as against AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.conftest import CliStack, run_cli
from e2e.test_cli_doctor import reconciled


@pytest.fixture
def aws_env(cli_stack: CliStack, tmp_path: Path) -> dict[str, str]:
    info = cli_stack.info
    credentials = info["api_credentials"]
    return {
        "AWS_ENDPOINT_URL": info["endpoint_url"],
        "AWS_REGION": info["region"],
        "AWS_ACCESS_KEY_ID": credentials["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["secret_access_key"],
        # no profile or credentials file of the machine's own leaks in
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }


def test_jobs_through_the_stack_outputs(cli_stack: CliStack, aws_env: dict[str, str]) -> None:
    result = run_cli("--stack", cli_stack.info["stack_name"], "jobs", "--json", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert all("jobId" in json.loads(line) for line in result.stdout.splitlines())


def test_the_stack_from_the_environment(cli_stack: CliStack, aws_env: dict[str, str]) -> None:
    result = run_cli("jobs", "--json", env={**aws_env, "SWAPDROP_STACK": cli_stack.info["stack_name"]})
    assert result.returncode == 0, result.stderr


def test_doctor_on_the_deployed_target(cli_stack: CliStack, aws_env: dict[str, str]) -> None:
    reconciled(cli_stack)
    result = run_cli("doctor", "--stack", cli_stack.info["stack_name"], "--json", env=aws_env)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 8
    assert [row for row in rows if not row["ok"]] == []
    assert result.returncode == 0


def test_dlq_and_logs_on_the_deployed_target(cli_stack: CliStack, aws_env: dict[str, str]) -> None:
    name = cli_stack.info["stack_name"]
    dlq = run_cli("dlq", "--stack", name, env=aws_env)
    assert dlq.returncode == 0, dlq.stderr
    logs = run_cli("logs", "reconcile", "--stack", name, "--since", "1h", "--limit", "1", env=aws_env)
    assert logs.returncode == 0, logs.stderr


def test_an_unknown_stack_is_exit_3_and_says_what_to_do(aws_env: dict[str, str]) -> None:
    result = run_cli("--stack", "no-such-stack", "doctor", env=aws_env)
    assert result.returncode == 3
    assert "stack 'no-such-stack' not found in us-east-1" in result.stderr
    assert "sam deploy --guided" in result.stderr


def test_credentials_the_jobs_api_refuses_are_exit_4(cli_stack: CliStack, aws_env: dict[str, str]) -> None:
    wrong = {**aws_env, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "AWS_SECRET_ACCESS_KEY": "wrong"}
    result = run_cli("--stack", cli_stack.info["stack_name"], "jobs", env=wrong)
    assert result.returncode == 4, result.stdout + result.stderr
