"""`make demo`: real face swaps through the whole local stack, watched live.

First through the drop folder (S3 writes), then through the jobs API as a client would use
it: SigV4-signed requests, presigned POSTs for the face and the target, `GET /jobs/{id}?wait=`
and the result fetched from its presigned URL. Both doors must work, or the demo exits 1.

The photos ship inside packages and are in the public domain: Grace Hopper (US Navy,
matplotlib's sample data) is the face, Eileen Collins (NASA, scikit-image's astronaut)
the target.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from swapdrop.jobs import TERMINAL_STATUSES, Job
from swapdrop.layout import CONTENT_TYPES

from swapdrop_local.auth import signed_request
from swapdrop_local.provision import local_client, local_table
from swapdrop_local.stack import RunningStack, StackOptions

FACE_KEY = "faces/grace.jpg"
TARGET_KEY = "inbox/grace/nasa portraits/astronaut.png"
TERMINAL = {status.value for status in TERMINAL_STATUSES}
API_FACE = "hopper"
"""The API swap's face: the same photo, uploaded through PUT /faces/{face}'s presigned POST."""
API_WAIT_SECONDS = 20
"""GET /jobs/{id}?wait=: under API Gateway's 30 s integration timeout."""
UPLOAD_OK = {200, 201, 204}


class DemoFailed(Exception):
    """A step of the demo went wrong: the message says which and what the stack answered."""


def as_jpeg(image: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(image)).convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def demo_photos() -> tuple[bytes, bytes]:
    """(face JPEG, target PNG), read from the packages that ship them."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        face = handle.read()
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, format="PNG")
    return face, buffer.getvalue()


class ProgressLine:
    """One updating line on a terminal; one line per change elsewhere (CI logs)."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stdout
        self._tty = self._stream.isatty()
        self._last: tuple[str, int] | None = None

    def show(self, elapsed: float, status: str, progress: int) -> None:
        filled = progress // 5
        text = f"[{elapsed:5.1f}s] {status:<15} {progress:3d}% {'█' * filled}{'░' * (20 - filled)}"
        if self._tty:
            self._stream.write("\r" + text)
        elif (status, progress) != self._last:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._last = (status, progress)

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def find_job(table: Any, target_key: str) -> dict[str, Any] | None:
    items = table.scan(FilterExpression="targetKey = :k", ExpressionAttributeValues={":k": target_key})["Items"]
    return items[0] if items else None


def wait_for_job(table: Any, target_key: str, timeout: float, line: ProgressLine) -> dict[str, Any] | None:
    started = time.monotonic()
    job = None
    while time.monotonic() - started < timeout:
        job = find_job(table, target_key)
        status = job["status"] if job else "UPLOADED"
        line.show(time.monotonic() - started, status, int(job.get("progress", 0)) if job else 0)
        if job and status in TERMINAL and ("resultKey" in job or status != "SUCCESS" or "resultCopyError" in job):
            break
        time.sleep(0.2)
    line.done()
    return job


def side_by_side(images: list[bytes]) -> bytes:
    from PIL import Image

    opened = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    height = 360
    resized = [im.resize((round(im.width * height / im.height), height)) for im in opened]
    canvas = Image.new("RGB", (sum(im.width for im in resized) + 10 * (len(resized) - 1), height), "white")
    x = 0
    for im in resized:
        canvas.paste(im, (x, 0))
        x += im.width + 10
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


# --------------------------------------------------------------------------- the jobs API


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _answer(response: Any, what: str, expected: set[int]) -> Any:
    """The JSON body of an expected answer; otherwise DemoFailed with the API's error code and message."""
    if response.status_code in expected:
        return response.json() if response.content else None
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        detail = f"{error.get('code')}: {error.get('message')}"
    elif isinstance(body, dict) and "message" in body:
        detail = str(body["message"])  # API Gateway's own refusals (403 Forbidden, ...)
    else:
        detail = _short(response.text)
    raise DemoFailed(f"{what} answered {response.status_code}: {detail}")


def api_call(info: dict[str, Any], method: str, path: str, expected: set[int], **kwargs: Any) -> Any:
    """One SigV4-signed request to the stack's IAM API (botocore's signer, as any AWS client signs)."""
    import requests

    what = f"{method} {path}"
    try:
        response = signed_request(info, method, path, **kwargs)
    except requests.RequestException as error:
        raise DemoFailed(f"{what} failed: {error}") from error
    return _answer(response, what, expected)


def post_form(form: dict[str, Any], filename: str, body: bytes, content_type: str, what: str) -> None:
    """Send a file with a presigned POST from the API: its fields as given, then the file as `file`."""
    import requests

    if len(body) > int(form["maxBytes"]):
        raise DemoFailed(f"{what}: {len(body)} bytes is over the form's limit of {form['maxBytes']}")
    try:
        response = requests.post(
            form["url"], data=form["fields"], files={"file": (filename, body, content_type)}, timeout=30
        )
    except requests.RequestException as error:
        raise DemoFailed(f"{what}: the presigned POST failed: {error}") from error
    if response.status_code not in UPLOAD_OK:
        raise DemoFailed(f"{what}: the presigned POST answered {response.status_code}: {_short(response.text)}")


def api_swap(info: dict[str, Any], table: Any, face: bytes, target: bytes, timeout: float) -> tuple[dict, bytes]:
    """The second swap, only through the HTTP API. Returns (the final job view, the result's bytes)."""
    import requests

    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        timings[name] = now - since
        return now

    print(f"\nSecond swap through the jobs API ({info['api_url']}, SigV4-signed):", flush=True)
    clock = time.monotonic()
    answer = api_call(info, "PUT", f"/faces/{API_FACE}", {200}, json_body={"contentType": "image/jpeg"})
    post_form(answer["upload"], f"{API_FACE}.jpg", face, "image/jpeg", f"the face upload to {answer['key']}")
    clock = lap("face", clock)
    print(f"  PUT /faces/{API_FACE} → presigned POST → s3://{info['bucket']}/{answer['key']}", flush=True)

    body = {"face": API_FACE, "target": {"upload": {"contentType": "image/jpeg"}}, "metadata": {"source": "demo"}}
    key = str(uuid.uuid4())
    created = api_call(info, "POST", "/jobs", {202}, json_body=body, headers={"Idempotency-Key": key})
    job_id = created["jobId"]
    clock = lap("create", clock)
    print(f"  POST /jobs → 202 job {job_id} {created['status']}", flush=True)
    replayed = api_call(info, "POST", "/jobs", {202}, json_body=body, headers={"Idempotency-Key": key})
    if replayed.get("jobId") != job_id:
        raise DemoFailed(f"POST /jobs replayed with the same Idempotency-Key made a second job {replayed.get('jobId')}")
    print("  POST /jobs again with the same Idempotency-Key → the same job, nothing new created", flush=True)

    post_form(created["upload"], "target.jpg", target, "image/jpeg", f"the target upload to {created['target']['key']}")
    clock = lap("upload", clock)
    print(f"  presigned POST → s3://{info['bucket']}/{created['target']['key']}", flush=True)

    line = ProgressLine()
    line.show(time.monotonic() - clock, created["status"], int(created.get("progress", 0)))
    view = created
    deadline = clock + timeout
    while True:
        wait = API_WAIT_SECONDS if view["status"] not in TERMINAL else 0
        view = api_call(info, "GET", f"/jobs/{job_id}", {200}, params={"wait": wait})
        line.show(time.monotonic() - clock, view["status"], int(view.get("progress", 0)))
        # SUCCESS comes a moment before the result is copied into the bucket: ask again until `result` is there.
        if view["status"] in TERMINAL and (view["status"] != "SUCCESS" or view.get("result")):
            break
        if time.monotonic() > deadline:
            line.done()
            raise DemoFailed(f"job {job_id} is still {view['status']} after {timeout:.0f} s")
        if view["status"] in TERMINAL:
            time.sleep(0.2)
    line.done()
    clock = lap("swap", clock)
    if view["status"] != "SUCCESS":
        raise DemoFailed(f"job {job_id} ended {view['status']}: {view.get('failReason')}")
    record = table.get_item(Key={"jobId": job_id}).get("Item") or {}
    if record.get("origin") != "api":
        raise DemoFailed(f"job {job_id}'s record says origin {record.get('origin')!r}, not 'api'")

    try:
        download = requests.get(view["result"]["url"], timeout=30)
    except requests.RequestException as error:
        raise DemoFailed(f"downloading job {job_id}'s result failed: {error}") from error
    if download.status_code != 200 or not download.content:
        raise DemoFailed(f"the result's presigned URL answered {download.status_code}: {_short(download.text)}")
    lap("download", clock)
    timings["total"] = time.monotonic() - started
    print(f"API job {job_id}: {view['status']} (origin {record['origin']}), result {view['result']['key']}")
    print("  timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
    return view, download.content


def result_name(view: dict[str, Any]) -> str:
    """api-result.<ext>, the extension from the result's content type (else its key)."""
    content_type = (view["result"].get("contentType") or "").split(";")[0].strip().lower()
    extension = CONTENT_TYPES.get(content_type) or view["result"]["key"].rsplit(".", 1)[-1]
    return f"api-result.{extension}"


def run_demo(args: argparse.Namespace, options: StackOptions) -> int:
    """The demo; with --json its steps go to stderr and stdout gets one summary line for scripts."""
    summary: dict[str, Any] = {}
    if not getattr(args, "json", False):
        return _run_demo(args, options, summary)
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        code = _run_demo(args, options, summary)
    print(json.dumps({"ok": code == 0, **summary}), file=stdout, flush=True)
    return code


def _run_demo(args: argparse.Namespace, options: StackOptions, summary: dict[str, Any]) -> int:
    options.reconcile_interval = min(options.reconcile_interval, 2.0)
    # The console stays readable because everything else goes to the stack's log: the functions'
    # output (as Lambda's goes to CloudWatch Logs), the stack's and the emulator's INFO lines and
    # MediaPipe's native ones.
    face, target = demo_photos()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    options.log_file = options.log_file or out / "stack.log"
    print("Starting the local stack (moto, swap API emulator, functions)…", flush=True)
    with RunningStack(options) as running:
        info = running.info()
        print(f"  bucket {info['bucket']} on {info['endpoint_url']}; swap API {info['upstream_url']}", flush=True)
        print(f"  the functions' and the stack's logs: {info['log_file']}", flush=True)
        summary["log_file"] = info["log_file"]
        s3 = local_client("s3", info["region"], info["endpoint_url"])
        table = local_table(info["jobs_table"], info["region"], info["endpoint_url"])
        s3.put_object(Bucket=info["bucket"], Key=FACE_KEY, Body=face)
        print(f"Uploaded s3://{info['bucket']}/{FACE_KEY} (Grace Hopper, US Navy, public domain)", flush=True)
        s3.put_object(Bucket=info["bucket"], Key=TARGET_KEY, Body=target)
        print(f"Uploaded s3://{info['bucket']}/{TARGET_KEY} (Eileen Collins, NASA, public domain)", flush=True)
        job = wait_for_job(table, TARGET_KEY, args.timeout, ProgressLine())
        if job is None:
            print(f"error: no job record appeared for {TARGET_KEY} within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        summary["drop_folder"] = {"jobId": job["jobId"], "status": job["status"], "failReason": job.get("failReason")}
        print("Job record:")
        print(json.dumps(Job.from_item(job).public_view(), indent=2, ensure_ascii=False, default=str))
        if job["status"] != "SUCCESS" or "resultKey" not in job:
            print(
                f"error: the job ended {job['status']}: {job.get('failReason') or job.get('resultCopyError')}",
                file=sys.stderr,
            )
            return 1
        result = s3.get_object(Bucket=info["bucket"], Key=job["resultKey"])["Body"].read()
        (out / "face.jpg").write_bytes(face)
        (out / "target.png").write_bytes(target)
        (out / "result.png").write_bytes(result)
        (out / "side_by_side.png").write_bytes(side_by_side([face, target, result]))
        print(f"Result image: {out / 'result.png'}")
        print(f"Face | target | result: {out / 'side_by_side.png'}", flush=True)
        summary["drop_folder"].update(result=str(out / "result.png"), side_by_side=str(out / "side_by_side.png"))
        try:
            view, api_result = api_swap(info, table, face, as_jpeg(target), args.timeout)
        except DemoFailed as error:
            print(f"error: the jobs API swap failed: {error}", file=sys.stderr)
            summary["api"] = {"error": str(error)}
            return 1
    api_file = out / result_name(view)
    api_file.write_bytes(api_result)
    print(f"API result image: {api_file}")
    summary["api"] = {"jobId": view["jobId"], "status": view["status"], "result": str(api_file)}
    return 0
