"""moto's server in a process of its own, as AWS's services run apart from the functions that call them.

In the stack's process, moto shared one GIL with the S3 gateway, the HTTP API adapters, the SQS event
sources, the emulator and whatever else the caller ran there (a bench, a test's uploads): every AWS call of
every function waited for that process's turn, so a job's dozen calls took several times as long as the
same calls against an idle server. Here moto has a CPU of its own. The stack talks to it over HTTP as
before; nothing in the functions changes.

The child applies the local stack's patches to moto (`moto_routing.patch_moto`), binds 127.0.0.1 on a free
port, prints `READY host port`, and serves until its stdin closes: when the stack stops it, or when the
stack's process dies without stopping it (no orphan keeps the port). If the child dies on its own (killed,
out of memory), `on_exit` is told its exit code: every AWS call would now be refused, and AWS itself does
not vanish, so the stack stops and says why rather than going on as a broken stand-in.

With `count_calls` the child counts every request by caller and operation (`swapdrop_local.aws_calls`) and
answers the count at CALLS_PATH, which `RemoteAwsCallLog` reads.

    python -m swapdrop_local.moto_process [--count-calls]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from swapdrop_local.aws_calls import AwsCall, AwsCallLog

READY = "READY"
START_TIMEOUT_SECONDS = 60.0
"""moto's server imports in 1-3 s; a machine under load can take much longer."""
STOP_TIMEOUT_SECONDS = 10.0
CALLS_PATH = "/_swapdrop/aws-calls"
"""Where a counting child answers its call log (never counted itself; not an AWS path)."""


class MotoProcessError(RuntimeError):
    pass


class MotoProcess:
    """Start, address and stop moto's server in a child process (the interface of moto's ThreadedMotoServer)."""

    def __init__(self, count_calls: bool = False, on_exit: Callable[[int], None] | None = None) -> None:
        """`on_exit(returncode)`: called (from a watcher thread) if the child ends without `stop()`."""
        self.count_calls = count_calls
        self.command = [sys.executable, "-m", "swapdrop_local.moto_process"] + (
            ["--count-calls"] if count_calls else []
        )
        self.on_exit = on_exit
        self._process: subprocess.Popen[str] | None = None
        self._address: tuple[str, int] | None = None

    def start(self) -> None:
        # The child imports what this process imports, from where this process found it.
        environment = os.environ | {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment, text=True
        )
        line = _read_line(self._process, START_TIMEOUT_SECONDS)
        parts = line.split()
        if len(parts) != 3 or parts[0] != READY:
            self.stop()
            raise MotoProcessError(f"moto's server did not start: {line.strip() or 'it exited'}")
        self._address = (parts[1], int(parts[2]))
        threading.Thread(target=self._watch, args=(self._process,), name="moto-process-watch", daemon=True).start()

    def _watch(self, process: subprocess.Popen[str]) -> None:
        returncode = process.wait()
        if self._process is process and self.on_exit is not None:  # stop() forgets the process first
            self.on_exit(returncode)

    def get_host_and_port(self) -> tuple[str, int]:
        if self._address is None:
            raise MotoProcessError("moto's server is not running")
        return self._address

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def calls(self) -> RemoteAwsCallLog:
        if not self.count_calls:
            raise MotoProcessError("this moto server does not count calls (count_calls=False)")
        host, port = self.get_host_and_port()
        return RemoteAwsCallLog(f"http://{host}:{port}")

    def stop(self) -> None:
        process, self._process, self._address = self._process, None, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()  # the child's signal to stop
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            if process.stdout:
                process.stdout.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first line, or "" when it exits or does not answer in time (then it is killed)."""
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not lines:
        process.kill()
        process.wait()
        return ""
    return lines[0]


class RemoteAwsCallLog:
    """A counting child's call log, read over HTTP (a CallLog: `mark()` and `since(mark)`). It records
    nothing itself: the child counts."""

    def __init__(self, endpoint: str) -> None:
        self._url = endpoint + CALLS_PATH

    def _read(self, since: int) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self._url}?since={since}", timeout=30) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def mark(self) -> int:
        return int(self._read(-1)["total"])

    def since(self, mark: int = 0) -> list[AwsCall]:
        return [AwsCall(*call) for call in self._read(mark)["calls"]]


def serve(count_calls: bool) -> None:
    from moto.server import ThreadedMotoServer

    from swapdrop_local.aws_calls import CountingMotoServer
    from swapdrop_local.moto_routing import patch_moto

    patch_moto()
    server: Any
    if count_calls:
        server = CountingMotoServer(AwsCallLog(), answer_path=CALLS_PATH)
    else:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(READY, host, port, flush=True)
    try:
        sys.stdin.read()  # until the stack closes it, or its process ends
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count-calls", action="store_true", help=f"count requests; answer them at {CALLS_PATH}")
    args = parser.parse_args(argv)
    serve(args.count_calls)


if __name__ == "__main__":
    main()
