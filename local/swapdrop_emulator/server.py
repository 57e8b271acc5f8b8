"""The HTTP side: a ThreadingHTTPServer (daemon threads, one per connection, so a held or
dripping answer never blocks the others) that hands parsed requests to the emulator and writes
its replies, including the ones that never come (held, reset) or never end (drip)."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .hostile import dumps

log = logging.getLogger("swapdrop_emulator.http")


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes


@dataclass
class HttpReply:
    status: int = 200
    body: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (latency faults)."""
    hold: float | None = None
    """Answer nothing: hold the connection this long, then close it (timeout faults)."""
    reset: bool = False
    """Answer nothing: close the connection at once (an RST)."""
    drip: float | None = None
    """Declare `declared_length` bytes, then send one every `drip` seconds (body first, then
    zeros) until the client goes or the emulator stops."""
    declared_length: int = 0

    @classmethod
    def json(cls, payload: Any, status: int = 200, **kwargs: Any) -> HttpReply:
        body = dumps(payload).encode("utf-8")
        return cls(status, body, "application/json; charset=utf-8", **kwargs)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handle: Callable[[HttpRequest], HttpReply],
        stopping: threading.Event,
        body_limit: int,
    ) -> None:
        self.handle_request_callback = handle
        self.stopping = stopping
        self.body_limit = body_limit
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        super().__init__(address, _Handler)

    def serve_until_stopped(self) -> None:
        """serve_forever, but woken at once by stop() instead of polling."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self.stopping.is_set():
                ready = selector.select(timeout=1.0)
                if self.stopping.is_set():
                    break
                if any(key.fileobj is self for key, _ in ready):
                    self._handle_request_noblock()
                self.service_actions()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"!")

    def server_close(self) -> None:
        super().server_close()
        for end in (self._wake_reader, self._wake_writer):
            end.close()

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake every handler blocked on a kept-alive or held connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionResetError | BrokenPipeError):  # a client that gave up: not our fault
            log.debug("client %s went away: %s", client_address, type(error).__name__)
            return
        log.exception("unexpected error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "swapdrop-emulator"
    sys_version = ""
    timeout = 120  # an idle kept-alive connection is closed after this long
    # Status line, headers and body go out in separate sends: on a kept connection Nagle's algorithm would
    # hold each later write for the client's delayed ACK (40 ms an answer). The relays it stands in for do not.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except BodyTooLarge:
            self.close_connection = True
            self._write(HttpReply(413, b"", ""))
            return
        except (BadBody, ValueError, OSError):
            self.close_connection = True
            self._write(HttpReply(400, b"", ""))
            return
        url = urlsplit(self.path)
        request = HttpRequest(self.command, url.path, url.query, {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            reply = self.server.handle_request_callback(request)
        except Exception:
            log.exception("the emulator failed on %s %s", self.command, url.path)
            reply = HttpReply.json({"error": "internal emulator error"}, 500)
        self._write(reply)

    def _read_body(self) -> bytes:
        limit = self.server.body_limit
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise BadBody("the connection closed inside a chunked body")
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > limit:
                    raise BodyTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise BadBody("negative Content-Length")
        if length > limit:
            raise BodyTooLarge
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            raise BadBody("the body ended early")
        return data

    def _write(self, reply: HttpReply) -> None:
        stopping = self.server.stopping
        if reply.delay > 0:
            stopping.wait(reply.delay)
        if reply.reset:
            self.close_connection = True
            with contextlib.suppress(OSError):  # linger 0: close() sends an RST instead of a FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if reply.hold is not None:
            self.close_connection = True
            stopping.wait(reply.hold)
            return
        if reply.drip is not None:
            self._drip(reply)
            return
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection or stopping.is_set():
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up waiting

    def _drip(self, reply: HttpReply) -> None:
        """One byte every `reply.drip` seconds; ends when the client closes or the emulator stops."""
        self.close_connection = True
        stopping, sent = self.server.stopping, 0
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(reply.declared_length))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            if self.command == "HEAD":
                return
            while sent < reply.declared_length and not stopping.is_set():
                self.wfile.write(reply.body[sent : sent + 1] or b"\0")
                self.wfile.flush()
                sent += 1
                if stopping.wait(reply.drip):
                    break
        except OSError:
            pass  # the client gave up, as it should
        log.info("drip answer ended after %d of %d bytes", sent, reply.declared_length)
