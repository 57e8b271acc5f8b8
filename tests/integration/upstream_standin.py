"""A scripted stand-in for the swap API, over real HTTP on 127.0.0.1.

It speaks the documented protocol (submit codes, task snapshots, list-by-condition,
fetch, unsigned callbacks with unknown extra fields) and lets a test decide every
answer. It performs no face swap: the "result" is a PNG it makes up.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from PIL import Image


@dataclass
class SubmittedSwap:
    headers: dict[str, str]
    body: dict[str, Any]
    source: bytes
    target: bytes
    source_mime: str
    target_mime: str


@dataclass
class Task:
    id: str
    notify_hook: str
    state: str
    status: str = "SUBMITTED"
    progress: str = "0%"
    image_url: str | None = None
    fail_reason: str | None = None
    submit_time: int = field(default_factory=lambda: int(time.time() * 1000))

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": "SWAP_FACE",
            "status": self.status,
            "prompt": None,
            "promptEn": None,
            "description": "",
            "state": self.state,
            "submitTime": self.submit_time,
            "startTime": None,
            "finishTime": None,
            "progress": self.progress,
            "imageUrl": self.image_url,
            "failReason": self.fail_reason,
            "properties": {},
            "buttons": [],
            # fields real implementations add, which receivers must ignore
            "botType": "INSIGHT_FACE",
            "instanceId": "standin-1",
            "useTime": 1234,
            "isReplicate": False,
        }


def _decode_data_url(value: str) -> tuple[bytes, str]:
    header, _, data = value.partition(",")
    mime = header.removeprefix("data:").split(";")[0] if data else "image/png"
    return base64.b64decode(data or value, validate=True), mime


def result_png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class UpstreamStandIn:
    def __init__(self, api_key: str = "test-api-key", auth_style: str = "bearer") -> None:
        self.api_key = api_key
        self.auth_style = auth_style
        self.swaps: list[SubmittedSwap] = []
        self.tasks: dict[str, Task] = {}
        self.responses: list[tuple[int, Any]] = []
        """Scripted answers to the next submits (status, JSON or None); then code 1."""
        self.list_requests: list[list[str]] = []
        self.result_image = result_png()
        self._ids = itertools.count(1729072764329000)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> UpstreamStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what tests drive -------------------------------------------------------

    def progress(self, task_id: str, status: str, progress: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        task.status, task.progress = status, progress
        return task.snapshot()

    def succeed(self, task_id: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        task.status, task.progress, task.image_url = "SUCCESS", "100%", f"{self.url}/results/{task_id}.png"
        return task.snapshot()

    def fail(self, task_id: str, reason: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        task.status, task.progress, task.fail_reason = "FAILURE", "", reason
        return task.snapshot()

    def callback(
        self, task_id: str, snapshot: dict[str, Any] | None = None, hook: str | None = None
    ) -> requests.Response:
        task = self.tasks[task_id]
        return requests.post(hook or task.notify_hook, json=snapshot or task.snapshot(), timeout=10)

    # --- the HTTP side ------------------------------------------------------------

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.auth_style == "bearer":
            return headers.get("authorization") == f"Bearer {self.api_key}"
        return headers.get("mj-api-secret") == self.api_key

    def _submit(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        source, source_mime = _decode_data_url(body["sourceBase64"])
        target, target_mime = _decode_data_url(body["targetBase64"])
        with self._lock:
            self.swaps.append(SubmittedSwap(headers, body, source, target, source_mime, target_mime))
            if self.responses:
                status, payload = self.responses.pop(0)
                if isinstance(payload, dict) and payload.get("code") in (1, 21, 22) and payload.get("result"):
                    self.tasks[payload["result"]] = Task(
                        payload["result"], body.get("notifyHook", ""), body.get("state", "")
                    )
                return status, payload
            task_id = str(next(self._ids))
            self.tasks[task_id] = Task(task_id, body.get("notifyHook", ""), body.get("state", ""))
        return 200, {"code": 1, "description": "提交成功", "result": task_id, "properties": {}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
                data = (
                    payload
                    if isinstance(payload, bytes)
                    else (b"" if payload is None else json.dumps(payload).encode())
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/results/"):
                    self._send(200, standin.result_image, "image/png")
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not standin._authorised(headers):
                    self._send(401, None)
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["mj", "task"] and parts[3] == "fetch":
                    task = standin.tasks.get(parts[2])
                    self._send(200, task.snapshot() if task else None)
                    return
                self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.loads(self.rfile.read(int(headers.get("content-length", 0))) or b"{}")
                if not standin._authorised(headers):
                    self._send(401, None)
                    return
                if self.path == "/mj/insight-face/swap":
                    self._send(*standin._submit(headers, body))
                elif self.path == "/mj/task/list-by-condition":
                    standin.list_requests.append(list(body.get("ids", [])))
                    found = [standin.tasks[i].snapshot() for i in body.get("ids", []) if i in standin.tasks]
                    self._send(200, found)
                else:
                    self._send(404, {"error": "not found"})

        return Handler
