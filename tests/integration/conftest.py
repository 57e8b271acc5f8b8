"""Integration harness: moto's server over HTTP, the template's resources on it, the real
handlers invoked as Lambda would, callbacks over real HTTP through the API adapter."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import callback_handler
import pytest
import reconcile_handler
import submit_handler
from moto.server import ThreadedMotoServer
from PIL import Image
from swapdrop import submission, wiring
from swapdrop.jobs import Job
from swapdrop_emulator import EmulatorConfig, SwapEmulator
from swapdrop_local.http_api import HttpApiServer, Route
from swapdrop_local.lambda_context import LocalLambdaContext
from swapdrop_local.provision import LocalStack, provision
from swapdrop_local.sqs_source import SqsEventSource

REGION = "us-east-1"
API_KEY = "sk-integration-secret-key"
_stacks = itertools.count(1)


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png(color: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Harness:
    stack: LocalStack
    upstream: SwapEmulator
    api: HttpApiServer
    submit_source: SqsEventSource
    observer_queue_url: str

    @property
    def s3(self) -> Any:
        return self.stack.client("s3")

    def put(self, key: str, data: bytes) -> dict[str, Any]:
        return self.s3.put_object(Bucket=self.stack.bucket, Key=key, Body=data)

    def drain_submits(self) -> int:
        return self.submit_source.drain()

    def submit_then_die(self, key: str, monkeypatch: pytest.MonkeyPatch) -> Job:
        """Drain the submits of `key` with a worker that dies after the swap went out and before
        its answer is recorded (SIGKILL, as Lambda sees it); the job it leaves behind."""

        def worker_dies(*_args: object) -> None:
            raise SystemExit("SIGKILL")

        with monkeypatch.context() as patched:
            patched.setattr(submission.Submitter, "_accepted", worker_dies)
            with contextlib.suppress(SystemExit):
                self.drain_submits()
        return self.job_for(key)

    def reconcile(self) -> dict[str, Any]:
        return reconcile_handler.lambda_handler({"source": "aws.events"}, LocalLambdaContext("ReconcileFunction"))

    def table(self) -> Any:
        return boto3.resource("dynamodb").Table(self.stack.jobs_table)

    def all_jobs(self) -> list[Job]:
        return [Job.from_item(item) for item in self.table().scan()["Items"]]

    def job_for(self, key: str) -> Job:
        jobs = [job for job in self.all_jobs() if job.targetKey == key]
        assert len(jobs) == 1, f"expected one job for {key!r}, found {len(jobs)}"
        return jobs[0]

    def job(self, job_id: str) -> Job:
        item = self.table().get_item(Key={"jobId": job_id}, ConsistentRead=True)["Item"]
        return Job.from_item(item)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=prefix).get("Contents", [])]

    def published_events(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        events = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.observer_queue_url, MaxNumberOfMessages=10).get("Messages")
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.observer_queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def harness(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    # The emulator in manual mode: each test drives the task and its callbacks itself.
    result = png((200, 120, 40), size=(64, 48))
    upstream = SwapEmulator(EmulatorConfig(api_key=API_KEY, auto_run=False, engine=lambda _s, _t: result)).start()
    upstream.result_image = result
    api = HttpApiServer(
        [Route("POST", "/callbacks/{jobId}", callback_handler.lambda_handler, "CallbackFunction")]
    ).start()
    stack = provision(
        endpoint_url=moto_endpoint,
        region=REGION,
        callback_base_url=api.url,
        parameter_overrides={"UpstreamBaseUrl": upstream.url, "MaxImageBytes": 200_000},
        api_key=API_KEY,
        stack_name=f"it{next(_stacks)}",
    )
    merged: dict[str, str] = {}
    for env in stack.environments.values():
        merged.update(env)
    for name, value in merged.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    sqs = stack.client("sqs")
    observer = sqs.create_queue(QueueName=f"{stack.event_bus}-observer")["QueueUrl"]
    observer_arn = sqs.get_queue_attributes(QueueUrl=observer, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = stack.client("events")
    events.put_rule(Name="observe", EventBusName=stack.event_bus, EventPattern=json.dumps({"source": ["swapdrop"]}))
    events.put_targets(Rule="observe", EventBusName=stack.event_bus, Targets=[{"Id": "q", "Arn": observer_arn}])
    source = SqsEventSource(sqs, stack.queue_url, submit_handler.lambda_handler, "SubmitFunction")
    yield Harness(stack, upstream, api, source, observer)
    api.stop()
    upstream.stop()
    wiring.reset()


logging.getLogger("werkzeug").setLevel(logging.WARNING)
