"""`swapdrop dlq`: every body shape names its job as the pipeline would (the S3 derivation is checked
against the submitter's own code), hostile bodies never crash it, listing consumes nothing, and a
redrive deletes a message only after its send succeeded."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from swapdrop.s3_events import uploads_from_s3_event
from swapdrop_cli.commands import dlq
from swapdrop_cli.commands.dlq import JobLookup, Reference, describe, peek, read_body, redrive, send_arguments
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.output import Output

JOB = "0123456789abcdef0123456789abcdef"
BUCKET = "swapdrop-media"


def s3_event(key: str, **obj: Any) -> dict:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-11-30T07:00:00.123Z",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 10, "eTag": "abc", **obj}},
            }
        ]
    }


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj", [{"sequencer": "0055AED6DCD90281E5"}, {"versionId": "v1", "sequencer": "00AA"}, {}], ids=str
)
def test_s3_inbox_events_name_the_job_the_submitter_makes(obj: dict) -> None:
    event = s3_event("inbox/alice/trip+to/beach%2B1.jpg", **obj)
    expected = uploads_from_s3_event(event)[0].job_id
    reference = read_body(json.dumps(event))
    assert reference == Reference("S3 event", (expected,), note="inbox/alice/trip to/beach+1.jpg")


def test_s3_upload_events_name_the_job_in_their_key() -> None:
    reference = read_body(json.dumps(s3_event(f"uploads/{JOB}/target.png", sequencer="01")))
    assert reference.job_ids == (JOB,)


def test_s3_events_other_than_created_name_no_job() -> None:
    event = s3_event("inbox/a/b.jpg", sequencer="01")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert read_body(json.dumps(event)).job_ids == ()


def test_job_messages_webhooks_test_events_and_eventbridge() -> None:
    assert read_body(json.dumps({"jobId": JOB})) == Reference("job message", (JOB,))
    webhook = {"jobId": JOB, "webhookId": "w", "type": "completed", "at": "2026-11-30T07:00:00Z"}
    assert read_body(json.dumps(webhook)) == Reference("webhook", (JOB,), note="completed webhook")
    assert read_body(json.dumps({"Event": "s3:TestEvent"})).kind == "S3 test event"
    finished = {"id": "e1", "detail-type": "Swap Job Finished", "source": "swapdrop", "detail": {"jobId": JOB}}
    assert read_body(json.dumps(finished)) == Reference("event: Swap Job Finished", (JOB,))
    requested = {"id": "e2", "detail-type": "Swap Requested", "source": "acme.app", "detail": {"face": "alice"}}
    assert read_body(json.dumps(requested)) == Reference(
        "event: Swap Requested", note="from acme.app, idempotencyKey e2"
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "not json",
        "\x1b[31mred",
        "[1, 2]",
        "null",
        '"a string"',
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"a": "x" * 400_000}),
        '{"jobId": "../../etc"}',
        '{"jobId": 12}',
        '{"Records": "nope"}',
        '{"Records": [null, 1, {"eventName": "ObjectCreated:Put"}, {"eventName": "ObjectCreated:Put", "s3": 5}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": 1}, "object": {"key": []}}}]}',
        '{"detail-type": "x", "detail": {"jobId": ["a"]}}',
        '{"detail-type": {"a": 1}, "detail": {}}',
        '{"x": 1}',
    ],
)
def test_hostile_bodies_give_an_unknown_job_not_a_crash(body: Any) -> None:
    reference = read_body(body)
    assert reference.job_ids == ()
    row = describe("Submit", {"MessageId": "m", "Body": body}, JobLookup(None, None))
    assert row["jobId"] is None and row["status"] is None
    assert len(json.dumps(row)) < 2_000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "Records": json_values,
        "jobId": json_values,
        "detail": json_values,
        "detail-type": json_values,
        "webhookId": json_values,
        "Event": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, shaped))
def test_any_json_body_reads_without_error(payload: Any) -> None:
    reference = read_body(json.dumps(payload))
    assert all(len(job) == 32 for job in reference.job_ids)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_body_reads_without_error(body: str) -> None:
    read_body(body)


def test_control_characters_in_keys_are_shown_escaped() -> None:
    reference = read_body(json.dumps(s3_event("inbox/a/\x1b[2Jx.jpg", sequencer="01")))
    assert "\x1b" not in reference.note and "\\x1b" in reference.note


# --- jobs -----------------------------------------------------------------------------------------


def test_job_status_and_reason_come_from_the_table_once_per_job() -> None:
    calls = []

    def get_item(**kwargs: Any) -> dict:
        calls.append(kwargs)
        return {"Item": {"status": {"S": "FAILURE"}, "failReason": {"S": "the swap API refused the key"}}}

    jobs = JobLookup(get_item, "jobs")
    message = {"MessageId": "m1", "Body": json.dumps({"jobId": JOB}), "Attributes": {"ApproximateReceiveCount": "5"}}
    row = describe("Submit", message, jobs)
    describe("Submit", message, jobs)
    assert len(calls) == 1 and calls[0]["Key"] == {"jobId": {"S": JOB}}
    assert row["status"] == "FAILURE" and row["failReason"] == "the swap API refused the key"
    assert row["receiveCount"] == 5


def test_unknown_jobs_and_unreadable_tables() -> None:
    assert JobLookup(lambda **_: {}, "jobs")(JOB)["status"] == "NO SUCH JOB"

    def denied(**_: Any) -> dict:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem")

    looked = JobLookup(denied, "jobs")(JOB)
    assert looked["status"] is None and "AccessDeniedException" in looked["why"]


# --- queues ---------------------------------------------------------------------------------------


@dataclass
class Message:
    id: str
    body: str
    attributes: dict = field(default_factory=dict)
    visible: bool = True
    receives: int = 0


class FakeSqs:
    """Enough of SQS: hidden-on-receive, visibility, send, delete; optional failing sends."""

    def __init__(self, queues: dict[str, list[Message]], fail_sends: int = 0) -> None:
        self.queues = queues
        self.fail_sends = fail_sends
        self.sent: list[tuple[str, dict]] = []
        self.log: list[str] = []
        self._handles: dict[str, tuple[str, Message]] = {}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **kwargs: Any) -> dict:
        out = []
        for message in self.queues[QueueUrl]:
            if message.visible and len(out) < MaxNumberOfMessages:
                message.visible = False
                message.receives += 1
                handle = f"{message.id}-{message.receives}"
                self._handles[handle] = (QueueUrl, message)
                out.append(
                    {
                        "MessageId": message.id,
                        "ReceiptHandle": handle,
                        "Body": message.body,
                        "Attributes": {"ApproximateReceiveCount": str(message.receives), "SentTimestamp": "0"},
                        "MessageAttributes": message.attributes,
                    }
                )
        return {"Messages": out} if out else {}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        for entry in Entries:
            assert entry["VisibilityTimeout"] == 0
            self._handles[entry["ReceiptHandle"]][1].visible = True
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def send_message(self, QueueUrl: str, **kwargs: Any) -> dict:
        self.log.append(f"send {kwargs['MessageBody']}")
        if self.fail_sends:
            self.fail_sends -= 1
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")
        self.sent.append((QueueUrl, kwargs))
        self.queues.setdefault(QueueUrl, []).append(Message(f"new-{len(self.sent)}", kwargs["MessageBody"]))
        return {"MessageId": "x"}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> dict:
        url, message = self._handles[ReceiptHandle]
        self.log.append(f"delete {message.body}")
        self.queues[url].remove(message)
        return {}


def test_peek_lists_everything_and_consumes_nothing() -> None:
    messages = [Message(str(i), json.dumps({"jobId": f"{i:032x}"})) for i in range(25)]
    sqs = FakeSqs({"dlq": messages})
    listed = peek(sqs, "dlq", limit=100)
    assert [m["MessageId"] for m in listed] == [str(i) for i in range(25)]
    assert all(m.visible for m in messages)
    assert sqs.sent == []


def test_peek_stops_at_the_limit_and_still_releases() -> None:
    messages = [Message(str(i), "x") for i in range(25)]
    listed = peek(FakeSqs({"dlq": messages}), "dlq", limit=12)
    assert len(listed) == 12 and all(m.visible for m in messages)


def test_redrive_sends_before_it_deletes_with_the_same_body_and_attributes() -> None:
    attributes = {"origin": {"DataType": "String", "StringValue": "s3", "StringListValues": [], "BinaryListValues": []}}
    sqs = FakeSqs({"dlq": [Message("1", "a", attributes), Message("2", "b")], "src": []})
    result = redrive(sqs, "Submit", "dlq", "src")
    assert (result.moved, result.failed) == (2, 0)
    assert sqs.log == ["send a", "delete a", "send b", "delete b"]
    assert sqs.sent[0] == (
        "src",
        {"MessageBody": "a", "MessageAttributes": {"origin": {"DataType": "String", "StringValue": "s3"}}},
    )
    assert sqs.queues["dlq"] == []


def test_a_failed_send_keeps_the_message_in_the_dlq() -> None:
    sqs = FakeSqs({"dlq": [Message("1", "a"), Message("2", "b")], "src": []}, fail_sends=1)
    result = redrive(sqs, "Submit", "dlq", "src")
    assert (result.moved, result.failed, result.error_code) == (1, 1, "AccessDenied")
    assert [m.body for m in sqs.queues["dlq"]] == ["a"]
    assert "delete a" not in sqs.log


def test_send_arguments_keep_fifo_group_and_dedup_ids() -> None:
    message = {"Body": "x", "Attributes": {"MessageGroupId": "g", "MessageDeduplicationId": "d"}}
    assert send_arguments(message) == {"MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d"}


# --- the command ----------------------------------------------------------------------------------


class FakeTarget:
    description = "stack 'swapdrop'"

    def __init__(self, outputs: dict[str, str], clients: dict[str, Any]) -> None:
        self.outputs, self.clients = outputs, clients

    def pairs(self, suffix: str) -> dict[str, str]:
        return {k[: -len(suffix)]: v for k, v in self.outputs.items() if k.endswith(suffix)}

    def optional_output(self, key: str) -> str | None:
        return self.outputs.get(key)

    def client(self, service: str) -> Any:
        return self.clients[service]


class FakeDynamo:
    def get_item(self, **kwargs: Any) -> dict:
        return {"Item": {"status": {"S": "FAILURE"}, "failReason": {"S": "boom"}}}


OUTPUTS = {
    "SubmitQueueUrl": "src",
    "SubmitDeadLetterQueueUrl": "dlq",
    "WebhookQueueUrl": "wsrc",
    "WebhookDeadLetterQueueUrl": "wdlq",
    "JobsTableName": "jobs",
}


def run_dlq(argv: list[str], sqs: FakeSqs, json_mode: bool = False) -> tuple[int, str, str]:
    from swapdrop_cli.app import build_parser

    args = build_parser().parse_args(["dlq", *argv])
    stdout, stderr = io.StringIO(), io.StringIO()
    ctx = type("Ctx", (), {})()
    ctx.target = FakeTarget(OUTPUTS, {"sqs": sqs, "dynamodb": FakeDynamo()})
    ctx.output = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    code = args.func(args, ctx)
    return code, stdout.getvalue(), stderr.getvalue()


def test_dlq_json_lines_name_each_job_and_exit_zero() -> None:
    sqs = FakeSqs({"dlq": [Message("1", json.dumps({"jobId": JOB})), Message("2", "garbage")], "wdlq": []})
    code, stdout, _ = run_dlq([], sqs, json_mode=True)
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert code == ExitCode.OK
    assert [(r["queue"], r["jobId"], r["status"], r["failReason"]) for r in rows] == [
        ("Submit", JOB, "FAILURE", "boom"),
        ("Submit", None, None, None),
    ]
    assert rows[1]["note"] == "not JSON (7 characters)"


def test_dlq_table_says_unknown_job() -> None:
    sqs = FakeSqs({"dlq": [Message("2", "garbage")], "wdlq": []})
    code, stdout, stderr = run_dlq([], sqs)
    assert code == 0 and "unknown job" in stdout and "swapdrop dlq --redrive" in stderr


def test_dlq_empty_says_so_on_stderr() -> None:
    code, stdout, stderr = run_dlq([], FakeSqs({"dlq": [], "wdlq": []}))
    assert (code, stdout) == (0, "") and "no dead-lettered messages in Submit, Webhook" in stderr


def test_dlq_queue_filter_and_unknown_queue() -> None:
    sqs = FakeSqs({"dlq": [Message("1", "x")], "wdlq": [Message("2", "y")]})
    _, stdout, _ = run_dlq(["--queue", "WEBHOOK"], sqs, json_mode=True)
    assert [json.loads(line)["queue"] for line in stdout.splitlines()] == ["Webhook"]
    with pytest.raises(CliError) as raised:
        run_dlq(["--queue", "nope"], sqs)
    assert raised.value.exit_code == ExitCode.USAGE and "submit, webhook" in raised.value.message


def test_dlq_redrive_reports_counts_and_a_failure_is_an_error_with_nothing_lost() -> None:
    sqs = FakeSqs({"dlq": [Message("1", "a")], "wdlq": [], "src": [], "wsrc": []})
    code, stdout, _ = run_dlq(["--redrive"], sqs, json_mode=True)
    assert code == 0
    assert [json.loads(line) for line in stdout.splitlines()] == [
        {"queue": "Submit", "moved": 1, "failed": 0, "to": "src"},
        {"queue": "Webhook", "moved": 0, "failed": 0, "to": "wsrc"},
    ]
    failing = FakeSqs({"dlq": [Message("1", "a")], "wdlq": [], "src": [], "wsrc": []}, fail_sends=5)
    with pytest.raises(CliError) as raised:
        run_dlq(["--redrive"], failing)
    assert raised.value.exit_code == ExitCode.AUTH
    assert [m.body for m in failing.queues["dlq"]] == ["a"]


def test_dlq_without_dlq_outputs_is_unreachable() -> None:
    target = FakeTarget({}, {})
    with pytest.raises(CliError) as raised:
        dlq.dead_letter_queues(target, None)
    assert raised.value.exit_code == ExitCode.UNREACHABLE
