"""The upstream pool end to end: `swapdrop local --upstream-pool 3` (three emulators, each its own port,
instance id and limits; the key secret holding the pool JSON), bursts driven through S3 only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from swapdrop.jobs import Job, JobStatus
from swapdrop_local.stack import RunningStack, StackOptions

from e2e.conftest import Client, CliStack, run_cli

RUNNING, QUEUED = 1, 2
"""Small members (3 tasks each, 9 in all), so a burst of 12 cannot fit on one member, nor on all three at once:
it must spread and some jobs must wait for capacity."""
BURST = 12


@pytest.fixture(scope="module")
def pool_stack() -> Iterator[RunningStack]:
    from swapdrop_emulator import echo_engine

    options = StackOptions(
        api_key="pool-e2e-secret-key",
        reconcile_interval=1.0,
        parameters={"ReconcileQuietSeconds": "2"},
        upstream_pool=3,
        pool_members=[{"concurrency": RUNNING, "queue_size": QUEUED}] * 3,
        emulator={"step_delay": 0.3, "progress_steps": (50,), "engine": echo_engine},
    )
    with RunningStack(options) as running:
        yield running


@pytest.fixture
def pool_client(pool_stack: RunningStack) -> Client:
    return Client(pool_stack.info())


def _burst(client: Client, label: str) -> list[Job]:
    face = f"{label}-{uuid.uuid4().hex[:8]}"
    client.put(f"faces/{face}.png", _png((90, 160, 210)))
    keys = [f"inbox/{face}/{n}.png" for n in range(BURST)]
    target = _png((120, 80, 200))
    for key in keys:
        client.put(key, target)
    return [client.wait_for(key, timeout=180) for key in keys]


def _png(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _failovers(log_file: Path) -> float:
    """UpstreamFailovers counted in the stack's log (the functions' EMF lines, one JSON object a line)."""
    total = 0.0
    for line in log_file.read_text(encoding="utf-8").splitlines():
        if '"UpstreamFailovers"' in line and line.startswith("{"):
            values = json.loads(line).get("UpstreamFailovers", [])
            total += sum(values) if isinstance(values, list) else values
    return total


def test_the_key_secret_names_every_member_and_the_info_lists_them(pool_stack: RunningStack) -> None:
    info = pool_stack.info()
    secret = pool_stack.stack.client("secretsmanager").get_secret_value(SecretId=info["api_key_secret_id"])
    pool = json.loads(secret["SecretString"])
    assert pool["apiKey"] == "pool-e2e-secret-key"
    urls = [emulator.url for emulator in pool_stack.emulators]
    assert len(set(urls)) == 3, "each member its own port"
    assert pool["members"] == [
        {"name": f"emulator-{n}", "baseUrl": url, "instanceId": f"instance-{n}", "running": RUNNING, "queued": QUEUED}
        for n, url in enumerate(urls, start=1)
    ]
    assert [(m["name"], m["url"]) for m in info["upstream_pool"]] == [
        (f"emulator-{n}", u) for n, u in enumerate(urls, 1)
    ]
    assert [(e.config.concurrency, e.config.queue_size) for e in pool_stack.emulators] == [(RUNNING, QUEUED)] * 3


def test_a_burst_spreads_over_every_member_and_every_job_succeeds(
    pool_stack: RunningStack, pool_client: Client
) -> None:
    jobs = _burst(pool_client, "spread")
    assert [job.status for job in jobs] == [JobStatus.SUCCESS] * BURST, [job.failReason for job in jobs]
    by_member = {member.name: emulator for member, emulator in zip(pool_stack.pool, pool_stack.emulators, strict=True)}
    for job in jobs:
        assert job.upstreamMember in by_member, job
        task = by_member[job.upstreamMember].tasks.get(job.taskId)
        assert task is not None, f"{job.jobId}'s task is on the member its record names"
        assert task.instance_id == f"instance-{job.upstreamMember.rsplit('-', 1)[1]}", "the member's instanceId is sent"
        assert job.submittedAt
    assert {job.upstreamMember for job in jobs} == set(by_member), "every member took a share"


def _doctor_swap_api(pool_stack: RunningStack, directory: Path) -> dict:
    """`swapdrop doctor --json --local` against the pool stack: its swap API check."""
    info_file = directory / "local.json"
    pool_stack.write_info(info_file)
    done = run_cli("doctor", "--json", stack=CliStack(pool_stack, info_file, pool_stack.info()))
    assert pool_stack.options.api_key not in done.stdout + done.stderr
    rows = {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}
    return rows["swap API answers and accepts the key"]


def test_doctor_checks_every_member(pool_stack: RunningStack, tmp_path: Path) -> None:
    row = _doctor_swap_api(pool_stack, tmp_path)
    assert row["ok"] is True, row
    assert row["detail"].startswith("all 3 pool members (emulator-1, emulator-2, emulator-3) answered")


def test_a_stopped_member_is_failed_over(pool_stack: RunningStack, pool_client: Client) -> None:
    stopped, stopped_emulator = pool_stack.pool[2], pool_stack.emulators[2]
    tasks_before = len(stopped_emulator.tasks)
    failovers_before = _failovers(pool_stack.log_file)
    stopped_emulator.stop()  # its port now refuses connections: the pool must move its submits elsewhere
    jobs = _burst(pool_client, "stopped")
    assert [job.status for job in jobs] == [JobStatus.SUCCESS] * BURST, [job.failReason for job in jobs]
    assert {job.upstreamMember for job in jobs} <= {pool_stack.pool[0].name, pool_stack.pool[1].name}
    assert len(stopped_emulator.tasks) == tasks_before
    assert all(job.attempts <= 1 for job in jobs), "a refused connection is failed over, not an attempt used"
    assert _failovers(pool_stack.log_file) > failovers_before, f"no submit was failed over from {stopped.name}"


def test_doctor_names_the_stopped_member(pool_stack: RunningStack, tmp_path: Path) -> None:
    """After the member above stopped: its swap API check is a cross naming it, the others still answer."""
    row = _doctor_swap_api(pool_stack, tmp_path)
    assert row["ok"] is False
    assert row["detail"].startswith("1 of 3 pool members failed: emulator-3: "), row
    assert "is unreachable" in row["detail"]
