"""Step Functions on the local stack: the example's own state machine (examples/step-functions)
runs in moto's Step Functions, which executes ASL when its `execute_state_machine` setting is on.

The execution puts its Swap Requested event (with `$$.Task.Token`) on a bus of this test's own, whose
rule hands it to a queue; the test plays the entrance and creates the job with POST /jobs and that
token. Swapdrop's finisher then answers the token over moto's HTTP API and the execution carries on:
SUCCESS → the copy step copies the result; REJECTED → the Catch fails the execution with the
status and the reason. Every answer is a real SendTaskSuccess/SendTaskFailure that moto's
execution accepts (a second one would be refused: the task is closed).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e.conftest import Client
from moto import moto_api
from swapdrop_local.auth import signed_request
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "examples/step-functions/statemachine.asl.json"
RESULT = jpeg((20, 120, 200), size=(64, 48))
FACE = jpeg((200, 40, 40))


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="sfn-secret-key",
        reconcile_interval=5.0,
        parameters={"ReconcileQuietSeconds": "2"},
        emulator={"step_delay": 0.1, "engine": lambda _source, _target: RESULT, "callback_workers": 1},
        submit_concurrency=1,
        # moto's ASL interpreter finds its server through MOTO_PORT and records to a file both read in the
        # server's process: this one, to point them at this stack.
        moto_in_process=True,
    )
    with RunningStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto executing state machines, the example's ASL as a state machine, a bus whose rule hands
    the Swap Requested events to a queue the test reads, and moto recording every request it serves
    (the functions' SendTaskSuccess/SendTaskFailure calls among them)."""
    info = stack.info()
    endpoint, region = info["endpoint_url"], info["region"]
    port = endpoint.rsplit(":", 1)[1]
    recording = tmp_path_factory.mktemp("moto") / "recording.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        # moto's ASL interpreter calls AWS (PutEvents, S3) on localhost:$MOTO_PORT: this stack's server.
        patch.setenv("MOTO_PORT", port)
        # The server runs in this process; its recorder's file is read from the environment at import.
        patch.setattr(moto_api.recorder, "_location", str(recording))
        answer = requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        assert answer.status_code == 201, answer.text
        assert requests.post(f"{endpoint}/moto-api/recorder/start-recording", timeout=10).ok
        try:
            yield _pipeline(endpoint, region) | {"recording": recording}
        finally:
            requests.post(f"{endpoint}/moto-api/recorder/stop-recording", timeout=10)
            requests.post(
                f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": False}}, timeout=10
            )


def answers_to(pipeline: dict[str, Any], token: str) -> list[tuple[str, dict[str, Any]]]:
    """The SendTaskSuccess/SendTaskFailure requests moto served for `token`, as sent."""
    found = []
    for line in pipeline["recording"].read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        target = {k.lower(): v for k, v in entry["headers"].items()}.get("x-amz-target", "")
        if target in ("AWSStepFunctions.SendTaskSuccess", "AWSStepFunctions.SendTaskFailure"):
            raw = entry["body"]
            body = json.loads(base64.b64decode(raw) if entry["body_encoded"] else raw)
            if body["taskToken"] == token:
                found.append((target.rsplit(".", 1)[1], body))
    return found


def _pipeline(endpoint: str, region: str) -> dict[str, Any]:
    events, sqs, sfn = (local_client(name, region, endpoint) for name in ("events", "sqs", "stepfunctions"))
    suffix = uuid.uuid4().hex[:8]
    bus = events.create_event_bus(Name=f"pipeline-{suffix}")["EventBusArn"].rsplit("/", 1)[1]
    queue_url = sqs.create_queue(QueueName=f"swap-requests-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="swap-requested", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["Swap Requested"]})
    )
    events.put_targets(Rule="swap-requested", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    definition = ASL.read_text(encoding="utf-8")
    for name, value in {"SwapdropEventBusName": bus, "ApprovedPrefix": "approved/"}.items():
        definition = definition.replace("${" + name + "}", value)  # what SAM's DefinitionSubstitutions do
    machine = sfn.create_state_machine(
        name=f"swap-pipeline-{suffix}", definition=definition, roleArn="arn:aws:iam::123456789012:role/pipeline"
    )["stateMachineArn"]
    return {"sfn": sfn, "sqs": sqs, "queue_url": queue_url, "machine": machine, "bus": bus}


def execution_name() -> str:
    """Named: moto leaves $$.Execution.Name null for an execution started without a name (AWS makes one)."""
    return f"swap-{uuid.uuid4().hex[:12]}"


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def swap_requested(pipeline: dict[str, Any]) -> dict[str, Any]:
    sqs, url = pipeline["sqs"], pipeline["queue_url"]

    def receive() -> dict[str, Any] | None:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages")
        if not messages:
            return None
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return json.loads(messages[0]["Body"])

    return until(receive, 30, "the execution's Swap Requested event")


def ended_execution(pipeline: dict[str, Any], arn: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        described = pipeline["sfn"].describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    return until(ended, 90, "the execution to end")


def ask_swapdrop(stack: RunningStack, event: dict[str, Any]) -> str:
    """What the entrance does with a Swap Requested event, done here through POST /jobs."""
    detail = event["detail"]
    assert event["detail-type"] == "Swap Requested" and event["source"] == "com.example.photo-pipeline"
    body = {key: detail[key] for key in ("face", "target", "metadata", "taskToken")}
    answer = signed_request(
        stack.info(), "POST", "/jobs", json_body=body, headers={"Idempotency-Key": detail["idempotencyKey"]}
    )
    assert answer.status_code == 202, answer.text
    view = answer.json()
    assert "taskToken" not in view and detail["taskToken"] not in answer.text, "the token is never shown"
    return view["jobId"]


def record(client: Client, job_id: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    item = client.dynamodb.get_item(
        TableName=client.info["jobs_table"], Key={"jobId": {"S": job_id}}, ConsistentRead=True
    )["Item"]
    return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}


def settled(client: Client, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        item = record(client, job_id)
        sfn = item.get("deliveries", {}).get("sfn", {})
        return item if sfn.get("state") in ("done", "failed") else None

    return until(done, 90, f"job {job_id}'s task token answered")


def test_a_successful_swap_answers_the_token_and_the_workflow_copies_the_result(
    stack: RunningStack, pipeline: dict[str, Any]
) -> None:
    client = Client(stack.info())
    face = f"ada-{uuid.uuid4().hex[:6]}"
    client.put(f"faces/{face}.jpg", FACE)
    target = f"incoming/{uuid.uuid4().hex}.jpg"
    client.put(target, jpeg((10, 200, 30)))
    started = pipeline["sfn"].start_execution(
        stateMachineArn=pipeline["machine"], name=execution_name(), input=json.dumps({"face": face, "s3Key": target})
    )
    event = swap_requested(pipeline)
    assert event["detail"]["target"] == {"s3Key": target} and event["detail"]["taskToken"]
    job_id = ask_swapdrop(stack, event)

    item = settled(client, job_id)
    assert item["status"] == "SUCCESS" and item["deliveries"]["sfn"]["state"] == "done"
    assert int(item["deliveries"]["sfn"]["attempts"]) == 1 and "lastError" not in item["deliveries"]["sfn"]
    execution = ended_execution(pipeline, started["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    result_key = f"results/{face}/jobs/{job_id}.jpg"
    assert output == {
        "jobId": job_id,
        "bucket": stack.info()["bucket"],
        "resultKey": result_key,
        "approvedKey": f"approved/{result_key}",
    }
    assert client.read(f"approved/{result_key}") == client.read(result_key) == RESULT, "the workflow's copy step ran"
    history = pipeline["sfn"].get_execution_history(executionArn=started["executionArn"])["events"]
    succeeded = [e for e in history if e["type"] == "TaskSucceeded"]
    swap = json.loads(succeeded[0]["taskSucceededEventDetails"]["output"])  # the token's answer, as sent
    assert (swap["jobId"], swap["status"], swap["resultKey"], swap["bucket"]) == (
        job_id,
        "SUCCESS",
        result_key,
        stack.info()["bucket"],
    )
    assert swap["metadata"] == {"execution": event["detail"]["metadata"]["execution"]} and "taskToken" not in swap
    [(kind, sent)] = answers_to(pipeline, event["detail"]["taskToken"])
    assert kind == "SendTaskSuccess" and json.loads(sent["output"]) == swap, "answered once, with what the task got"


def test_a_rejected_swap_fails_the_workflow_with_the_status_and_the_reason(
    stack: RunningStack, pipeline: dict[str, Any]
) -> None:
    client = Client(stack.info())
    target = f"incoming/{uuid.uuid4().hex}.jpg"
    client.put(target, jpeg((90, 20, 130)))
    started = pipeline["sfn"].start_execution(
        stateMachineArn=pipeline["machine"],
        name=execution_name(),
        input=json.dumps({"face": "nobody-has-this-face", "s3Key": target}),
    )
    event = swap_requested(pipeline)
    job_id = ask_swapdrop(stack, event)
    item = settled(client, job_id)
    assert item["status"] == "REJECTED" and item["deliveries"]["sfn"]["state"] == "done", item
    execution = ended_execution(pipeline, started["executionArn"])
    assert execution["status"] == "FAILED" and execution.get("error") == "REJECTED", execution
    # moto 5.2.5's SendTaskFailure handler drops `cause` (the execution's cause is None there), so
    # the cause is checked on the request moto recorded: what AWS would pass on to the Catch.
    [(kind, sent)] = answers_to(pipeline, event["detail"]["taskToken"])
    assert (kind, sent["error"], sent["cause"]) == ("SendTaskFailure", "REJECTED", item["failReason"])


def test_a_token_step_functions_does_not_know_is_given_up_at_once_with_why(
    stack: RunningStack, pipeline: dict[str, Any]
) -> None:
    """moto answers InvalidToken (it cannot be made to say TaskTimedOut: a stopped execution there still
    takes its token). The job succeeds; the answer is tried once, not retried, and the job says why."""
    client = Client(stack.info())
    face = f"bea-{uuid.uuid4().hex[:6]}"
    client.put(f"faces/{face}.jpg", FACE)
    target = f"incoming/{uuid.uuid4().hex}.jpg"
    client.put(target, jpeg((200, 200, 30)))
    token = f"no-such-task-{uuid.uuid4().hex}"
    body = {"face": face, "target": {"s3Key": target}, "taskToken": token}
    answer = signed_request(stack.info(), "POST", "/jobs", json_body=body)
    assert answer.status_code == 202, answer.text
    item = settled(client, answer.json()["jobId"])
    assert item["status"] == "SUCCESS" and item["deliveries"]["sfn"]["state"] == "failed", item
    assert int(item["deliveries"]["sfn"]["attempts"]) == 1, "given up at once, not retried"
    assert "InvalidToken" in item["deliveries"]["sfn"]["lastError"], item["deliveries"]["sfn"]
    assert token not in json.dumps(item["deliveries"], default=str)
    stack.reconcile_now()  # the safety net finds nothing left to answer
    assert [kind for kind, _ in answers_to(pipeline, token)] == ["SendTaskSuccess"]
