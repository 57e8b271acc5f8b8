"""The local stack's kept-alive HTTP servers (the HTTP API adapter, the S3 gateway, the swap emulator) answer
without Nagle's algorithm. Each writes an answer in several sends; on a kept connection Nagle held every later
send for the client's delayed ACK, 40 ms an answer, which AWS and the relays do not add. (Their clients,
urllib3 and http.client, already send requests so.) Checked on the sockets themselves, not by timing."""

from __future__ import annotations

import http.client
import socket
import socketserver
from collections.abc import Iterator

import pytest
from swapdrop_emulator import EmulatorConfig, SwapEmulator
from swapdrop_local.http_api import HttpApiServer
from swapdrop_local.s3_gateway import Keys, S3Gateway

pytestmark = pytest.mark.integration


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """TCP_NODELAY of every connection a stdlib HTTP server's handler accepts, as set up."""
    seen: list[int] = []
    setup = socketserver.StreamRequestHandler.setup

    def recorded(self: socketserver.StreamRequestHandler) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(socketserver.StreamRequestHandler, "setup", recorded)
    yield seen


def get(url: str, path: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_http_api_adapter_answers_without_nagle(accepted: list[int]) -> None:
    api = HttpApiServer([]).start()
    try:
        assert get(api.url, "/nothing") == 404
    finally:
        api.stop()
    assert accepted and all(accepted)


def test_the_emulator_answers_without_nagle(accepted: list[int]) -> None:
    emulator = SwapEmulator(EmulatorConfig(api_key="k", auto_run=False)).start()
    try:
        get(emulator.url, "/mj/task/1/fetch")
    finally:
        emulator.stop()
    assert accepted and all(accepted)


def test_the_s3_gateway_answers_without_nagle(accepted: list[int]) -> None:
    upstream = socket.create_server(("127.0.0.1", 0))  # never asked: the request is refused before
    try:
        gateway = S3Gateway(f"http://127.0.0.1:{upstream.getsockname()[1]}", Keys({"local": "local"}, "us-east-1"))
        gateway.start()
        try:
            assert get(gateway.url, "/bucket/key?X-Amz-Signature=forged") in (400, 403)
        finally:
            gateway.stop()
    finally:
        upstream.close()
    assert accepted and all(accepted)
