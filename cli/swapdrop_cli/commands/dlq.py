"""`swapdrop dlq [--redrive]`: what is in the dead-letter queues, which job each message belongs to and
why it died; after the fix, `--redrive` moves them back to the queue they came from.

Listing never consumes: messages are received (hidden for a moment) and made visible again at once.
Redriving sends each message to its source queue with the same body and attributes and deletes it
from the DLQ only after the send succeeded, so an interrupted redrive loses nothing (at worst a
message is in both queues, and the pipeline is idempotent per job).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from swapdrop.layout import decode_event_key, job_id_for, job_id_of_upload, printable

from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.timestamps import parse_utc

SUFFIX = "DeadLetterQueueUrl"
MAX_BODY_CHARS = 300_000
"""SQS holds at most 256 KiB; anything longer is not one of ours and is not parsed."""
MAX_RECORDS = 100
PEEK_VISIBILITY_SECONDS = 30
"""How long a listed message is hidden before it is released again (released at once, normally)."""
REDRIVE_VISIBILITY_SECONDS = 120
"""A message being moved stays hidden this long: a failed send leaves it in the DLQ, back after this."""
DEFAULT_LIMIT = 100
SHOWN_CHARS = 120
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")

EXAMPLES = """\
Examples:
  swapdrop dlq                           list every dead-letter queue's messages (nothing is consumed)
  swapdrop dlq --queue submit            only the submit queue's DLQ
  swapdrop dlq --json | jq -r .jobId     the jobs, one per line
  swapdrop dlq --redrive                 after the fix: move them all back to their source queues
Each message shows the job it belongs to (from its body: a jobs-API message, an S3 upload event, an
EventBridge event or a webhook), the job's status and failReason, and how often it was received.
exit status: 0 whether or not there are messages; 3/4 when a queue cannot be read or written."""


# --- what a message body says about its job -------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What a dead-lettered body is and which job(s) it names ([] when it names none we can tell)."""

    kind: str
    job_ids: tuple[str, ...] = ()
    note: str = ""


def read_body(body: Any) -> Reference:
    """Any body at all (not JSON, huge, deeply nested, missing fields) gives a Reference, never an error."""
    if not isinstance(body, str):
        return Reference("unknown", note="no body")
    if len(body) > MAX_BODY_CHARS:
        return Reference("unknown", note=f"a body of {len(body)} characters, not parsed")
    try:
        payload = json.loads(body)
    except RecursionError:
        return Reference("unknown", note="JSON nested too deeply")
    except ValueError:
        return Reference("unknown", note=f"not JSON ({len(body)} characters)")
    if not isinstance(payload, dict):
        return Reference("unknown", note=f"JSON {type(payload).__name__}, not an object")
    try:
        return _reference(payload)
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError):
        return Reference("unknown", note="an object of no known shape")


def _reference(payload: dict[str, Any]) -> Reference:
    if payload.get("Event") == "s3:TestEvent":
        return Reference("S3 test event", note="sent once when the notification was configured; drop it")
    if "Records" in payload:
        return _s3_event(payload["Records"])
    if isinstance(payload.get("detail"), dict) and "detail-type" in payload:
        return _eventbridge(payload)
    job_id = payload.get("jobId")
    if isinstance(job_id, str) and _JOB_ID.match(job_id):
        if "webhookId" in payload:
            kind = payload.get("type")
            return Reference("webhook", (job_id,), note=f"{_shown(kind)} webhook" if isinstance(kind, str) else "")
        return Reference("job message", (job_id,))
    if "jobId" in payload:
        return Reference("unknown", note="a jobId that is not a job id")
    return Reference("unknown", note="an object of no known shape")


def _s3_event(records: Any) -> Reference:
    if not isinstance(records, list):
        return Reference("unknown", note="an S3 event whose Records is not a list")
    job_ids: list[str] = []
    keys: list[str] = []
    for record in records[:MAX_RECORDS]:
        found = _s3_record(record)
        if found:
            job_ids.append(found[0])
            keys.append(found[1])
    if not job_ids:
        return Reference("S3 event", note="names no object this stack makes jobs for")
    return Reference("S3 event", tuple(job_ids), note=", ".join(_shown(k) for k in keys[:3]))


def _s3_record(record: Any) -> tuple[str, str] | None:
    """(job id, key) as the submitter derives them (swapdrop.submission.Upload.job_id), or None."""
    if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return None
    s3 = record.get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    raw_key = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        return None
    key = decode_event_key(raw_key)
    upload_job = job_id_of_upload(key)
    if upload_job:
        return upload_job, key
    identity = obj.get("versionId") or obj.get("sequencer") or _fallback_identity(obj, record.get("eventTime"))
    if not isinstance(identity, str) or not identity:
        return None
    return job_id_for(bucket, key, identity), key


def _fallback_identity(obj: Mapping[str, Any], event_time: Any) -> str | None:
    """The submitter's identity of an event with neither versionId nor sequencer: eTag@eventTime."""
    when = parse_utc(event_time) if isinstance(event_time, str) else None
    return f"{obj.get('eTag')}@{when.isoformat()}" if when else None


def _eventbridge(payload: dict[str, Any]) -> Reference:
    detail = payload["detail"]
    kind = f"event: {_shown(payload.get('detail-type'))}"
    job_id = detail.get("jobId")
    if isinstance(job_id, str) and _JOB_ID.match(job_id):
        return Reference(kind, (job_id,))
    key = detail.get("idempotencyKey") or payload.get("id")
    note = f"from {_shown(payload.get('source'))}" + (f", idempotencyKey {_shown(key)}" if key else "")
    return Reference(kind, note=note)


def _shown(value: Any) -> str:
    text = printable(str(value))
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


# --- the queues ---------------------------------------------------------------------------------


@dataclass
class Listed:
    queue: str
    total: int
    messages: list[dict[str, Any]] = field(default_factory=list)


def receive_all(sqs: Any, url: str, visibility: int, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of messages until the queue answers empty twice (the second time after a 1 s wait:
    short polls sample only some of SQS's servers) or `limit` messages were seen."""
    seen: set[str] = set()
    waited = False
    while len(seen) < limit:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1 if waited else 0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = [m for m in answer.get("Messages", []) if m.get("MessageId") not in seen]
        if not batch:
            if waited:
                return
            waited = True
            continue
        waited = False
        seen.update(m.get("MessageId", "") for m in batch)
        yield batch


def release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Make listed messages visible again at once."""
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, m in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    try:
        for batch in receive_all(sqs, url, PEEK_VISIBILITY_SECONDS, limit):
            messages.extend(batch)
    finally:
        release(sqs, url, messages)
    return messages


def send_arguments(message: Mapping[str, Any]) -> dict[str, Any]:
    """send_message's arguments that repeat `message`: body, message attributes, FIFO group and dedup id."""
    arguments: dict[str, Any] = {"MessageBody": message["Body"]}
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = {"DataType": value["DataType"]}
        for part in ("StringValue", "BinaryValue"):
            if part in value:
                kept[part] = value[part]
        attributes[name] = kept
    if attributes:
        arguments["MessageAttributes"] = attributes
    system = message.get("Attributes") or {}
    if system.get("MessageGroupId"):
        arguments["MessageGroupId"] = system["MessageGroupId"]
    if system.get("MessageDeduplicationId"):
        arguments["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return arguments


@dataclass
class Redriven:
    queue: str
    moved: int = 0
    failed: int = 0
    error: str | None = None
    error_code: str | None = None


def redrive(sqs: Any, queue: str, dlq_url: str, source_url: str) -> Redriven:
    """Move every message from the DLQ to its source: send, then delete (never the other way round)."""
    result = Redriven(queue)
    for batch in receive_all(sqs, dlq_url, REDRIVE_VISIBILITY_SECONDS, limit=1_000_000):
        for message in batch:
            try:
                sqs.send_message(QueueUrl=source_url, **send_arguments(message))
            except (ClientError, BotoCoreError) as error:
                result.failed += 1
                result.error, result.error_code = _error(error)
                continue
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            result.moved += 1
        if result.failed and not result.moved:
            break  # every send fails (a permission, a deleted queue): stop rather than go through them all
    return result


def _error(error: Exception) -> tuple[str, str]:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        return f"{code}: {error.response.get('Error', {}).get('Message', '')}", code
    return str(error), type(error).__name__


# --- jobs ---------------------------------------------------------------------------------------


class JobLookup:
    """Each job's status and failReason, read once from the jobs table."""

    def __init__(self, get_item: Callable[..., dict[str, Any]] | None, table: str | None) -> None:
        self._get_item, self._table = get_item, table
        self._seen: dict[str, dict[str, Any]] = {}

    def __call__(self, job_id: str) -> dict[str, Any]:
        if job_id not in self._seen:
            self._seen[job_id] = self._read(job_id)
        return self._seen[job_id]

    def _read(self, job_id: str) -> dict[str, Any]:
        if self._get_item is None or not self._table:
            return {"status": None, "why": "the stack has no JobsTableName output"}
        try:
            item = self._get_item(
                TableName=self._table,
                Key={"jobId": {"S": job_id}},
                ProjectionExpression="#s, failReason, lastError",
                ExpressionAttributeNames={"#s": "status"},
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            return {"status": None, "why": f"cannot read the job: {_error(error)[0][:200]}"}
        if not item:
            return {"status": "NO SUCH JOB", "why": "no job has this id"}
        status = item.get("status", {}).get("S")
        why = item.get("failReason", {}).get("S") or item.get("lastError", {}).get("S")
        return {"status": status, "why": _shown(why) if why else None}


def describe(queue: str, message: Mapping[str, Any], jobs: JobLookup) -> dict[str, Any]:
    """One message as a row: queue, message id, job(s), kind, job status and why, receive count, sent at."""
    reference = read_body(message.get("Body"))
    attributes = message.get("Attributes") or {}
    job_id = reference.job_ids[0] if reference.job_ids else None
    job = jobs(job_id) if job_id else {"status": None, "why": None}
    sent = attributes.get("SentTimestamp")
    return {
        "queue": queue,
        "messageId": message.get("MessageId"),
        "jobId": job_id,
        "jobIds": list(reference.job_ids),
        "kind": reference.kind,
        "status": job["status"],
        "failReason": job["why"],
        "receiveCount": _int(attributes.get("ApproximateReceiveCount")),
        "sentAt": _iso(sent),
        "note": reference.note or None,
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso(millis: Any) -> str | None:
    number = _int(millis)
    if number is None:
        return None
    return datetime.fromtimestamp(number / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the command --------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="list dead-lettered messages with their jobs and why; --redrive moves them back",
        epilog=EXAMPLES,
    )
    parser.add_argument("--redrive", action="store_true", help="move every message back to its source queue")
    parser.add_argument("--queue", metavar="NAME", help="only this DLQ (submit, swaprequest, webhook: any case)")
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list at most N messages per queue ({DEFAULT_LIMIT})",
    )
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1 to 10000, got {value}")
    return value


def dead_letter_queues(target: Any, wanted: str | None) -> dict[str, str]:
    queues = dict(sorted(target.pairs(SUFFIX).items()))
    if not queues:
        raise CliError(
            f"{target.description} has no dead-letter queue outputs (*{SUFFIX})",
            ExitCode.UNREACHABLE,
            hint="deploy the current template (sam build && sam deploy)",
        )
    if wanted is None:
        return queues
    chosen = {name: url for name, url in queues.items() if name.lower() == wanted.lower().replace("-", "")}
    if not chosen:
        raise CliError(
            f"no dead-letter queue '{printable(wanted)}': the stack has {', '.join(q.lower() for q in queues)}",
            ExitCode.USAGE,
        )
    return chosen


def run(args: argparse.Namespace, ctx: Any) -> int:
    target = ctx.target
    queues = dead_letter_queues(target, args.queue)
    sqs = target.client("sqs")
    if args.redrive:
        return _redrive_all(target, sqs, queues, ctx.output)
    table = target.optional_output("JobsTableName")
    jobs = JobLookup(target.client("dynamodb").get_item if table else None, table)
    rows = []
    for queue, url in queues.items():
        try:
            messages = peek(sqs, url, args.limit)
        except (ClientError, BotoCoreError) as error:
            raise _queue_error(error, queue) from None
        for message in messages:
            row = describe(queue, message, jobs)
            rows.append(row)
            ctx.output.emit(row)
        if len(messages) >= args.limit:
            ctx.output.note(f"{queue}: showing the first {args.limit} messages (--limit)")
    ctx.output.table(
        ["QUEUE", "JOB", "KIND", "STATUS", "WHY", "RECEIVES", "SENT"],
        [
            [
                r["queue"],
                (r["jobId"] or "unknown job") + (f" +{len(r['jobIds']) - 1}" if len(r["jobIds"]) > 1 else ""),
                r["kind"],
                r["status"] or "",
                r["failReason"] or r["note"] or "",
                r["receiveCount"] if r["receiveCount"] is not None else "",
                r["sentAt"] or "",
            ]
            for r in rows
        ],
        empty=f"no dead-lettered messages in {', '.join(queues)}",
    )
    if rows and not ctx.output.json_mode:
        ctx.output.note(f"{len(rows)} dead-lettered message(s): fix the cause, then swapdrop dlq --redrive")
    return ExitCode.OK


def _redrive_all(target: Any, sqs: Any, queues: dict[str, str], output: Any) -> int:
    failures: list[Redriven] = []
    for queue, url in queues.items():
        source = target.optional_output(f"{queue}QueueUrl")
        if not source:
            raise CliError(
                f"{target.description} has no {queue}QueueUrl output to move {queue}'s dead letters back to",
                ExitCode.UNREACHABLE,
                hint="deploy the current template (sam build && sam deploy)",
            )
        try:
            result = redrive(sqs, queue, url, source)
        except (ClientError, BotoCoreError) as error:
            raise _queue_error(error, queue) from None
        output.emit({"queue": queue, "moved": result.moved, "failed": result.failed, "to": source})
        output.line(f"{queue}: moved {result.moved} message(s) back to {queue}Queue")
        if result.failed:
            failures.append(result)
            output.line(f"{queue}: {result.failed} could not be sent ({result.error}); they stay in the DLQ")
    if failures:
        denied = any("AccessDenied" in (f.error_code or "") for f in failures)
        raise CliError(
            f"{sum(f.failed for f in failures)} message(s) could not be moved back",
            ExitCode.AUTH if denied else ExitCode.UNREACHABLE,
            hint="nothing was lost: they are still in the DLQ; run swapdrop dlq --redrive again after the fix",
        )
    return ExitCode.OK


def _queue_error(error: Exception, queue: str) -> CliError:
    message, code = _error(error)
    denied = "AccessDenied" in code or "Unrecognized" in code or "InvalidClientTokenId" in code
    return CliError(
        f"cannot read {queue}'s dead-letter queue: {message[:300]}",
        ExitCode.AUTH if denied else ExitCode.UNREACHABLE,
        hint="swapdrop dlq needs sqs:ReceiveMessage, ChangeMessageVisibility, SendMessage and DeleteMessage"
        if denied
        else None,
    )
