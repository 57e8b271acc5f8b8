"""`swapdrop-emulator` as a user runs it: starts, writes the info file, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from swapdrop_emulator.cli import build_parser, config_from_args, main
from swapdrop_emulator.engines import echo_engine

from .conftest import b64, png

LOCAL = Path(__file__).resolve().parents[2] / "local"
KEY = "cli-secret-key-123"


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    info_file = tmp_path / "emulator.json"
    command = [sys.executable, "-m", "swapdrop_emulator", "--api-key", KEY, "--engine", "echo", "--step-delay"]
    process = subprocess.Popen(
        [*command, "0.01", "--info-file", str(info_file), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(LOCAL), "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 30
    while not info_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the emulator did not start: {process.communicate()[0]}")
        time.sleep(0.05)
    return process, info_file


def test_the_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    process, info_file = _start(tmp_path, "--fault", "list:status=503", "--auth-style", "mj-api-secret")
    try:
        info = json.loads(info_file.read_text())
        url = info["url"]
        assert url.startswith("http://127.0.0.1:") and info["port"] == int(url.rsplit(":", 1)[1])
        headers = {"mj-api-secret": KEY}
        body = {"sourceBase64": b64(png((1, 1, 1))), "targetBase64": b64(png((9, 9, 9))), "state": "cli"}
        task_id = requests.post(f"{url}/mj/insight-face/swap", json=body, headers=headers, timeout=5).json()["result"]
        deadline = time.monotonic() + 10
        while (snapshot := requests.get(f"{url}/mj/task/{task_id}/fetch", headers=headers, timeout=5).json())[
            "status"
        ] != "SUCCESS":
            assert time.monotonic() < deadline, snapshot
            time.sleep(0.05)
        assert requests.get(snapshot["imageUrl"], timeout=5).content[:8] == b"\x89PNG\r\n\x1a\n"
        listing = requests.post(f"{url}/mj/task/list-by-condition", json={"ids": [task_id]}, headers=headers, timeout=5)
        assert listing.status_code == 503, "the --fault applies"
        assert requests.post(f"{url}/mj/insight-face/swap", json=body, timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert f"swapdrop-emulator listening on {url}" in output
    assert "submit accepted" in output and "stopped" in output
    assert KEY not in output, "the API key is never printed"
    assert b64(png((1, 1, 1)))[:20] not in output, "nor image data"
    assert not info_file.exists(), "the info file goes away with the emulator"


def test_sigint_stops_it_too(tmp_path: Path) -> None:
    process, _ = _start(tmp_path)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output


def test_a_bad_fault_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--fault", "explode"])
    assert exit_info.value.code == 2
    assert "unknown fault 'explode'" in capsys.readouterr().err


def test_flags_map_onto_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWAPDROP_EMULATOR_API_KEY", "from-env")
    args = build_parser().parse_args(
        [
            "--auth-style", "none", "--concurrency", "3", "--queue-size", "4", "--queue-full-code", "9",
            "--step-delay", "0.2", "--result-ttl", "30", "--expired-status", "410", "--fault", "code=23@0.3",
            "--fault", "latency=1; drop_callbacks", "--seed", "5", "--engine", "echo", "--manual",
            "--unknown-task", "null", "--notify-hook", "http://127.0.0.1:1/hook", "--max-image-bytes", "2048",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.api_key, config.auth_style, config.concurrency, config.queue_size) == ("from-env", "none", 3, 4)
    assert (config.queue_full_code, config.step_delay, config.result_ttl_seconds) == (9, 0.2, 30)
    assert (config.expired_status, config.seed, config.engine, config.auto_run) == (410, 5, echo_engine, False)
    assert config.faults == ("code=23@0.3", "latency=1; drop_callbacks")
    assert (config.unknown_task, config.notify_hook, config.max_image_bytes) == (
        "null",
        "http://127.0.0.1:1/hook",
        2048,
    )
    assert config_from_args(build_parser().parse_args(["--api-key", "flag"])).api_key == "flag"


def test_task_list_and_drip_flags() -> None:
    config = config_from_args(build_parser().parse_args(["--no-task-list", "--drip-length", "50"]))
    assert (config.task_list, config.drip_length) == (False, 50)
    default = config_from_args(build_parser().parse_args([]))
    assert (default.task_list, default.drip_length) == (True, 1_000_000)
