"""`swapdrop doctor` as a person runs it, against local stacks: all ✓ on a healthy one, and each fault it
claims to find, broken on purpose on a stack of its own: the placeholder key, a missing bucket
notification, an unreachable swap API (and an alarm in ALARM)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from swapdrop_local.provision import local_client

from e2e.conftest import CliStack, run_cli, running_cli_stack

PLACEHOLDER = "REPLACE_WITH_THE_SWAP_API_KEY"
KEY = "doctor-e2e-secret-key"


def reconciled(stack: CliStack, timeout: float = 30) -> None:
    """Run the reconciler and wait until its log line is in CloudWatch Logs (the stack ships logs in batches)."""
    stack.running.reconcile_now()
    info = stack.info
    logs = local_client("logs", info["region"], info["endpoint_url"])
    outputs = local_client("cloudformation", info["region"], info["endpoint_url"]).describe_stacks(
        StackName=info["stack_name"]
    )["Stacks"][0]["Outputs"]
    group = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ReconcileFunctionLogGroupName")
    started = time.time() * 1000
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streams = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=1)
        if any(s.get("lastEventTimestamp", 0) >= started - 2000 for s in streams["logStreams"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"no reconciler log line in {group} within {timeout} s")


def checks(stdout: str) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert all(set(row) == {"name", "ok", "detail", "fix"} for row in rows), rows
    return {row["name"]: row for row in rows}


def test_a_healthy_stack_is_all_ticks(cli_stack: CliStack) -> None:
    reconciled(cli_stack)  # the reconciler's latest log line is fresh whatever ran before
    human = run_cli("doctor", stack=cli_stack)
    assert human.returncode == 0, human.stdout + human.stderr
    lines = human.stdout.splitlines()
    assert len(lines) == 8 and all(line.startswith("✓ ") for line in lines), human.stdout
    assert "all checks passed" in human.stderr
    as_json = run_cli("doctor", "--json", stack=cli_stack)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    found = checks(as_json.stdout)
    assert len(found) == 8 and all(row["ok"] and row["fix"] is None for row in found.values()), found
    for output in (human.stdout, human.stderr, as_json.stdout, as_json.stderr):
        assert cli_stack.running.options.api_key not in output


@pytest.fixture(scope="module")
def sick_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    """A stack of this module's own, to break on purpose (each test restores what it broke, except the
    last, which stops the swap API)."""
    with running_cli_stack(tmp_path_factory.mktemp("doctor"), KEY) as stack:
        yield stack


def doctor(stack: CliStack) -> tuple[int, dict[str, dict[str, Any]], str]:
    reconciled(stack)
    result = run_cli("doctor", "--json", "--drain-seconds", "1", stack=stack)
    return result.returncode, checks(result.stdout), result.stderr


def test_a_placeholder_key_is_found_and_never_shown(sick_stack: CliStack) -> None:
    info = sick_stack.info
    secrets = local_client("secretsmanager", info["region"], info["endpoint_url"])
    secrets.put_secret_value(SecretId=info["api_key_secret_id"], SecretString=PLACEHOLDER)
    try:
        code, found, stderr = doctor(sick_stack)
        human = run_cli("doctor", stack=sick_stack)
    finally:
        secrets.put_secret_value(SecretId=info["api_key_secret_id"], SecretString=KEY)
    assert code == 1, found
    key = found["API key secret is set"]
    assert key["ok"] is False and key["detail"] == "the secret still holds the placeholder"
    assert "secretsmanager put-secret-value --secret-id" in key["fix"]
    swap_api = found["swap API answers and accepts the key"]
    assert (
        swap_api["ok"] is False and "refused the key: HTTP 401 (the secret holds the placeholder)" in swap_api["detail"]
    )
    assert human.returncode == 1
    assert "✗ API key secret is set: the secret still holds the placeholder" in human.stdout
    assert "    fix: aws --endpoint-url " in human.stdout
    assert KEY not in human.stdout + human.stderr + json.dumps(found) + stderr


def test_a_missing_notification_is_found(sick_stack: CliStack) -> None:
    info = sick_stack.info
    s3 = local_client("s3", info["region"], info["endpoint_url"])
    saved = s3.get_bucket_notification_configuration(Bucket=info["bucket"])
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=info["bucket"], NotificationConfiguration={})
    try:
        code, found, _ = doctor(sick_stack)
    finally:
        s3.put_bucket_notification_configuration(Bucket=info["bucket"], NotificationConfiguration=saved)
    assert code == 1
    notification = found["bucket notification in place"]
    assert notification["ok"] is False
    assert notification["detail"].startswith("new objects under inbox/ and uploads/ do not reach the submit queue")
    assert [name for name, row in found.items() if not row["ok"]] == ["bucket notification in place"]
    code, found, _ = doctor(sick_stack)
    assert found["bucket notification in place"]["ok"] is True


def test_an_alarm_in_alarm_is_found_with_its_description(sick_stack: CliStack) -> None:
    info = sick_stack.info
    cloudwatch = local_client("cloudwatch", info["region"], info["endpoint_url"])
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=sick_stack.info["stack_name"] + "-")["MetricAlarms"]
    assert alarms, "the local stack creates the template's alarms"
    alarm = alarms[0]
    cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason="e2e")
    try:
        code, found, _ = doctor(sick_stack)
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="OK", StateReason="e2e")
    assert code == 1
    row = found["alarms in OK"]
    assert row["ok"] is False and alarm["AlarmName"] in row["detail"]
    assert row["fix"] == f"{alarm['AlarmName']}: {alarm['AlarmDescription']}"


def test_an_unreachable_swap_api_is_found(sick_stack: CliStack) -> None:
    """Last in this module: the swap API stays stopped."""
    sick_stack.running.emulator.stop()
    code, found, _ = doctor(sick_stack)
    assert code == 1
    swap_api = found["swap API answers and accepts the key"]
    assert swap_api["ok"] is False and "is unreachable (connection refused or no route)" in swap_api["detail"]
    assert "restart swapdrop local" in swap_api["fix"]
    assert found["API key secret is set"]["ok"] is True
