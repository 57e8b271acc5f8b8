"""`swapdrop status|jobs|cancel|retry|result` as a person runs them, against a running local stack:
exit codes, --json lines parsed, and the error paths (unknown job, no stack, refused credentials)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from swapdrop_local.auth import signed_request

from e2e.conftest import FIXTURES, Client, CliStack, run_cli

JOB_ID_UNKNOWN = "0" * 32


def _api(stack: CliStack, method: str, path: str, body: Any = None, params: dict | None = None) -> dict:
    answer = signed_request(stack.info, method, path, json_body=body, params=params)
    assert answer.status_code < 300, answer.text
    return answer.json()


def _finished(stack: CliStack, job_id: str) -> dict:
    for _ in range(6):
        job = _api(stack, "GET", f"/jobs/{job_id}", params={"wait": 20})
        if job["status"] in ("SUCCESS", "FAILURE", "REJECTED", "CANCELLED") and (
            job["status"] != "SUCCESS" or job.get("result")
        ):
            return job
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def face(cli_stack: CliStack) -> str:
    name = f"jobs-{uuid.uuid4().hex[:6]}"
    Client(cli_stack.info).put(f"faces/{name}.jpg", (FIXTURES / "grace_hopper.jpg").read_bytes())
    return name


@pytest.fixture(scope="module")
def done(cli_stack: CliStack, face: str) -> dict:
    """A SUCCESS job through the drop folder, and its target key."""
    client = Client(cli_stack.info)
    key = f"inbox/{face}/beach {uuid.uuid4().hex[:6]}.png"
    client.put(key, (FIXTURES / "astronaut.png").read_bytes())
    job = client.wait_for(key)
    assert job.status.value == "SUCCESS", job.failReason
    return {**_finished(cli_stack, job.jobId), "key": key}


@pytest.fixture(scope="module")
def rejected(cli_stack: CliStack) -> dict:
    """A REJECTED job: its face does not exist."""
    client = Client(cli_stack.info)
    key = f"inbox/nobody-{uuid.uuid4().hex[:6]}/a.png"
    client.put(key, (FIXTURES / "astronaut.png").read_bytes())
    job = client.wait_for(key)
    assert job.status.value == "REJECTED", job
    return _finished(cli_stack, job.jobId)


def test_status_by_job_id_by_key_and_by_s3_url(cli_stack: CliStack, done: dict) -> None:
    shown = run_cli("status", done["jobId"], stack=cli_stack)
    assert shown.returncode == 0, shown.stderr
    assert "SUCCESS" in shown.stdout and done["jobId"] in shown.stdout
    for target in (done["key"], f"s3://{cli_stack.info['bucket']}/{done['key']}"):
        found = run_cli("status", target, "--json", stack=cli_stack)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["jobId"] == done["jobId"]


def test_status_of_a_rejected_job_exits_1(cli_stack: CliStack, rejected: dict) -> None:
    shown = run_cli("status", rejected["jobId"], "--json", stack=cli_stack)
    assert shown.returncode == 1
    assert json.loads(shown.stdout)["status"] == "REJECTED"


def test_unknown_job_exits_2(cli_stack: CliStack) -> None:
    for command in (("status",), ("cancel",), ("retry",), ("result",)):
        answer = run_cli(*command, JOB_ID_UNKNOWN, stack=cli_stack)
        assert answer.returncode == 2, (command, answer.stderr)
        assert f"error: no job {JOB_ID_UNKNOWN} in local stack" in answer.stderr
    not_an_id = run_cli("cancel", "not-a-job", stack=cli_stack)
    assert not_an_id.returncode == 2
    assert "is not a job id" in not_an_id.stderr


def test_status_of_a_key_with_no_object_exits_2(cli_stack: CliStack, face: str) -> None:
    answer = run_cli("status", f"inbox/{face}/never-uploaded.jpg", stack=cli_stack)
    assert answer.returncode == 2
    assert "no object" in answer.stderr


def test_jobs_lists_as_a_table_and_as_json_lines(cli_stack: CliStack, done: dict, rejected: dict, face: str) -> None:
    table = run_cli("jobs", "--limit", "0", stack=cli_stack)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["JOB", "STATUS", "FACE", "CREATED", "TARGET", "REASON"]
    assert done["jobId"] in table.stdout and rejected["jobId"] in table.stdout
    lines = run_cli("jobs", "--face", face, "--since", "1h", "--json", stack=cli_stack)
    assert lines.returncode == 0, lines.stderr
    jobs = [json.loads(line) for line in lines.stdout.splitlines()]
    assert done["jobId"] in [job["jobId"] for job in jobs]
    assert {job["face"] for job in jobs} == {face}
    failed = run_cli("jobs", "--status", "rejected", "--json", stack=cli_stack)
    assert {json.loads(line)["status"] for line in failed.stdout.splitlines()} == {"REJECTED"}
    future = run_cli("jobs", "--since", "2999-01-01T00:00:00Z", "--json", stack=cli_stack)
    assert future.returncode == 0 and future.stdout == ""


def test_jobs_refuses_a_bad_since(cli_stack: CliStack) -> None:
    answer = run_cli("jobs", "--since", "yesterday", stack=cli_stack)
    assert answer.returncode == 2
    assert "expected 30m, 2h, 1d, 1w or an ISO-8601 time" in answer.stderr


def test_cancel_an_unfinished_job_then_again(cli_stack: CliStack, face: str) -> None:
    waiting = _api(cli_stack, "POST", "/jobs", {"face": face, "target": {"upload": {"contentType": "image/png"}}})
    assert waiting["status"] == "AWAITING_UPLOAD"
    cancelled = run_cli("cancel", waiting["jobId"], "--json", stack=cli_stack)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "CANCELLED"
    again = run_cli("cancel", waiting["jobId"], stack=cli_stack)
    assert again.returncode == 2
    assert "has already finished (CANCELLED)" in again.stderr
    status = run_cli("status", waiting["jobId"], stack=cli_stack)
    assert status.returncode == 1


def test_retry_one_job_and_every_failed_job(cli_stack: CliStack, rejected: dict, done: dict) -> None:
    dry = run_cli("retry", "--failed", "--since", "1h", "--dry-run", "--json", stack=cli_stack)
    assert dry.returncode == 0, dry.stderr
    assert rejected["jobId"] in [json.loads(line)["jobId"] for line in dry.stdout.splitlines()]
    one = run_cli("retry", rejected["jobId"], "--json", stack=cli_stack)
    assert one.returncode == 0, one.stderr
    retry = json.loads(one.stdout)["retry"]
    assert retry["retryOf"] == rejected["jobId"]
    twice = run_cli("retry", rejected["jobId"], stack=cli_stack)
    assert twice.returncode == 2, twice.stderr
    succeeded = run_cli("retry", done["jobId"], stack=cli_stack)
    assert succeeded.returncode == 2, succeeded.stderr
    _finished(cli_stack, retry["jobId"])  # REJECTED again: the face still does not exist
    every = run_cli("retry", "--failed", "--since", "1h", "--json", stack=cli_stack)
    assert every.returncode == 0, every.stderr
    retried = {json.loads(line)["jobId"] for line in every.stdout.splitlines()}
    assert retry["jobId"] in retried and rejected["jobId"] not in retried  # retried already: skipped
    both = run_cli("retry", rejected["jobId"], "--failed", stack=cli_stack)
    assert both.returncode == 2


def test_result_downloads_the_image(cli_stack: CliStack, done: dict, tmp_path: Path) -> None:
    into = run_cli("result", done["jobId"], "--out", str(tmp_path) + "/", stack=cli_stack)
    assert into.returncode == 0, into.stderr
    saved = Path(into.stdout.strip())
    assert saved == tmp_path / done["result"]["key"].rsplit("/", 1)[1]  # the result's own name
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the echo engine answers the target as PNG
    named = run_cli("result", done["jobId"], "--out", str(tmp_path / "swapped.png"), "--json", stack=cli_stack)
    assert named.returncode == 0, named.stderr
    record = json.loads(named.stdout)
    assert record["path"] == str(tmp_path / "swapped.png")
    assert record["bytes"] == (tmp_path / "swapped.png").stat().st_size > 0


def test_result_of_a_rejected_job_exits_1(cli_stack: CliStack, rejected: dict, tmp_path: Path) -> None:
    answer = run_cli("result", rejected["jobId"], "--out", str(tmp_path / "r.png"), "--json", stack=cli_stack)
    assert answer.returncode == 1
    assert json.loads(answer.stdout)["error"]["exitCode"] == 1
    assert "ended REJECTED" in answer.stderr
    assert not (tmp_path / "r.png").exists()


def test_result_of_an_unfinished_job_exits_2(cli_stack: CliStack, face: str) -> None:
    waiting = _api(cli_stack, "POST", "/jobs", {"face": face, "target": {"upload": {"contentType": "image/png"}}})
    answer = run_cli("result", waiting["jobId"], stack=cli_stack)
    assert answer.returncode == 2
    assert "has not finished (AWAITING_UPLOAD" in answer.stderr
    assert f"hint: swapdrop wait {waiting['jobId']}" in answer.stderr


def test_no_local_stack_exits_3(tmp_path: Path) -> None:
    missing = tmp_path / "local.json"
    for command in (("jobs",), ("status", JOB_ID_UNKNOWN), ("cancel", JOB_ID_UNKNOWN)):
        answer = run_cli(*command, "--local", str(missing), "--json")
        assert answer.returncode == 3, answer.stderr
        assert f"no local stack at {missing}" in answer.stderr
        assert json.loads(answer.stdout)["error"]["exitCode"] == 3


def test_a_tampered_secret_key_is_refused_with_exit_4(cli_stack: CliStack, tmp_path: Path) -> None:
    info = json.loads(cli_stack.info_file.read_text())
    info["api_credentials"]["secret_access_key"] = "x" * 40
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(info))
    for command in (("jobs",), ("status", JOB_ID_UNKNOWN), ("retry", "--failed")):
        answer = run_cli(*command, "--local", str(tampered))
        assert answer.returncode == 4, (command, answer.stderr)
        assert "the jobs API refused the request (403" in answer.stderr


def _deployed_env(stack: CliStack, secret: str | None = None) -> dict[str, str]:
    credentials = stack.info["api_credentials"]
    return {
        "AWS_ENDPOINT_URL": stack.info["endpoint_url"],
        "AWS_ACCESS_KEY_ID": credentials["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": secret or credentials["secret_access_key"],
        "AWS_REGION": stack.info["region"],
    }


def test_stack_target_through_moto_cloudformation(cli_stack: CliStack, done: dict) -> None:
    env = _deployed_env(cli_stack)
    found = run_cli("--stack", cli_stack.info["stack_name"], "status", done["jobId"], "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["status"] == "SUCCESS"
    by_key = run_cli("status", done["key"], "--stack", cli_stack.info["stack_name"], "--json", env=env)
    assert by_key.returncode == 0, by_key.stderr
    assert json.loads(by_key.stdout)["jobId"] == done["jobId"]
    unknown = run_cli("jobs", "--stack", "no-such-stack", env=env)
    assert unknown.returncode == 3
    assert "stack 'no-such-stack' not found in us-east-1" in unknown.stderr
    refused = run_cli("jobs", "--stack", cli_stack.info["stack_name"], env=_deployed_env(cli_stack, "y" * 40))
    assert refused.returncode == 4, refused.stderr
    both = run_cli("jobs", "--stack", "a", "--local", str(cli_stack.info_file))
    assert both.returncode == 2
    assert "use --stack or --local, not both" in both.stderr


def test_a_stopped_local_stack_exits_3(tmp_path: Path) -> None:
    """An info file left behind by a stack that is gone: its endpoint refuses connections."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    info = {
        "region": "us-east-1",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "stack_name": "swapdrop-local",
        "api_credentials": {"access_key_id": "AKIALOCAL", "secret_access_key": "s" * 40},
    }
    stale = tmp_path / "local.json"
    stale.write_text(json.dumps(info))
    answer = run_cli("jobs", "--local", str(stale))
    assert answer.returncode == 3
    assert f"error: the local stack at {stale} does not answer: it has stopped" in answer.stderr
