"""`swapdrop dlq` as a person runs it, against the local stack: dead-lettered messages listed with
their jobs (without consuming them), then redriven and processed."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swapdrop.job_store import DynamoJobStore
from swapdrop.jobs import Job, JobStatus, iso
from swapdrop.layout import api_result_base
from swapdrop_local.provision import local_client, local_table

from e2e.conftest import Client, CliStack, run_cli


def dlq_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def pending_job(client: Client, face: str, target_key: str) -> str:
    """A PENDING jobs-API job whose {"jobId"} message never reached the submit queue (it is in the DLQ)."""
    info = client.info
    now = datetime.now(UTC)
    job_id = uuid.uuid4().hex
    job = Job(
        jobId=job_id,
        status=JobStatus.PENDING,
        bucket=info["bucket"],
        targetKey=target_key,
        createdAt=iso(now),
        updatedAt=iso(now),
        face=face,
        origin="api",
        resultBase=api_result_base(face, job_id),
    )
    assert DynamoJobStore(local_table(info["jobs_table"], info["region"], info["endpoint_url"]), "OpenJobs").create(job)
    return job_id


def test_dlq_lists_redrives_and_the_job_is_processed(cli_stack: CliStack, fixture_photos: dict[str, bytes]) -> None:
    info = cli_stack.info
    client = Client(info)
    face, target = sorted(fixture_photos)[:2]
    client.put("faces/dlqface.jpg", fixture_photos[face])
    client.put("dlq-e2e/target.jpg", fixture_photos[target])  # no notification on this prefix: nothing starts a job
    job_id = pending_job(client, "dlqface", "dlq-e2e/target.jpg")
    sqs = local_client("sqs", info["region"], info["endpoint_url"])
    dlq_url = info["dlq_url"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"jobId": job_id}))
    sqs.send_message(QueueUrl=dlq_url, MessageBody="{not json")

    listed = run_cli("dlq", "--json", stack=cli_stack)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [row for row in rows if row["jobId"] == job_id]
    assert len(mine) == 1, rows
    assert mine[0]["queue"] == "Submit" and mine[0]["status"] == "PENDING" and mine[0]["kind"] == "job message"
    assert mine[0]["receiveCount"] == 1
    unknown = [row for row in rows if row["jobId"] is None]
    assert [row["note"] for row in unknown] == ["not JSON (9 characters)"]
    assert dlq_depth(sqs, dlq_url) == 2  # listing consumed nothing

    table = run_cli("dlq", stack=cli_stack)
    assert table.returncode == 0 and job_id in table.stdout and "unknown job" in table.stdout
    assert "swapdrop dlq --redrive" in table.stderr

    redriven = run_cli("dlq", "--redrive", "--json", stack=cli_stack)
    assert redriven.returncode == 0, redriven.stderr
    counts = {row["queue"]: row for row in map(json.loads, redriven.stdout.splitlines())}
    assert counts["Submit"]["moved"] == 2 and counts["Submit"]["failed"] == 0
    assert counts["Submit"]["to"] == info["queue_url"]

    job = client.wait_for("dlq-e2e/target.jpg", timeout=60)
    assert job.jobId == job_id and job.status is JobStatus.SUCCESS, job.failReason
    deadline = time.monotonic() + 30
    while dlq_depth(sqs, dlq_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dlq_depth(sqs, dlq_url) == 0  # the malformed body was dropped by the submitter, not dead-lettered again

    empty = run_cli("dlq", stack=cli_stack)
    assert (empty.returncode, empty.stdout) == (0, "")
    assert "no dead-lettered messages" in empty.stderr


def test_an_s3_event_in_the_dlq_names_the_job_its_upload_made(
    cli_stack: CliStack, fixture_photos: dict[str, bytes]
) -> None:
    """The job id dlq derives from an S3 event is the one the submitter gave the real upload (moto's events,
    like this one, carry neither versionId nor sequencer: the eTag@eventTime identity)."""
    info = cli_stack.info
    client = Client(info)
    face, target = sorted(fixture_photos)[:2]
    client.put("faces/dlqface.jpg", fixture_photos[face])
    key = "inbox/dlqface/from s3+event.jpg"
    client.put(key, fixture_photos[target])
    job = client.wait_for(key, timeout=60)
    etag = client.s3.head_object(Bucket=info["bucket"], Key=key)["ETag"].strip('"')
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": job.targetEventTime,
                "s3": {
                    "bucket": {"name": info["bucket"]},
                    "object": {"key": "inbox/dlqface/from+s3%2Bevent.jpg", "size": 1, "eTag": etag},
                },
            }
        ]
    }
    sqs = local_client("sqs", info["region"], info["endpoint_url"])
    sqs.send_message(QueueUrl=info["dlq_url"], MessageBody=json.dumps(event))
    listed = run_cli("dlq", "--json", "--queue", "submit", stack=cli_stack)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(row["jobId"], row["kind"], row["status"]) for row in rows] == [(job.jobId, "S3 event", "SUCCESS")]
    redriven = run_cli("dlq", "--redrive", "--queue", "submit", "--json", stack=cli_stack)
    assert json.loads(redriven.stdout)["moved"] == 1  # a duplicate of the upload's event: the job stays one job
    assert [j.jobId for j in client.jobs() if j.targetKey == key] == [job.jobId]


def test_an_unknown_queue_lists_the_stacks_dead_letter_queues(cli_stack: CliStack) -> None:
    result = run_cli("dlq", "--queue", "nope", "--json", stack=cli_stack)
    assert result.returncode == 2
    error = json.loads(result.stdout.splitlines()[-1])["error"]
    assert error["message"] == "no dead-letter queue 'nope': the stack has submit, swaprequest, webhook"


def test_no_local_stack_is_exit_3(tmp_path: Path) -> None:
    for command in (["dlq"], ["doctor"], ["logs"]):
        result = run_cli(*command, "--local", str(tmp_path / "local.json"))
        assert result.returncode == 3, command
        assert f"no local stack at {tmp_path / 'local.json'}" in result.stderr
