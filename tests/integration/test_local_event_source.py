"""The local stand-in for Lambda's SQS event source, on moto's server: partial batch
failures keep only the failed messages, and a message that keeps failing is redriven
to the dead-letter queue after maxReceiveCount receives (as on AWS)."""

from __future__ import annotations

import json
import uuid

import boto3
from swapdrop_local.sqs_source import SqsEventSource


def _queues(endpoint: str) -> tuple[object, str, str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    name = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"dlq-{name}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"q-{name}",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    return sqs, queue, dlq


def test_partial_failures_keep_only_the_failed_messages(moto_endpoint: str, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    sqs, queue, _ = _queues(moto_endpoint)
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    seen: list[list[str]] = []

    def handler(event: dict, _context: object) -> dict:
        seen.append([r["body"] for r in event["Records"]])
        assert all(r["eventSource"] == "aws:sqs" and r["receiptHandle"] for r in event["Records"])
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        }

    source = SqsEventSource(sqs, queue, handler, "SubmitFunction", batch_size=10)
    result = source.poll_once()
    assert (result.received, result.failed) == (3, 1)
    assert sorted(seen[0]) == ["bad", "ok-1", "ok-2"]
    again = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["bad"]


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(moto_endpoint: str, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    sqs, queue, dlq = _queues(moto_endpoint)
    sqs.send_message(QueueUrl=queue, MessageBody="poison")

    def crash(event: dict, _context: object) -> dict:
        raise RuntimeError("handler crashed")

    source = SqsEventSource(sqs, queue, crash, "SubmitFunction")
    assert source.poll_once().failed == 1
    assert source.poll_once().failed == 1
    assert source.poll_once().received == 0, "after maxReceiveCount receives the message is gone from the queue"
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]


def test_a_failed_invocation_is_logged_and_its_messages_come_back(moto_endpoint: str, monkeypatch, caplog) -> None:
    from swapdrop_local.functions import FunctionError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    caplog.set_level("WARNING", logger="swapdrop.local")
    sqs, queue, _ = _queues(moto_endpoint)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    def died(event: dict, _context: object) -> dict:
        raise FunctionError("Runtime.ExitError", "RequestId: r Error: Runtime exited with error: signal: killed")

    source = SqsEventSource(sqs, queue, died, "SubmitFunction", batch_size=10)
    assert source.poll_once().failed == 2
    assert "SubmitFunction invocation failed (Runtime.ExitError): 2 message(s) stay in flight" in caplog.text
    again = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == ["a", "b"], "nothing was deleted"
