"""End-to-end: the local stack as `swapdrop local` runs it (moto, the emulator with its real
face swap, the functions in worker processes, the SQS event source, the HTTP adapter and
the reconciler), driven only through S3 and read back from DynamoDB, over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from swapdrop.jobs import TERMINAL_STATUSES, Job
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
TERMINAL = {status.value for status in TERMINAL_STATUSES}


class Client:
    """What a user of the local stack has: its endpoints (as in --info-file) and boto3."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.s3 = local_client("s3", info["region"], info["endpoint_url"])
        self.dynamodb = local_client("dynamodb", info["region"], info["endpoint_url"])

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.info["bucket"], Key=key, Body=data)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.info["bucket"], Key=key)["Body"].read()

    def jobs(self) -> list[Job]:
        from boto3.dynamodb.types import TypeDeserializer

        deserialize = TypeDeserializer().deserialize
        items = self.dynamodb.scan(TableName=self.info["jobs_table"], ConsistentRead=True)["Items"]
        return [Job.from_item({k: deserialize(v) for k, v in item.items()}) for item in items]

    def job_for(self, key: str) -> Job | None:
        found = [job for job in self.jobs() if job.targetKey == key]
        return found[0] if found else None

    def wait_for(self, key: str, done: Callable[[Job], bool] | None = None, timeout: float = 60) -> Job:
        """Poll the table until the job for `key` is finished (terminal, result settled)."""
        done = done or (lambda j: j.status.value in TERMINAL and not j.needs_attention)
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            job = self.job_for(key)
            if job is not None and done(job):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job for {key!r} not finished within {timeout} s; last seen: {job}")


@pytest.fixture(scope="session")
def fixture_photos() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in FIXTURES.iterdir() if path.suffix in (".jpg", ".png")}


@pytest.fixture(scope="module")
def local_stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="e2e-secret-key",
        reconcile_interval=1.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.02},
    )
    with RunningStack(options) as running:
        yield running


@pytest.fixture
def client(local_stack: RunningStack) -> Client:
    return Client(local_stack.info())


# --- the swapdrop CLI against a running local stack (issue 9) ---------------------------------

SWAPDROP = Path(sys.executable).parent / "swapdrop"
_CLEARED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "SWAPDROP_STACK", "AWS_REGION")


@dataclass
class CliStack:
    """A running local stack as the CLI sees it: its info file (0600, as `swapdrop local --info-file` writes)."""

    running: RunningStack
    info_file: Path
    info: dict[str, Any]


@contextmanager
def running_cli_stack(directory: Path, api_key: str) -> Iterator[CliStack]:
    """A stack for the CLI to talk to, its info file in `directory`: the echo engine (no real swap:
    fast), a fast reconciler."""
    from swapdrop_emulator import echo_engine

    options = StackOptions(
        api_key=api_key,
        reconcile_interval=1.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.02, "engine": echo_engine},
    )
    with RunningStack(options) as running:
        info_file = directory / "local.json"
        running.write_info(info_file)
        yield CliStack(running, info_file, running.info())


@pytest.fixture(scope="session")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    """One stack for the CLI's end-to-end tests."""
    with running_cli_stack(tmp_path_factory.mktemp("cli"), "cli-e2e-secret-key") as stack:
        yield stack


def run_cli(
    *args: str,
    stack: CliStack | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    target: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`swapdrop ARGS` as a person runs it (a subprocess; text; stdout and stderr captured), with
    `--local <info file>` added when `stack` is given and `target` is true. `env` adds to a clean
    environment (no AWS profile, endpoint or SWAPDROP_STACK leaking in from the caller's)."""
    command = [str(SWAPDROP), *args]
    if stack is not None and target:
        command += ["--local", str(stack.info_file)]
    environment = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    environment.update(env or {})
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=timeout, input=input, check=False
    )
