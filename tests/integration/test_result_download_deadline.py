"""The result download's total budget against real sockets on 127.0.0.1.

The unit tests drive the budget with a fake clock; here a real server drips its body one
byte at a time (declared length 1,000,000), so the path through urllib3 (read1 and the
socket timeout narrowed to what is left) is the one that runs on Lambda. A tiny budget
keeps the test short; nothing here asserts on elapsed time.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from PIL import Image
from swapdrop.result_download import DownloadRefused, ResultDownloader


@dataclass
class Server:
    port: int
    sent: list[int] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/result.png"


def serve(handler) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    server = Server(listener.getsockname()[1])
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                server.requests.append(request)
                with contextlib.suppress(OSError):  # the client hung up: that is the point
                    handler(conn, server, stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def dripping() -> Iterator[Server]:
    def drip(conn: socket.socket, server: Server, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n")
        sent = 0
        while not stop.is_set() and sent < 1_000_000:
            conn.sendall(b"\x00")
            sent += 1
            server.sent.append(sent)
            time.sleep(0.2)

    yield from serve(drip)


@pytest.fixture
def chunked() -> Iterator[Server]:
    image = png_bytes()

    def send(conn: socket.socket, server: Server, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(image), 100):
            part = image[start : start + 100]
            conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    yield from serve(send)


def test_a_dripping_result_is_cut_off_at_the_budget(dripping: Server) -> None:
    downloader = ResultDownloader(max_bytes=2_000_000, allow_private=True, timeout_seconds=15, budget_seconds=1.0)
    with pytest.raises(DownloadRefused) as raised:
        downloader.download(dripping.url)
    assert str(raised.value) == "the result download took longer than 1 s (its total time budget) and was cut off"
    # The per-read timeout (15 s) alone never fires against a 0.2 s drip: the budget did.
    assert 0 < len(dripping.sent) < 100


def test_a_chunked_result_arrives_whole_through_the_same_reads(chunked: Server) -> None:
    downloader = ResultDownloader(max_bytes=2_000_000, allow_private=True, timeout_seconds=15, budget_seconds=10.0)
    result = downloader.download(chunked.url)
    assert result.data == png_bytes()
    assert result.extension == "png"


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(chunked: Server) -> None:
    """A name that answers loopback to the check and the metadata endpoint afterwards: the one
    lookup is the one connected to (a second lookup would have gone to 169.254.169.254)."""
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    lookups: list[str] = []

    def rebinding(host: str) -> list[str]:
        lookups.append(host)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    downloader = ResultDownloader(max_bytes=2_000_000, allow_private=True, resolver=rebinding, budget_seconds=10.0)
    result = downloader.download(f"http://result.test:{chunked.port}/result.png?sig=1")
    assert result.data == png_bytes()
    assert lookups == ["result.test"]
    (request,) = chunked.requests
    assert request.startswith(b"GET /result.png?sig=1 HTTP/1.1\r\n")
    assert f"\r\nHost: result.test:{chunked.port}\r\n".encode() in request
