"""An HTTP server that turns requests into API Gateway HTTP API (payload v2) events.

It serves the template's HttpApi routes, so the swap API's callbacks and the jobs API's
clients reach the real handlers over real HTTP, as they reach API Gateway on AWS. A route
that needs an authorizer (AWS_IAM, JWT) is checked before anything is invoked and refused
with API Gateway's status and body; the event then carries requestContext.authorizer.
Like API Gateway it reads the whole body (Content-Length or chunked) within a deadline
before invoking, refuses bad framing with a 4xx, and always answers: 500 for a function
error, 429 when the function is throttled, 503 when the integration times out.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from swapdrop_local.auth import Authorizer, AuthRefused, IncomingRequest
from swapdrop_local.functions import THROTTLED, TIMED_OUT
from swapdrop_local.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
BODY_DEADLINE_SECONDS = 10.0
"""The whole body must arrive within this; a slow or partial one is answered 408."""
IDLE_TIMEOUT_SECONDS = 30.0
"""A connection that sends nothing for this long (headers or keep-alive) is closed."""
INTEGRATION_TIMEOUT_SECONDS = 30.0
"""API Gateway's default (and maximum) integration timeout for HTTP APIs."""
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")

log = logging.getLogger("swapdrop.local")


class Route:
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler,
        function_name: str,
        timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        auth: str = "NONE",
    ) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.function_name = function_name
        self.timeout = timeout
        """The integration timeout (the template's TimeoutInMillis): past it the client gets 503."""
        self.auth = auth
        """The route's authorizer: NONE (open), AWS_IAM or JWT (the server's authorizer of that name)."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
        self._regex = re.compile(f"^{pattern}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self._regex.match(path)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def build_event(
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    text_types = ("application/json", "text/", "application/x-www-form-urlencoded")
    is_text = any(headers.get("content-type", "").startswith(t) for t in text_types)
    try:
        body_text, encoded = (body.decode(), False) if is_text else (base64.b64encode(body).decode(), True)
    except UnicodeDecodeError:
        body_text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": f"local-{int(now * 1000)}",
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": path_parameters,
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body_text
    return event


class BadRequest(Exception):
    """A request API Gateway would refuse before invoking anything."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyReader:
    """Reads a request body from `rfile` with one deadline for the whole body.

    The socket's timeout is re-armed to the time left before every read, so a client
    that drips one byte at a time cannot hold the thread past the deadline."""

    def __init__(self, rfile: BinaryIO, connection: socket.socket, deadline_seconds: float) -> None:
        self._rfile = rfile
        self._connection = connection
        self._deadline = time.monotonic() + deadline_seconds

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise BadRequest(408, "Request Timeout")
        self._connection.settimeout(remaining)

    def exact(self, length: int) -> bytes:
        parts, received = [], 0
        while received < length:
            self._arm()
            try:
                part = self._rfile.read1(min(length - received, 65536))  # type: ignore[attr-defined]
            except TimeoutError:
                raise BadRequest(408, "Request Timeout") from None
            if not part:  # the client stopped sending (perhaps half-closed): it still gets an answer
                raise BadRequest(400, "Request body ended before its Content-Length")
            parts.append(part)
            received += len(part)
        return b"".join(parts)

    def line(self, limit: int) -> bytes:
        """One line, CRLF included; never reads past it (a pipelined request may follow)."""
        line = b""
        while True:
            self._arm()
            try:
                buffered = self._rfile.peek(1)  # type: ignore[attr-defined]
            except TimeoutError:
                raise BadRequest(408, "Request Timeout") from None
            if not buffered:
                raise BadRequest(400, "Malformed chunked body: it ended before its last chunk")
            end = buffered.find(b"\n")
            line += self._rfile.read(end + 1 if end >= 0 else len(buffered))
            if len(line) > limit:
                raise BadRequest(400, "Malformed chunked body: line too long")
            if end >= 0:
                return line

    def chunked(self, max_bytes: int) -> bytes:
        body = bytearray()
        while True:
            size_text = self.line(1024).rstrip(b"\r\n").split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise BadRequest(400, "Malformed chunked body: bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > max_bytes:
                raise BadRequest(413, "Request Entity Too Large")
            body += self.exact(size)
            if self.line(2) not in (b"\r\n", b"\n"):
                raise BadRequest(400, "Malformed chunked body: chunk longer than its size")
        for _ in range(64):  # trailer fields, then the empty line
            if self.line(8192) in (b"\r\n", b"\n"):
                return bytes(body)
        raise BadRequest(400, "Malformed chunked body: too many trailers")


def read_body(headers: Any, reader: BodyReader, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request's body as its framing headers say, or BadRequest as API Gateway answers."""
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings:
        if lengths:
            raise BadRequest(400, "Content-Length and Transfer-Encoding cannot both be set")
        codings = [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
        if codings != ["chunked"]:
            raise BadRequest(400, "Unsupported Transfer-Encoding")
        return reader.chunked(max_bytes)
    if not lengths:
        return b""
    values = {value.strip() for value in lengths}
    if len(values) != 1 or not _CONTENT_LENGTH.fullmatch(next(iter(values))):
        raise BadRequest(400, "Invalid Content-Length")
    length = int(values.pop())
    if length > max_bytes:
        raise BadRequest(413, "Request Entity Too Large")
    return reader.exact(length) if length else b""


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # a burst of callbacks waits in the backlog instead of being reset
    daemon_threads = True
    block_on_close = False


class HttpApiServer:
    """Serve `routes` on 127.0.0.1; `url` is the base URL once started."""

    def __init__(
        self,
        routes: list[Route],
        host: str = "127.0.0.1",
        port: int = 0,
        body_deadline: float = BODY_DEADLINE_SECONDS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        authorizers: dict[str, Authorizer] | None = None,
    ) -> None:
        self.routes = routes
        self.authorizers: dict[str, Authorizer] = dict(authorizers or {})
        """Checks for routes whose auth is not NONE, by auth name (AWS_IAM, JWT)."""
        self.body_deadline = body_deadline
        self.idle_timeout = idle_timeout
        self._server = _Server((host, port), self._request_handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HttpApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        routes = self.routes
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = server.idle_timeout  # socket timeout for every connection (headers, keep-alive)
            # Status line, headers and body go out in separate sends: on a kept connection Nagle's algorithm
            # would hold each later write for the client's delayed ACK (40 ms an answer). AWS answers at once.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # query strings carry tokens
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                reader = BodyReader(self.rfile, self.connection, server.body_deadline)
                try:
                    body = read_body(self.headers, reader)
                except BadRequest as refused:
                    self.close_connection = True  # the rest of the body, if any, is not worth reading
                    try:
                        self._reply(refused.status, {"message": refused.message})
                    except OSError:  # the client has gone altogether: nobody to answer
                        return
                    self._linger()
                    return
                except OSError:
                    self.close_connection = True
                    return
                self.connection.settimeout(server.idle_timeout)
                for route in routes:
                    params = route.match(self.command, split.path)
                    if params is not None:
                        authorizer_context = self._authorize(route, split.path, split.query, body)
                        if authorizer_context is None:
                            return
                        event = build_event(
                            route,
                            self.command,
                            split.path,
                            split.query,
                            _joined_headers(self.headers.items()),
                            body,
                            params,
                            self.client_address[0],
                        )
                        if authorizer_context:
                            event["requestContext"]["authorizer"] = authorizer_context
                        self._invoke(route, event)
                        return
                self._reply(404, {"message": "Not Found"})

            def _authorize(self, route: Route, raw_path: str, raw_query: str, body: bytes) -> dict[str, Any] | None:
                """The authorizer's context ({} for an open route), or None once the refusal is answered."""
                if route.auth == "NONE":
                    return {}
                route_key = f"{route.method} {route.path}"
                authorizer = server.authorizers.get(route.auth)
                if authorizer is None:  # a route table this server cannot enforce: never serve it open
                    log.error("%s: no %s authorizer on this server: 500", route_key, route.auth)
                    self._reply(500, {"message": "Internal Server Error"})
                    return None
                request = IncomingRequest(self.command, raw_path, raw_query, list(self.headers.items()), body)
                try:
                    return authorizer.authorize(request)
                except AuthRefused as refused:  # the reason names the check, never a token or signature
                    log.info("%s: %s refused (%s): %d", route_key, route.auth, refused.reason, refused.status)
                    payload = json.dumps({"message": refused.message}).encode()
                    self._send(refused.status, {"content-type": "application/json", **refused.headers}, payload)
                    return None

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

            def __getattr__(self, name: str) -> Any:
                """Any other method (OPTIONS, TRACE, QUERY...) is routed like the rest: API Gateway answers
                404 where no route takes it, never http.server's 501 HTML page."""
                if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
                    return self._handle
                raise AttributeError(name)

            def _invoke(self, route: Route, event: dict[str, Any]) -> None:
                """Invoke within the integration timeout; every outcome gets an answer."""
                outcome: dict[str, Any] = {}

                def call() -> None:
                    try:
                        context = LocalLambdaContext(route.function_name, timeout_seconds=int(route.timeout))
                        outcome["result"] = route.handler(event, context)
                    except Exception as exc:
                        outcome["error"] = exc

                worker = threading.Thread(target=call, name=f"invoke-{route.function_name}", daemon=True)
                worker.start()
                worker.join(route.timeout)  # on a timeout the invocation runs on, as on AWS
                route_key = f"{route.method} {route.path}"
                if worker.is_alive():
                    log.warning("%s: integration timed out after %.0f s: 503", route_key, route.timeout)
                    self._reply(503, {"message": "Service Unavailable"})
                    return
                error = outcome.get("error")
                if error is not None:
                    error_type = getattr(error, "error_type", type(error).__name__)
                    status, message = {
                        THROTTLED: (429, "Too Many Requests"),
                        TIMED_OUT: (503, "Service Unavailable"),
                    }.get(error_type, (500, "Internal Server Error"))
                    log.warning("%s: %s failed with %s: %d", route_key, route.function_name, error_type, status)
                    self._reply(status, {"message": message})
                    return
                try:
                    status, headers, data = lambda_response(outcome.get("result"))
                except (TypeError, ValueError, AttributeError) as exc:
                    log.warning("%s: %s returned a malformed response (%s): 500", route_key, route.function_name, exc)
                    self._reply(500, {"message": "Internal Server Error"})
                    return
                self._send(status, headers, data)

            def _linger(self, seconds: float = 2.0, max_bytes: int = 2 * MAX_BODY_BYTES) -> None:
                """Close gently: a client still sending would otherwise get a reset, not our answer."""
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_WR)
                    deadline, drained = time.monotonic() + seconds, 0
                    while drained < max_bytes and (remaining := deadline - time.monotonic()) > 0:
                        self.connection.settimeout(remaining)
                        data = self.connection.recv(65536)
                        if not data:
                            break
                        drained += len(data)
                except OSError:
                    pass

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                self._send(status, {"content-type": "application/json"}, json.dumps(payload).encode())

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        if name not in ("content-length", "connection", "transfer-encoding"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    if self.close_connection:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":  # a HEAD answer has the headers of the body, never the body
                        self.wfile.write(data)
                except OSError:  # the client went away; nothing left to tell it
                    self.close_connection = True

        return RequestHandler


def _joined_headers(items: Any) -> dict[str, str]:
    """Header names lower-cased; a repeated header's values joined with commas, as API Gateway does."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def lambda_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A payload v2 Lambda result as API Gateway turns it into an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):  # v2: anything else is a JSON body
        data = result if isinstance(result, str) else json.dumps(result)
        return 200, {"content-type": "application/json"}, data.encode()
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} out of range")
    return status, headers, data
