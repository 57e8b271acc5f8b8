"""`swapdrop demo` and `swapdrop local` print only what a person should read (issue 9, "Clean output").

No Powertools warnings, no MediaPipe native lines, no matplotlib font cache notice, no INFO log lines:
the functions' output and the stack's own logging go to the stack's log file, which keeps them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SWAPDROP = Path(sys.executable).parent / "swapdrop"
NOISE = ("W0000", "InitGoogle", "fontManager", "UserWarning", "Traceback", "XNNPACK", " INFO ", '"level"')
CONSOLE_WARNING = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ swapdrop[._][\w.]* (WARNING|ERROR) ")
"""The one kind of stderr line allowed: a real problem the stack reports (none in a healthy run)."""


def _environment(tmp_path: Path) -> dict[str, str]:
    # A fresh matplotlib config dir: matplotlib rebuilds its font cache, as on a first run.
    return {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONUNBUFFERED": "1"}


def _unexpected(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not CONSOLE_WARNING.match(line)]


def test_the_demo_prints_its_steps_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    completed = subprocess.run(
        [str(SWAPDROP), "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_environment(tmp_path),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for noise in NOISE:
        assert noise not in completed.stdout + completed.stderr, noise
    assert _unexpected(completed.stderr) == [], completed.stderr
    for step in ("Starting the local stack", "Uploaded s3://", "Job record:", "Result image:", "API result image:"):
        assert step in completed.stdout, step
    # What the console left out is in the stack's log: the functions' records, MediaPipe's native lines.
    log_file = out / "stack.log"
    assert f"logs: {log_file}" in completed.stdout
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {"SubmitFunction", "CallbackFunction"} <= {r.get("function") for r in records}
    assert any(r.get("logger") == "swapdrop_emulator.mediapipe" and "W0000" in r["message"] for r in records)


def test_swapdrop_local_prints_only_its_banner(tmp_path: Path) -> None:
    info_file = tmp_path / "local.json"
    process = subprocess.Popen(
        [str(SWAPDROP), "local", "--info-file", str(info_file), "--reconcile-interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(tmp_path),
    )
    try:
        deadline = time.monotonic() + 300
        while not info_file.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        time.sleep(3)  # a few reconciler runs: their log lines must not reach the console
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert _unexpected(stderr) == [], stderr
    lines = stdout.splitlines()
    assert lines[0] == "Swapdrop local stack is up:"
    assert lines[-2:] == ["Ctrl-C stops everything.", "stopping…"]
    banner = lines[1:-2]
    assert all(line.startswith("  ") for line in banner), banner
    shown = {line.split()[0] for line in banner if not line.startswith("  (")}
    assert {"stack_name", "log_file", "api_url", "endpoint_url"} <= shown
    log_file = info_file.with_suffix(".log")
    assert "log_file" in stdout and str(log_file) in stdout
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r.get("function") == "ReconcileFunction" for r in records)


def test_swapdrop_local_json_prints_an_up_line_then_stopped(tmp_path: Path) -> None:
    """--json for scripts: one 'up' object with the endpoints (the secret key masked), one 'stopped' at the end."""
    info_file = tmp_path / "local.json"
    process = subprocess.Popen(
        [str(SWAPDROP), "--json", "local", "--info-file", str(info_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(tmp_path),
    )
    try:
        assert process.stdout is not None
        up = json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert up["event"] == "up"
    assert up["info_file"] == str(info_file)
    assert up["api_url"].startswith("http://127.0.0.1:")
    assert up["api_credentials"]["secret_access_key"] == "****"
    secret = json.loads(info_file.read_text())["api_credentials"]["secret_access_key"] if info_file.exists() else None
    assert secret is None  # removed at stop
    assert [json.loads(line) for line in stdout.splitlines()] == [{"event": "stopped"}]
    assert _unexpected(stderr) == [], stderr


def test_the_demo_with_json_prints_one_summary_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    completed = subprocess.run(
        [str(SWAPDROP), "demo", "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_environment(tmp_path),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (line,) = completed.stdout.splitlines()
    summary = json.loads(line)
    assert summary["ok"] is True
    assert summary["drop_folder"]["status"] == summary["api"]["status"] == "SUCCESS"
    assert Path(summary["drop_folder"]["result"]).stat().st_size > 0
    assert Path(summary["api"]["result"]).stat().st_size > 0
    assert summary["log_file"] == str(out / "stack.log")
    assert "Job record:" in completed.stderr  # the steps, for a person watching
    for noise in NOISE:
        assert noise not in completed.stdout + completed.stderr, noise
