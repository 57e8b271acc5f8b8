"""The console scripts as a user runs them: `swapdrop local` against a swap API it did not
start, and `swapdrop demo` end to end."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from swapdrop_emulator import EmulatorConfig, SwapEmulator

from e2e.conftest import Client

BIN = Path(sys.executable).parent


def _wait_for_file(path: Path, process: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"swapdrop local exited early with {process.returncode}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} was not written within {timeout} s")


def test_swapdrop_local_against_a_swap_api_it_did_not_start(tmp_path: Path, fixture_photos) -> None:
    emulator = SwapEmulator(EmulatorConfig(api_key="outside-key", auth_style="mj-api-secret")).start()
    info_file = tmp_path / "stack.json"
    process = subprocess.Popen(
        [
            str(BIN / "swapdrop"),
            "local",
            "--upstream",
            emulator.url,
            "--api-key",
            "outside-key",
            "--auth-style",
            "mj-api-secret",
            "--reconcile-interval",
            "1",
            "--info-file",
            str(info_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        info = _wait_for_file(info_file, process)
        assert {
            "region",
            "endpoint_url",
            "bucket",
            "jobs_table",
            "queue_url",
            "dlq_url",
            "callback_base_url",
            "upstream_url",
        } <= set(info)
        assert info["upstream_url"] == emulator.url
        for url in (info["endpoint_url"], info["callback_base_url"]):
            assert url.startswith("http://127.0.0.1:")
        client = Client(info)
        client.put("faces/grace.jpg", fixture_photos["grace_hopper.jpg"])
        client.put("inbox/grace/outside.png", fixture_photos["astronaut.png"])
        job = client.wait_for("inbox/grace/outside.png")
        assert job.status.value == "SUCCESS", job.failReason
        assert [swap.headers.get("mj-api-secret") for swap in emulator.swaps] == ["outside-key"]
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        emulator.stop()
    assert process.returncode == 0, output
    assert "Swapdrop local stack is up" in output
    assert "outside-key" not in output, "the API key must not be printed"
    assert not info_file.exists(), "the info file goes away with the stack"


def test_swapdrop_demo_leaves_a_swapped_image(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(BIN / "swapdrop"), "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert '"status": "SUCCESS"' in completed.stdout
    assert f"Result image: {tmp_path / 'result.png'}" in completed.stdout
    result = np.asarray(Image.open(tmp_path / "result.png").convert("RGB"), dtype=np.int16)
    target = np.asarray(Image.open(io.BytesIO((tmp_path / "target.png").read_bytes())).convert("RGB"), dtype=np.int16)
    assert result.shape == target.shape
    changed = np.abs(result - target).max(axis=2) > 12
    assert 0.01 < changed.mean() < 0.25
    assert (tmp_path / "side_by_side.png").stat().st_size > 0
    # The second swap, through the jobs API: SigV4, presigned POSTs, ?wait=, the presigned result URL.
    api_line = re.search(r"^API job ([0-9a-f]{32}): SUCCESS \(origin api\), result (\S+)$", completed.stdout, re.M)
    assert api_line, completed.stdout
    assert api_line.group(2) == f"results/hopper/jobs/{api_line.group(1)}.png"
    assert "the same job, nothing new created" in completed.stdout
    assert f"API result image: {tmp_path / 'api-result.png'}" in completed.stdout
    api_result = np.asarray(Image.open(tmp_path / "api-result.png").convert("RGB"), dtype=np.int16)
    assert api_result.shape == target.shape
    assert 0.01 < (np.abs(api_result - target).max(axis=2) > 12).mean() < 0.25
    assert "Warning" not in completed.stdout + completed.stderr
