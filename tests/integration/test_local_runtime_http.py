"""The local HTTP adapter answers every request as API Gateway would: bad framing is a
400, a chunked body reaches the handler, a slow body is cut off at a deadline without
holding up other requests, a burst is served without resets, and function errors,
throttles and timeouts are answered (500, 429, 503) rather than dropped."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from swapdrop_local.functions import FunctionSpec, LocalFunction
from swapdrop_local.http_api import HttpApiServer, Route

HANDLERS = Path(__file__).resolve().parent / "runtime_handlers"


def _echo(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    body = event.get("body") or ""
    return {"statusCode": 200, "body": json.dumps({"length": len(body), "body": body[:64]})}


@pytest.fixture
def serve() -> Iterator[Callable[..., HttpApiServer]]:
    servers: list[HttpApiServer] = []

    def start(handler: Callable = _echo, **kwargs: Any) -> HttpApiServer:
        timeout = kwargs.pop("route_timeout", 30.0)
        route = Route("POST", "/callbacks/{jobId}", handler, "CallbackFunction", timeout)
        servers.append(HttpApiServer([route], **kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _raw(server: HttpApiServer, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send raw bytes; the status and body of the answer (the connection must answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def _post(server: HttpApiServer, body: bytes = b"{}", timeout: float = 30) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("POST", "/callbacks/job-1?token=t", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


HEAD = b"POST /callbacks/job-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"+5", b"5, 6"])
def test_an_invalid_content_length_is_a_400(serve, length: bytes) -> None:
    server = serve()
    status, body = _raw(server, HEAD + b"Content-Length: " + length + b"\r\n\r\n{}", timeout=10)
    assert status == 400 and json.loads(body)["message"] == "Invalid Content-Length"


def test_a_chunked_body_reaches_the_handler(serve) -> None:
    server = serve()
    payload = json.dumps({"id": "task-1", "status": "SUCCESS"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:7], payload[7:]))
    status, body = _raw(server, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert status == 200
    assert json.loads(body) == {"length": len(payload), "body": payload.decode()}


def _half_closed(server: HttpApiServer, request: bytes) -> tuple[int, bytes]:
    """Send part of a request, stop sending (shutdown SHUT_WR), and read the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def test_a_body_cut_short_by_a_half_close_is_answered_400(serve) -> None:
    calls: list[dict[str, Any]] = []
    server = serve(lambda event, context: calls.append(event) or _echo(event, context))
    status, body = _half_closed(server, HEAD + b"Content-Length: 500\r\n\r\n" + b"{" * 84)
    assert status == 400 and "ended before its Content-Length" in json.loads(body)["message"]
    chunked = HEAD + b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n'
    status, body = _half_closed(server, chunked)
    assert status == 400 and "ended before its last chunk" in json.loads(body)["message"]
    assert calls == []  # nothing was invoked with half a body


def test_chunked_framing_errors_and_oversized_chunked_bodies_are_refused(serve) -> None:
    server = serve()
    bad_size = HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    assert _raw(server, bad_size)[0] == 400
    both = HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert _raw(server, both)[0] == 400
    piece = b"x" * (1024 * 1024)
    huge = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(11)) + b"0\r\n\r\n"
    assert _raw(server, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + huge)[0] == 413


def test_a_slow_partial_body_is_answered_at_the_deadline_while_other_requests_are_served(serve) -> None:
    server = serve(body_deadline=1.5)
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.create_connection((host, int(port)), timeout=30)
    stalled.sendall(HEAD + b"Content-Length: 100\r\n\r\n" + b'{"id": ')
    try:
        assert _post(server, b'{"id": "other"}')[0] == 200, "another request is served meanwhile"
        stalled.sendall(b"x")  # a drip does not extend the deadline
        response = http.client.HTTPResponse(stalled)
        response.begin()
        assert response.status == 408
    finally:
        stalled.close()


def test_240_concurrent_posts_are_all_answered(serve) -> None:
    def slowish(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(0.2)
        return _echo(event, context)

    server = serve(slowish)
    barrier = threading.Barrier(240)

    def one(_: int) -> int:
        barrier.wait(timeout=60)
        return _post(server, b'{"id": "x"}', timeout=60)[0]

    with ThreadPoolExecutor(max_workers=240) as pool:
        statuses = list(pool.map(one, range(240)))
    assert statuses == [200] * 240


def test_a_handler_error_is_a_500_and_a_late_answer_a_503(serve) -> None:
    def crash(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise RecursionError("maximum recursion depth exceeded")

    assert _post(serve(crash)) == (500, b'{"message": "Internal Server Error"}')

    def slow(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        time.sleep(3)
        return _echo(event, _context)

    assert _post(serve(slow, route_timeout=0.5)) == (503, b'{"message": "Service Unavailable"}')
    assert _post(serve(lambda e, c: {"statusCode": "oops"})) == (500, b'{"message": "Internal Server Error"}')


def test_a_busy_function_answers_429_then_serves_again(serve) -> None:
    spec = FunctionSpec("CallbackFunction", HANDLERS, "runtime_test_handler.lambda_handler", 30, 128, {})
    function = LocalFunction(spec, {}, [], 1, throttle_wait=0.2)
    try:
        function.warm_up()
        server = serve(lambda event, _context: function.invoke(event))
        busy = threading.Thread(target=function.invoke, args=({"action": "sleep", "seconds": 3},), daemon=True)
        busy.start()
        deadline = time.monotonic() + 30
        while not function.busy_worker_pids():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _post(server) == (429, b'{"message": "Too Many Requests"}')
        busy.join(timeout=30)
        status, body = _post(server, b'{"id": "after"}')
        assert status == 200 and json.loads(body)["length"] == len('{"id": "after"}')
    finally:
        function.close(grace=0)


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "QUERY", "PROPFIND", "HEAD"])
def test_a_method_no_route_takes_is_a_json_404_and_the_connection_keeps_working(serve, method: str) -> None:
    """API Gateway answers 404 {"message": "Not Found"} where no route matches, whatever the
    method; http.server would answer 501 with an HTML page. A HEAD answer has no body."""
    server = serve()
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, "/callbacks/job-1?token=t")
        response = connection.getresponse()
        body = response.read()
        assert response.status == 404
        assert response.getheader("content-type") == "application/json"
        assert body == (b"" if method == "HEAD" else b'{"message": "Not Found"}')
        connection.request("POST", "/callbacks/job-1?token=t", b"{}", {"Content-Type": "application/json"})
        follow_up = connection.getresponse()
        assert (follow_up.status, json.loads(follow_up.read())["length"]) == (200, 2)  # same connection, in step
    finally:
        connection.close()
