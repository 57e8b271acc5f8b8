"""`swapdrop status|jobs|cancel|retry|result`: see and steer jobs through the jobs API."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from swapdrop.layout import INBOX_PREFIX, job_id_for, job_id_of_upload, parse_inbox_key, printable

from swapdrop_cli.api import ApiError
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.timestamps import parse_utc

STATUSES = ("AWAITING_UPLOAD", "PENDING", "SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILURE", "REJECTED", "CANCELLED")
FAILED = frozenset({"FAILURE", "REJECTED", "CANCELLED"})
"""Terminal statuses that make status/result exit 1."""
TERMINAL = FAILED | {"SUCCESS"}
RETRIED_BY_FAILED = ("FAILURE", "REJECTED")
"""What `retry --failed` retries: cancelled jobs were stopped on purpose (retry them one by one)."""
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LIST_FOR_TARGET = 1000
"""How many of a face's newest jobs `status KEY` reads when the key's version names no job."""

STATUS_EXAMPLES = """\
Examples:
  swapdrop status 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617
  swapdrop status s3://my-bucket/inbox/alice/beach.jpg
  swapdrop status inbox/alice/beach.jpg --json

TARGET is a key in the stack's bucket (s3://BUCKET/KEY or just KEY): the job of its current
version is shown (the newest job for that key if the version has none).
Exit code 1 when the job ended FAILURE, REJECTED or CANCELLED; 0 otherwise (even unfinished)."""
JOBS_EXAMPLES = """\
Examples:
  swapdrop jobs                          # the 20 newest
  swapdrop jobs --status FAILURE --since 1d
  swapdrop jobs --face alice --limit 200 --json | jq -r .jobId

--since and --until take 30m, 2h, 1d, 1w or an ISO-8601 time (UTC unless it has an offset)."""
CANCEL_EXAMPLES = """\
Examples:
  swapdrop cancel 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617

The job ends CANCELLED and its upstream task is cancelled; a finished job cannot be (exit 2)."""
RETRY_EXAMPLES = """\
Examples:
  swapdrop retry 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617
  swapdrop retry --failed --since 1d --dry-run
  swapdrop retry --failed --since 2h --face alice

A retry is a new job with the same face and target (retryOf/retriedBy link them). --failed retries
the FAILURE and REJECTED jobs created since --since (default 1d) that were not retried yet;
retry a CANCELLED job by its id."""
RESULT_EXAMPLES = """\
Examples:
  swapdrop result 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617                 # ./<jobId>.jpg or ./beach.jpg
  swapdrop result 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617 --out swapped.jpg
  swapdrop result 3f2a9c1e5b7d4e8fa0b1c2d3e4f50617 --out results/

Exit code 1 when the job ended FAILURE, REJECTED or CANCELLED; 2 when it has not finished yet
(swapdrop wait JOB waits for it)."""


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="show one job (by id, or by its target's key)", epilog=STATUS_EXAMPLES
    )
    status.add_argument("job", metavar="JOB|TARGET", help="a job id, or s3://BUCKET/KEY or KEY of a target")
    status.set_defaults(func=run_status)

    jobs = subparsers.add_parser("jobs", help="list jobs, newest first (a table, or JSON lines)", epilog=JOBS_EXAMPLES)
    jobs.add_argument(
        "--status",
        type=str.upper,
        choices=STATUSES,
        metavar="STATUS",
        help=f"only jobs in this status: {', '.join(STATUSES)}",
    )
    jobs.add_argument("--face", help="only jobs of this face")
    jobs.add_argument("--since", type=since_arg, metavar="WHEN", help="created at or after: 30m, 2h, 1d or ISO-8601")
    jobs.add_argument("--until", type=since_arg, metavar="WHEN", help="created before: as --since")
    jobs.add_argument("--limit", type=_positive, default=20, metavar="N", help="at most N jobs (20; 0 for all)")
    jobs.set_defaults(func=run_jobs)

    cancel = subparsers.add_parser("cancel", help="cancel an unfinished job", epilog=CANCEL_EXAMPLES)
    cancel.add_argument("job", metavar="JOB")
    cancel.set_defaults(func=run_cancel)

    retry = subparsers.add_parser(
        "retry", help="retry a failed job, or every failed job since a time", epilog=RETRY_EXAMPLES
    )
    retry.add_argument("job", metavar="JOB", nargs="?", help="the job to retry")
    retry.add_argument("--failed", action="store_true", help="retry every FAILURE/REJECTED job since --since")
    retry.add_argument("--since", type=since_arg, metavar="WHEN", help="with --failed: 30m, 2h, 1d (default) or ISO")
    retry.add_argument("--face", help="with --failed: only this face's jobs")
    retry.add_argument("--dry-run", action="store_true", help="with --failed: list what would be retried")
    retry.set_defaults(func=run_retry)

    result = subparsers.add_parser("result", help="download a finished job's result", epilog=RESULT_EXAMPLES)
    result.add_argument("job", metavar="JOB")
    result.add_argument(
        "--out", type=Path, metavar="FILE|DIR", help="where to save it (default: the result's file name, here)"
    )
    result.set_defaults(func=run_result)


# --- argument types ---------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """30m, 2h, 1d, 1w (before `now`) or an ISO-8601 time (naive = UTC); an aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    text = text.strip()
    found = _DURATION.match(text.lower())
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    moment = parse_utc(text)
    if moment is None:
        raise ValueError(f"expected 30m, 2h, 1d, 1w or an ISO-8601 time, got {text!r}")
    return moment.astimezone(timezone.utc)


def since_arg(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def check_job_id(text: str) -> str:
    job_id = text.strip().lower()
    if not JOB_ID.match(job_id):
        raise CliError(
            f"'{printable(text[:80])}' is not a job id (32 hex characters)",
            ExitCode.USAGE,
            hint="swapdrop jobs lists the jobs",
        )
    return job_id


# --- status -----------------------------------------------------------------------------------


def run_status(args: argparse.Namespace, ctx: Any) -> int:
    job = find_job(ctx, args.job)
    ctx.output.emit(job)
    if not ctx.output.json_mode:
        show_job(ctx.output, job)
    return ExitCode.JOBS_FAILED if job["status"] in FAILED else ExitCode.OK


def find_job(ctx: Any, text: str) -> dict:
    """The job `text` names: a job id, an uploads/<jobId>/ key, or a target key (its version's job)."""
    if JOB_ID.match(text.strip().lower()):
        return ctx.api.get_job(text.strip().lower())
    key = _target_key(ctx, text)
    upload_job = job_id_of_upload(key)
    if upload_job:
        return ctx.api.get_job(upload_job)
    if not key.startswith(INBOX_PREFIX):
        raise CliError(
            f"'{printable(text[:200])}' is neither a job id nor a target key (inbox/FACE/… or uploads/JOB/…)",
            ExitCode.USAGE,
        )
    try:
        face = parse_inbox_key(key).face
    except ValueError as error:
        raise CliError(f"{error}; it has no job", ExitCode.USAGE) from None
    bucket = ctx.target.bucket
    version = _current_version(ctx, bucket, key)
    if version:
        try:
            return ctx.api.get_job(job_id_for(bucket, key, version))
        except ApiError as error:
            if error.status != 404:
                raise
    for summary in ctx.api.list_jobs(face=face, limit=LIST_FOR_TARGET):
        if (summary.get("target") or {}).get("key") == key:
            return ctx.api.get_job(summary["jobId"])
    raise CliError(
        f"no job for s3://{bucket}/{printable(key)} yet",
        ExitCode.USAGE,
        hint="a new upload becomes a job within seconds; swapdrop jobs --face " + printable(face),
    )


def _target_key(ctx: Any, text: str) -> str:
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if bucket != ctx.target.bucket:
            raise CliError(
                f"s3://{bucket}/ is not the bucket of {ctx.target.description} ({ctx.target.bucket})", ExitCode.USAGE
            )
        return key
    return text


def _current_version(ctx: Any, bucket: str, key: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        head = ctx.target.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise CliError(f"no object s3://{bucket}/{printable(key)}", ExitCode.USAGE) from None
        raise
    version = head.get("VersionId")
    return version if version and version != "null" else None


def show_job(output: Any, job: dict) -> None:
    status = job["status"]
    if status not in TERMINAL and job.get("progress") is not None:
        status += f" ({job['progress']}%"
        status += f", queue position {job['queuePosition']})" if job.get("queuePosition") else ")"
    rows = [
        ("job", job["jobId"]),
        ("status", status),
        ("reason", job.get("failReason")),
        ("face", job.get("face")),
        ("target", (job.get("target") or {}).get("key")),
        ("from url", (job.get("target") or {}).get("url")),
        ("origin", job.get("origin")),
        ("created", _when(job.get("createdAt"))),
        ("updated", _when(job.get("updatedAt"))),
        ("finished", _when(job.get("finishedAt"))),
        ("result", (job.get("result") or {}).get("key")),
        ("retry of", job.get("retryOf")),
        ("retried by", job.get("retriedBy")),
        ("webhook", job.get("webhookStatus")),
    ]
    rows += [(f"meta {k}", v) for k, v in sorted((job.get("metadata") or {}).items())]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        if value not in (None, ""):
            output.line(f"{name:<{width}}  {printable(str(value))}")


def _when(text: str | None) -> str | None:
    """2024-10-16T09:59:21.500Z → 2024-10-16 09:59:21Z."""
    if not text:
        return None
    return text.replace("T", " ")[:19] + "Z" if len(text) >= 19 else text


# --- jobs -------------------------------------------------------------------------------------


def run_jobs(args: argparse.Namespace, ctx: Any) -> int:
    limit = args.limit or None
    jobs = ctx.api.list_jobs(
        status=args.status,
        face=args.face,
        since=iso(args.since) if args.since else None,
        until=iso(args.until) if args.until else None,
        limit=limit,
    )
    rows = []
    for job in jobs:
        ctx.output.emit(job)
        rows.append(
            (
                job["jobId"],
                job["status"],
                job.get("face") or "",
                _when(job.get("createdAt")),
                (job.get("target") or {}).get("key") or "",
                job.get("failReason") or "",
            )
        )
    ctx.output.table(
        ("JOB", "STATUS", "FACE", "CREATED", "TARGET", "REASON"),
        rows,
        empty="no jobs match" if any((args.status, args.face, args.since, args.until)) else "no jobs yet",
    )
    if limit and len(rows) == limit:
        ctx.output.note(f"(the {limit} newest; --limit N for more)")
    return ExitCode.OK


# --- cancel and retry ----------------------------------------------------------------------------


def run_cancel(args: argparse.Namespace, ctx: Any) -> int:
    job_id = check_job_id(args.job)
    try:
        job = ctx.api.cancel(job_id)
    except ApiError as error:
        if error.code == "job_finished":
            status = (error.details or {}).get("status") if isinstance(error.details, dict) else None
            raise CliError(
                f"job {job_id} has already finished{f' ({status})' if status else ''}; nothing to cancel",
                ExitCode.USAGE,
            ) from None
        raise
    ctx.output.emit(job)
    ctx.output.line(f"cancelled job {job_id} ({job['status']})")
    return ExitCode.OK


def run_retry(args: argparse.Namespace, ctx: Any) -> int:
    if args.failed == bool(args.job):
        raise CliError("give a JOB or --failed (not both)", ExitCode.USAGE, hint="swapdrop retry --help")
    if not args.failed and (args.since or args.face or args.dry_run):
        raise CliError("--since, --face and --dry-run go with --failed", ExitCode.USAGE)
    if args.job:
        job_id = check_job_id(args.job)
        new = ctx.api.retry(job_id)
        ctx.output.emit({"jobId": job_id, "retry": new})
        ctx.output.line(f"retried job {job_id} as {new['jobId']} ({new['status']})")
        return ExitCode.OK
    since = args.since or parse_since("1d")
    failed = [
        job
        for status in RETRIED_BY_FAILED
        for job in ctx.api.list_jobs(status=status, face=args.face, since=iso(since))
    ]
    failed.sort(key=lambda job: job.get("createdAt") or "")
    if not failed:
        ctx.output.note(f"no FAILURE or REJECTED jobs since {iso(since)}")
        return ExitCode.OK
    worst = ExitCode.OK
    retried = skipped = 0
    for job in failed:
        if args.dry_run:
            ctx.output.emit({"jobId": job["jobId"], "status": job["status"], "wouldRetry": True})
            ctx.output.line(f"would retry {job['jobId']} ({job['status']}: {job.get('failReason') or ''})")
            continue
        try:
            new = ctx.api.retry(job["jobId"])
        except ApiError as error:
            if error.code == "already_retried":
                skipped += 1
                continue
            ctx.output.emit({"jobId": job["jobId"], "error": {"code": error.code, "message": error.message}})
            ctx.output.warn(f"{job['jobId']}: {error.message}")
            worst = max(worst, error.exit_code)
            continue
        retried += 1
        ctx.output.emit({"jobId": job["jobId"], "retry": new})
        ctx.output.line(f"retried {job['jobId']} as {new['jobId']}")
    if not args.dry_run:
        ctx.output.note(f"{retried} retried" + (f", {skipped} already retried before" if skipped else ""))
    return worst


# --- result -------------------------------------------------------------------------------------


def run_result(args: argparse.Namespace, ctx: Any) -> int:
    job_id = check_job_id(args.job)
    job = ctx.api.get_job(job_id)
    status = job["status"]
    if status in FAILED:
        reason = f": {job['failReason']}" if job.get("failReason") else ""
        raise CliError(f"job {job_id} ended {status}{reason}; it has no result", ExitCode.JOBS_FAILED)
    if status != "SUCCESS":
        raise CliError(
            f"job {job_id} has not finished ({status}, {job.get('progress', 0)}%)",
            ExitCode.USAGE,
            hint=f"swapdrop wait {job_id}",
        )
    result = job.get("result")
    if not result:
        raise CliError(
            f"job {job_id} succeeded but its result is not stored yet",
            ExitCode.UNREACHABLE,
            hint="try again in a minute; swapdrop doctor if it persists",
        )
    name = PurePosixPath(result["key"]).name
    dest = args.out or Path(name)
    if dest.is_dir() or str(args.out or "").endswith(("/", "\\")):
        dest = dest / name
    size = ctx.api.download(result["url"], dest)
    ctx.output.emit({"jobId": job_id, "status": status, "key": result["key"], "path": str(dest), "bytes": size})
    ctx.output.result(str(dest))
    return ExitCode.OK
