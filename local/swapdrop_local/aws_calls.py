"""Every AWS API request the local stack's moto server answers, by caller and operation.

Each function's workers run with `AWS_SDK_UA_APP_ID=<FunctionName>`, so botocore puts
`app/<FunctionName>` in every request's User-Agent (through the S3 gateway too: it forwards
headers). A WSGI middleware in front of moto's app records (caller, service, operation) per
request: what one job costs in AWS calls, counted where the calls land, whatever the code did.
Requests without an app id (provisioning, the local event sources, the log shipper) are
recorded under LOCAL_STACK.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

APP_ID_VARIABLE = "AWS_SDK_UA_APP_ID"
LOCAL_STACK = "(local stack)"
"""The caller of requests that carry no app id: the local runtime's own work, not a function's."""

_APP_ID = re.compile(r"(?:^|\s)app/([^\s]+)")
_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_MAX_FORM_BYTES = 1024 * 1024
"""A query-protocol body larger than this is not read for its Action (it is an upload, not a call name)."""


@dataclass(frozen=True, slots=True)
class AwsCall:
    caller: str
    service: str
    operation: str


class CallLog(Protocol):
    """What a reader of counted calls needs: `mark()`, then `since(mark)` for the calls after it. The log
    in this process (AwsCallLog) and a counting moto child's, read over HTTP (RemoteAwsCallLog), both are."""

    def mark(self) -> int: ...

    def since(self, mark: int = 0) -> list[AwsCall]: ...


class AwsCallLog:
    """Thread-safe, in arrival order; `mark()` and `since(mark)` cut out one job's calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[AwsCall] = []

    def record(self, call: AwsCall) -> None:
        with self._lock:
            self._calls.append(call)

    def mark(self) -> int:
        with self._lock:
            return len(self._calls)

    def since(self, mark: int = 0) -> list[AwsCall]:
        with self._lock:
            return list(self._calls[mark:])

    @staticmethod
    def by_caller(calls: Iterable[AwsCall]) -> dict[str, Counter[str]]:
        """caller -> Counter of "service:Operation"."""
        counted: dict[str, Counter[str]] = {}
        for call in calls:
            counted.setdefault(call.caller, Counter())[f"{call.service}:{call.operation}"] += 1
        return counted


def describe(environ: dict[str, Any]) -> AwsCall:
    """The caller, service and operation of one WSGI request to moto (reads, and restores, a form body)."""
    headers_ua = environ.get("HTTP_USER_AGENT", "")
    found = _APP_ID.search(headers_ua)
    caller = found.group(1) if found else LOCAL_STACK
    service_match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = service_match.group(1) if service_match else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return AwsCall(caller, service, target.rsplit(".", 1)[-1])
    if service == "s3":
        return AwsCall(caller, service, _s3_operation(environ))
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = (query.get("Action") or [None])[0] or _form_action(environ)
    method = environ.get("REQUEST_METHOD", "GET")
    return AwsCall(caller, service, action or f"{method} {environ.get('PATH_INFO', '/')}")


def _form_action(environ: dict[str, Any]) -> str | None:
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not 0 < length <= _MAX_FORM_BYTES:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [None])[0]


def _s3_operation(environ: dict[str, Any]) -> str:
    """S3's REST operation from method, path (path-style: /bucket[/key]) and sub-resource."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/").lstrip("/")
    has_key = "/" in path and path.split("/", 1)[1] != ""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if has_key:
        if "uploads" in query or "uploadId" in query:
            return f"Multipart{method.title()}"
        return {
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "PUT": "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject",
            "DELETE": "DeleteObject",
            "POST": "PostObject",
        }.get(method, method)
    if method == "GET":
        if "versions" in query:
            return "ListObjectVersions"
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return f"{method} bucket"


class CountingMiddleware:
    """Records each request, then hands it to moto. With `answer_path`, a GET there answers the log itself
    (uncounted): {"total", "calls": [[caller, service, operation], ...] from `?since=N`; N < 0: none}."""

    def __init__(self, app: Callable[..., Any], log: AwsCallLog, answer_path: str | None = None) -> None:
        self._app = app
        self._log = log
        self._answer_path = answer_path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self._answer_path and environ.get("PATH_INFO") == self._answer_path:
            return self._answer(environ, start_response)
        self._log.record(describe(environ))
        return self._app(environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            since = int((parse_qs(environ.get("QUERY_STRING", "")).get("since") or ["0"])[0])
        except ValueError:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"since must be an integer"]
        total = self._log.mark()
        calls = [] if since < 0 else [[c.caller, c.service, c.operation] for c in self._log.since(since)]
        body = json.dumps({"total": total, "calls": calls}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class CountingMotoServer(ThreadedMotoServer):
    """moto's threaded server with CountingMiddleware in front of its app (moto's own start-up otherwise)."""

    def __init__(
        self, log: AwsCallLog, ip_address: str = "127.0.0.1", port: int = 0, answer_path: str | None = None
    ) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.calls = log
        self._answer_path = answer_path

    def _server_entry(self) -> None:
        app = CountingMiddleware(DomainDispatcherApplication(create_backend_app), self.calls, self._answer_path)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
