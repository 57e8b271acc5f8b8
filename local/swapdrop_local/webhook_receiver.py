"""A small webhook receiver for the local stack, its tests and the demo: records every delivery and
answers with scripted statuses (a number, "drop": close the connection unanswered, "hang": answer
nothing until the sender gives up), then 200 once the script runs out. Verifies signatures when given
the whsec_ keys (`verified` on each delivery). Binds 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HANG_SECONDS = 20.0
"""Longer than the sender's 10 s timeout."""


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: str
    """The status sent back, or "drop" / "hang"."""
    verified: bool | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    keys: list[str] = field(default_factory=list)
    script: list[int | str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, *script: int | str) -> None:
        """The next answers, in order (later requests get 200)."""
        with self._lock:
            self.script = list(script)

    def received(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    step = receiver.script.pop(0) if receiver.script else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = Delivery(self.path, headers, body, str(step), receiver._verify(body, headers))
                with receiver._lock:
                    receiver.deliveries.append(delivery)
                if step == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if step == "hang":
                    receiver._stopping.wait(HANG_SECONDS)
                    self.close_connection = True
                    return
                self.send_response(int(step))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, count: int, path: str | None = None, timeout: float = 60.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.1)
        raise TimeoutError(f"{len(self.received(path))} of {count} deliveries to {path or 'any path'} arrived")

    def _verify(self, body: bytes, headers: dict[str, str]) -> bool | None:
        if not self.keys:
            return None
        for key in self.keys:
            try:
                Webhook(key).verify(body, headers, json_parse=False)
                return True
            except WebhookVerificationError:
                continue
        return False

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
