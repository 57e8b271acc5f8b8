"""`swapdrop logs` as a person runs it, against the local stack (its functions' logs shipped to moto's
CloudWatch Logs and read back with Logs Insights)."""

from __future__ import annotations

import json
import time

from e2e.conftest import Client, CliStack, run_cli


def test_logs_for_a_job_show_its_submit_and_callback_lines(
    cli_stack: CliStack, fixture_photos: dict[str, bytes]
) -> None:
    client = Client(cli_stack.info)
    face, target = sorted(fixture_photos)[:2]
    client.put("faces/logface.jpg", fixture_photos[face])
    key = "inbox/logface/for-the-logs.jpg"
    client.put(key, fixture_photos[target])
    job = client.wait_for(key, timeout=60)
    deadline = time.monotonic() + 30  # the stack ships function logs in batches
    while True:
        found = run_cli("logs", "--job", job.jobId, "--since", "10m", "--json", stack=cli_stack)
        assert found.returncode == 0, found.stderr
        rows = [json.loads(line) for line in found.stdout.splitlines()]
        functions = {row["function"] for row in rows}
        if {"submit", "callback"} <= functions or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"submit", "callback"} <= functions, rows
    assert all(row["jobId"] == job.jobId for row in rows)
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    assert any(row["function"] == "callback" and row["message"] == "job updated" for row in rows), rows
    human = run_cli("logs", "--job", job.jobId, "--since", "10m", stack=cli_stack)
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert len(lines) == len(rows) and all(line.endswith(f"job={job.jobId}") for line in lines)
    assert any(" submit " in line and " INFO " in line for line in lines), lines
    assert cli_stack.running.options.api_key not in human.stdout + found.stdout


def test_logs_of_one_function(cli_stack: CliStack) -> None:
    cli_stack.running.reconcile_now()
    deadline = time.monotonic() + 30
    while True:
        found = run_cli("logs", "Reconcile", "--since", "10m", "--limit", "3", "--json", stack=cli_stack)
        rows = [json.loads(line) for line in found.stdout.splitlines()]
        if rows or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found.returncode == 0, found.stderr
    assert 1 <= len(rows) <= 3 and {row["function"] for row in rows} == {"reconcile"}


def test_an_unknown_function_lists_the_valid_names(cli_stack: CliStack) -> None:
    result = run_cli("logs", "nosuchfunction", stack=cli_stack)
    assert result.returncode == 2
    assert "error: no function 'nosuchfunction'" in result.stderr
    assert "hint: FUNCTION is one of: " in result.stderr and "submit" in result.stderr and "callback" in result.stderr


def test_a_bad_job_id_is_a_usage_error(cli_stack: CliStack) -> None:
    result = run_cli("logs", "--job", 'x" or 1=1', "--json", stack=cli_stack)
    assert result.returncode == 2
    assert json.loads(result.stdout.splitlines()[-1])["error"]["exitCode"] == 2
