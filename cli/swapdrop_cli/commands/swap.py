"""`swapdrop swap FACE TARGET...`: jobs through the jobs API (POST /jobs, then each local file sent
with its presigned POST), optionally waited for with live progress and the results downloaded.

Where the stack has no jobs API (no ApiUrl output) the targets go into the drop folder instead
(inbox/<face>/<path>), which starts the same pipeline without job ids to follow.
"""

from __future__ import annotations

import argparse
import shlex
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from swapdrop.layout import INBOX_PREFIX, LayoutError, face_name_problem, parse_inbox_key, printable

from swapdrop_cli.commands.wait import JobRow, Watched, resume_command, wait_for, write_manifest
from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.targets import (
    MAX_BATCH,
    SwapTarget,
    batch_idempotency_key,
    batches,
    check_buckets,
    check_idempotency_key,
    expand_targets,
)

UPLOADERS = 4
"""Files sent at once (to S3's presigned POST, not through the jobs API)."""

HELP = "swap a face onto images: files, folders, s3:// keys or https:// URLs"
EXAMPLES = f"""\
Examples:
  swapdrop swap alice beach.jpg
  swapdrop swap alice photos/ --wait --out swapped/
  swapdrop swap alice photos/ --out swapped/ --side-by-side
  swapdrop swap alice s3://my-swapdrop-bucket/inbox/trip/1.jpg https://example.com/2.png
  swapdrop swap alice photos/ --idempotency-key trip-2024 --json

TARGET is an image file (JPEG, PNG or WebP, checked by content), a folder (walked recursively:
images only, hidden files skipped, other files skipped with a note), s3://BUCKET/KEY in the stack's
own bucket, or an https:// URL the stack fetches (http:// is refused).

Targets go in batches of {MAX_BATCH}. With --idempotency-key K the first batch is sent with the key K,
the second with K-2, the third K-3, and so on: running the same command again with the same key
creates no new jobs. Without --wait, the job ids are printed and the command returns.

--wait shows each job's status, progress, queue position and elapsed time on stderr and a summary
on stdout; --out saves the results (and implies --wait) under the targets' relative paths: a
folder's images keep their paths inside it, a file, key or URL its base name, with the extension of
the result's type. Ctrl-C stops waiting (the jobs go on) and prints the `swapdrop wait` to resume.

Exit status: 0 all good; 1 a job failed, was rejected or cancelled, or a target was refused;
2 usage (bad face name, missing file, not an image, another bucket); 3 unreachable; 4 auth; 130 Ctrl-C.
Without a jobs API (a stack without the ApiUrl output) targets are dropped into inbox/FACE/ instead."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("swap", help=HELP, epilog=EXAMPLES)
    parser.add_argument("face", metavar="FACE", help="a face added with `swapdrop face add`")
    parser.add_argument("targets", metavar="TARGET", nargs="+", help="image files, folders, s3:// keys, https:// URLs")
    parser.add_argument("--wait", action="store_true", help="wait for the jobs, showing live progress")
    parser.add_argument("--out", metavar="DIR", type=Path, help="save the results in DIR (implies --wait)")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --out, also write <name>.side-by-side.jpg: face | target | result (needs swapdrop[images])",
    )
    parser.add_argument("--timeout", metavar="S", type=_seconds, help="with --wait: stop waiting after S seconds")
    parser.add_argument(
        "--idempotency-key",
        metavar="K",
        help="make a rerun create nothing new: batch 1 is sent with K, batch 2 with K-2, batch 3 with K-3…",
    )
    parser.add_argument(
        "--metadata",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a label kept on every job (repeatable)",
    )
    parser.set_defaults(func=run)


def _seconds(text: str) -> float:
    from swapdrop_cli.commands.wait import _seconds as seconds

    return seconds(text)


def parse_metadata(items: list[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise CliError(f"--metadata '{printable(item)}' is not KEY=VALUE", ExitCode.USAGE)
        metadata[key] = value
    return metadata


def run(args: argparse.Namespace, ctx: Any) -> int:
    output = ctx.output
    problem = face_name_problem(args.face)
    if problem:
        raise CliError(problem, ExitCode.USAGE, hint="swapdrop face list shows the faces")
    wait = args.wait or args.out is not None
    if args.side_by_side:
        if args.out is None:
            raise CliError("--side-by-side needs --out DIR (where to write the images)", ExitCode.USAGE)
        from swapdrop_cli.side_by_side import require_pillow

        require_pillow()
    metadata = parse_metadata(args.metadata)
    check_idempotency_key(args.idempotency_key)
    targets = expand_targets(args.targets, None, output.note)  # local files checked before any network
    target = ctx.target
    check_buckets(targets, target.bucket)
    if not target.api_url:
        return drop_into_inbox(ctx, args.face, targets, wait)

    api = ctx.api
    check_face_exists(api, args.face, target.description)
    watched: list[Watched] = []
    refused = 0
    try:
        for number, batch in enumerate(batches(targets)):
            key = batch_idempotency_key(args.idempotency_key, number)
            entries = api.create_jobs(args.face, [t.request() for t in batch], idempotency_key=key, metadata=metadata)
            for entry in sorted(entries, key=lambda e: int(e.get("index", 0))):
                swap_target = batch[int(entry.get("index", 0))]
                if entry.get("job"):
                    view = entry["job"]
                    row = JobRow(job_id=view["jobId"], target=swap_target.shown)
                    row.update(view)
                    watched.append(Watched(row=row, view=view, relative=swap_target.relative, source=swap_target.path))
                else:
                    refused += 1
                    report_refused(output, swap_target, entry.get("error") or {})
        if args.out is not None and watched:  # before the uploads: a `wait --out` after Ctrl-C names results too
            write_manifest(args.out, {w.job_id: w.relative for w in watched if w.relative})
        if args.idempotency_key:
            skip_replayed_uploads(api, watched)
        uploads_failed = upload_all(api, output, watched)
    except KeyboardInterrupt:
        output.stderr.write("\nstopped before every target was sent;")
        if watched:
            output.stderr.write(" the jobs created go on. To wait for them:\n")
            output.stderr.write(resume_command(args, [w.job_id for w in watched], args.out) + "\n")
        else:
            output.stderr.write(" no job was created yet (see swapdrop jobs --since 10m for one being created)\n")
        return ExitCode.INTERRUPTED
    if not watched:
        return ExitCode.JOBS_FAILED
    if not wait:
        print_created(output, args, watched)
        return ExitCode.JOBS_FAILED if refused or uploads_failed else ExitCode.OK
    code = wait_for(ctx, watched, args.out, args.side_by_side, args.timeout)
    if code == ExitCode.OK and refused:
        return ExitCode.JOBS_FAILED
    return code


def check_face_exists(api: Any, face: str, where: str) -> None:
    """A usage error before anything is uploaded when the face is missing (its jobs would all be REJECTED).
    Compared in NFC, as the pipeline matches face names across Unicode forms."""
    wanted = unicodedata.normalize("NFC", face)
    if any(unicodedata.normalize("NFC", str(item.get("face", ""))) == wanted for item in api.list_faces()):
        return
    raise CliError(
        f"no face '{printable(face)}' in {where}",
        ExitCode.USAGE,
        hint=f"add it first: swapdrop face add {shlex.quote(face)} IMAGE (swapdrop face list shows the faces)",
    )


def report_refused(output: Any, target: SwapTarget, error: dict) -> None:
    code = error.get("code") or "refused"
    message = printable(str(error.get("message") or "the API refused this target"))
    output.stderr.write(f"error: {printable(target.shown)}: {code}: {message}\n")
    output.stderr.flush()
    output.emit({"jobId": None, "target": target.shown, "status": "REFUSED", "error": error})


def skip_replayed_uploads(api: Any, watched: list[Watched]) -> None:
    """A request replayed for its Idempotency-Key answers as it did the first time (AWAITING_UPLOAD,
    with the upload form), even for jobs whose targets arrived long ago: ask each job where it is
    now, and send only the targets still awaited (a rerun after Ctrl-C finishes the uploads)."""
    for item in watched:
        if item.view.get("upload"):
            current = api.get_job(item.job_id)
            if current.get("status") != "AWAITING_UPLOAD":
                item.view = {**current}
                item.row.update(current)


def upload_all(api: Any, output: Any, watched: list[Watched]) -> int:
    """Send every local file to its job's presigned form (which pins its type); the number that failed
    (their jobs cancelled, so none waits for an upload that will not come)."""
    pending = [w for w in watched if w.view.get("upload") and w.source is not None]
    if not pending:
        return 0
    failed = 0
    pool = ThreadPoolExecutor(max_workers=min(UPLOADERS, len(pending)), thread_name_prefix="swapdrop-upload")
    try:
        futures = {pool.submit(api.upload, w.view["upload"], w.source): w for w in pending}
        for future in as_completed(futures):
            item = futures[future]
            error = future.exception()
            if error is None:
                continue
            if not isinstance(error, CliError):
                raise error
            failed += 1
            item.problem = error.message
            output.stderr.write(f"error: {printable(item.row.target)}: {error.message}\n")
            try:
                item.view = api.cancel(item.job_id)
                item.row.update(item.view)
            except CliError as cancel_error:
                output.stderr.write(f"  (job {item.job_id} stays {item.row.status}: {cancel_error.message})\n")
            item.done = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return failed


def print_created(output: Any, args: argparse.Namespace, watched: list[Watched]) -> None:
    """The jobs: a table (--quiet: one id a line; --json: a JSON line each), then how to follow them."""
    if output.json_mode:
        for item in watched:
            output.emit({"jobId": item.job_id, "target": item.row.target, "status": item.row.status})
        return
    if output.quiet:
        for item in watched:
            output.result(item.job_id)
        return
    output.table(["job", "target", "status"], [(w.job_id, w.row.target, w.row.status) for w in watched])
    open_ids = [w.job_id for w in watched if not w.done]
    if open_ids:
        output.note(f"follow them with: {resume_command(args, open_ids, None)}")


def drop_into_inbox(ctx: Any, face: str, targets: list[SwapTarget], wait: bool) -> int:
    """No jobs API: put each target at inbox/<face>/<relative path> (s3:// keys copied there)."""
    target, output = ctx.target, ctx.output
    if wait:
        raise CliError(
            f"{target.description} has no jobs API (no ApiUrl output), so there are no jobs to wait for",
            ExitCode.USAGE,
            hint=f"leave out --wait/--out: results appear under s3://{target.bucket}/results/{face}/",
        )
    urls = [t for t in targets if t.url]
    if urls:
        raise CliError(
            f"{target.description} has no jobs API (no ApiUrl output) to fetch {printable(urls[0].shown)}",
            ExitCode.USAGE,
            hint="download it and pass the file, or deploy the current template",
        )
    keys = []
    for item in targets:
        key = f"{INBOX_PREFIX}{face}/{item.relative}"
        try:
            parse_inbox_key(key)
        except LayoutError as error:
            raise CliError(f"cannot drop {printable(item.shown)}: {error}", ExitCode.USAGE) from None
        keys.append(key)
    output.note(
        f"{target.description} has no jobs API (no ApiUrl output): dropping the targets into "
        f"s3://{target.bucket}/{INBOX_PREFIX}{face}/ instead; results appear under results/{face}/"
    )
    s3 = target.client("s3")
    for item, key in zip(targets, keys, strict=True):
        if item.path is not None:
            with item.path.open("rb") as handle:
                s3.put_object(Bucket=target.bucket, Key=key, Body=handle, ContentType=item.content_type)
        else:
            s3.copy_object(Bucket=target.bucket, Key=key, CopySource={"Bucket": target.bucket, "Key": item.s3_key})
        output.emit({"jobId": None, "target": item.shown, "status": "DROPPED", "key": key})
    dropped = [(t.shown, f"s3://{target.bucket}/{k}") for t, k in zip(targets, keys, strict=True)]
    output.table(["target", "dropped at"], dropped)
    return ExitCode.OK
