"""`make demo`: one real face swap through the whole local stack, watched live.

The photos ship inside packages and are in the public domain: Grace Hopper (US Navy,
matplotlib's sample data) is the face, Eileen Collins (NASA, scikit-image's astronaut)
the target.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from swapdrop.jobs import TERMINAL_STATUSES, Job

from swapdrop_local.provision import local_client, local_table
from swapdrop_local.stack import RunningStack, StackOptions

FACE_KEY = "faces/grace.jpg"
TARGET_KEY = "inbox/grace/nasa portraits/astronaut.png"
TERMINAL = {status.value for status in TERMINAL_STATUSES}


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

    def __init__(self, stream: Any = sys.stdout) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last: tuple[str, int] | None = None

    def show(self, elapsed: float, status: str, progress: int) -> None:
        filled = progress // 5
        text = f"[{elapsed:5.1f}s] {status:<11} {progress:3d}% {'█' * filled}{'░' * (20 - filled)}"
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


def run_demo(args: argparse.Namespace, options: StackOptions) -> int:
    options.reconcile_interval = min(options.reconcile_interval, 2.0)
    # A quiet run, so the progress line reads well: the functions log warnings only, and so
    # do the emulator and MediaPipe's native code.
    options.parameters.setdefault("LogLevel", "WARNING")
    options.function_environment |= {"POWERTOOLS_METRICS_DISABLED": "true", "PYTHONWARNINGS": "ignore::UserWarning"}
    os.environ.setdefault("GLOG_minloglevel", "2")
    for name in ("swapdrop_emulator", "swapdrop.local"):
        logging.getLogger(name).setLevel(logging.WARNING)
    face, target = demo_photos()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print("Starting the local stack (moto, swap API emulator, functions)…", flush=True)
    with RunningStack(options) as running:
        info = running.info()
        print(f"  bucket {info['bucket']} on {info['endpoint_url']}; swap API {info['upstream_url']}", flush=True)
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
    print(f"Face | target | result: {out / 'side_by_side.png'}")
    return 0
