"""`swapdrop local` when its AWS stand-in dies under it: moto's process killed (out of memory, a stray
`kill`). AWS does not vanish, so the stack must not go on as a broken stand-in, refusing every call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of `pid`'s children, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append((int(entry.name), command))
    return found


def test_swapdrop_local_stops_and_says_why_when_motos_process_dies() -> None:
    process = subprocess.Popen(
        [str(BIN / "swapdrop"), "local", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        up = json.loads(process.stdout.readline())
        assert up["event"] == "up", up
        (moto,) = [pid for pid, command in _children(process.pid) if "swapdrop_local.moto_process" in command]
        os.kill(moto, signal.SIGKILL)
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "moto's server (the local AWS) died (killed by signal 9)" in err
    stopped = json.loads(out.strip().splitlines()[-1])
    assert stopped["event"] == "stopped" and "died" in stopped["failure"]
