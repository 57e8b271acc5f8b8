"""An HTTP server that turns requests into API Gateway HTTP API (payload v2) events.

It serves the routes the template gives the callback function, so the swap API's
callbacks reach the real handler over real HTTP, as they reach API Gateway on AWS.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from swapdrop_local.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit


class Route:
    def __init__(self, method: str, path: str, handler: Handler, function_name: str) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.function_name = function_name
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


class HttpApiServer:
    """Serve `routes` on 127.0.0.1; `url` is the base URL once started."""

    def __init__(self, routes: list[Route], host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = routes
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._server.daemon_threads = True
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

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # query strings carry tokens
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"message": "Request Entity Too Large"})
                    return
                body = self.rfile.read(length) if length else b""
                for route in routes:
                    params = route.match(self.command, split.path)
                    if params is not None:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        event = build_event(
                            route, self.command, split.path, split.query, headers, body, params, self.client_address[0]
                        )
                        result = route.handler(event, LocalLambdaContext(route.function_name, timeout_seconds=30))
                        self._reply_lambda(result)
                        return
                self._reply(404, {"message": "Not Found"})

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                self._send(status, {"content-type": "application/json"}, json.dumps(payload).encode())

            def _reply_lambda(self, result: dict[str, Any]) -> None:
                body = result.get("body") or ""
                data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
                headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
                self._send(int(result.get("statusCode", 200)), headers, data)

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return RequestHandler
