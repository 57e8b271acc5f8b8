"""Shared pieces for the emulator's tests: a fake engine, a callback receiver, submit helpers.

Everything runs over real HTTP on 127.0.0.1; the fake engine keeps it fast.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from PIL import Image
from swapdrop_emulator import EmulatorConfig, SwapEmulator

API_KEY = "emulator-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SOURCE = b"\x89PNG source face bytes"
TARGET = b"\xff\xd8\xff target photo bytes"
NO_FACE = b"no-face: a landscape"
LIFECYCLE = [("SUBMITTED", "0%"), ("IN_PROGRESS", "15%"), ("IN_PROGRESS", "45%"), ("IN_PROGRESS", "80%")]


def png(color: tuple[int, int, int] = (200, 120, 40), size: tuple[int, int] = (6, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


RESULT_PNG = png()


def fake_engine(source: bytes, target: bytes) -> bytes:
    if target.startswith(b"no-face"):
        raise ValueError("no face found in the target image")
    return RESULT_PNG


class BlockingEngine:
    """Holds every swap until released (so tests can fill the worker pool deterministically)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0

    def __call__(self, source: bytes, target: bytes) -> bytes:
        self.calls += 1
        if not self.gate.wait(10):
            raise RuntimeError("the test never released the engine")
        return RESULT_PNG


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def swap_body(source: bytes = SOURCE, target: bytes = TARGET, **extra: Any) -> dict[str, Any]:
    return {"sourceBase64": b64(source), "targetBase64": b64(target), **extra}


def submit(
    emulator: SwapEmulator,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    **extra: Any,
) -> requests.Response:
    return requests.post(
        f"{emulator.url}/mj/insight-face/swap",
        json=body if body is not None else swap_body(**extra),
        headers=AUTH if headers is None else headers,
        timeout=timeout,
    )


def accepted_id(response: requests.Response) -> str:
    payload = response.json()
    assert payload["code"] in (1, 22), payload
    return payload["result"]


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{message} not met within {timeout} s")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    """The body as sent (to check JSON text Python would not write, such as 1e400)."""

    @property
    def step(self) -> tuple[str, str]:
        return self.body["status"], self.body["progress"]


class CallbackReceiver:
    """Our side of the callbacks: records every POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.path, headers, json.loads(raw), raw))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hook(self, name: str = "job-1") -> str:
        return f"{self.url}/callbacks/{name}?token=secret-token-{name}"

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def steps(self, task_id: str | None = None) -> list[tuple[str, str]]:
        return [r.step for r in self.received if task_id is None or r.body["id"] == task_id]


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., SwapEmulator]]:
    made: list[SwapEmulator] = []

    def make(**overrides: Any) -> SwapEmulator:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "engine": fake_engine,
            "step_delay": 0.005,
            "callback_workers": 1,
            **overrides,
        }
        emulator = SwapEmulator(EmulatorConfig(**settings)).start()
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., SwapEmulator]) -> SwapEmulator:
    return make_emulator()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()
