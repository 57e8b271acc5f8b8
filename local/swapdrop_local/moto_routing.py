"""moto's server finds the backend for every request by listing moto's package directory (about 170
stat calls) and then trying every service's URL patterns, all under one lock that every request
thread takes: 1-2 ms a request, serialised across the whole local stack. The backend for a host
never changes while the process runs, so the local stack remembers it. Routing is unchanged: the
first request for a host still asks moto, and a host moto cannot place is asked again every time."""

from __future__ import annotations

import threading
from typing import Any

from moto.core import serialize as _serialize
from moto.dynamodb import responses as _dynamodb_responses
from moto.moto_server import werkzeug_app
from moto.sqs import models as _sqs_models

MAX_HOSTS = 4096
"""Hosts remembered per dispatcher (the stack's are a few dozen: one per service and region)."""

_original = werkzeug_app.DomainDispatcherApplication.get_backend_for_host


def _remembered(self: Any, host: str | None) -> Any:
    if host is None:
        return None
    known: dict[str, Any] = self.__dict__.setdefault("_swapdrop_backends", {})
    backend = known.get(host)
    if backend is None:
        backend = _original(self, host)
        if backend is not None and len(known) < MAX_HOSTS:
            known[host] = backend
    return backend


def remember_backends() -> None:
    """Make moto's dispatcher remember each host's backend (idempotent; for the whole process)."""
    werkzeug_app.DomainDispatcherApplication.get_backend_for_host = _remembered  # type: ignore[method-assign]


# --- keep-alive ------------------------------------------------------------------------------------------
# werkzeug's development server, which moto's server runs on, answers every request with "Connection: close"
# (http.server cannot skip a body the app left unread before the next request line). Every AWS call of every
# function then opened a TCP connection and moto started a thread for it: some 35 connections a job, most of
# the local stack's CPU. AWS keeps connections open, and botocore reuses them. The local stack does the same:
# the body the app left unread is drained (or, past DRAIN_LIMIT or for a chunked body, the connection closed)
# and the response keeps the connection open unless the client asked to close it.

DRAIN_LIMIT = 1024 * 1024
"""More unread body than this: close the connection rather than read it."""
IDLE_SECONDS = 120
"""A kept-alive connection that sends no request for this long is closed (its thread ends)."""

_handler = werkzeug_app.MotoRequestHandler
_original_make_environ = _handler.make_environ
_original_run_wsgi = _handler.run_wsgi
_original_send_header = _handler.send_header


class _CountedBody:
    """The request body (Content-Length bytes of the connection) as the app reads it, so that what it left
    unread can be drained before the next request on the same connection."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.left = length

    def read(self, size: int | None = -1) -> bytes:
        return self._bounded(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._bounded(self._stream.readline, size)

    def _bounded(self, reader: Any, size: int | None) -> bytes:
        """`reader` for at most `size` bytes (all when None or negative), never past the body's end."""
        wanted = self.left if size is None or size < 0 else min(size, self.left)
        if wanted <= 0:
            return b""
        data = reader(wanted)
        self.left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> bool:
        """Read what is left; False when it is too much (or the client stopped sending)."""
        if self.left > DRAIN_LIMIT:
            return False
        while self.left > 0:
            if not self.read(65536):
                return False
        return True


class _NothingMore:
    """What werkzeug's after-response drain reads on a kept connection: nothing (the app's own body was
    drained already; what may follow is the client's next request, which must stay in the socket)."""

    @staticmethod
    def read(_size: int = -1) -> bytes:
        return b""


class _ServerView:
    """The handler's server, with the app this one request runs (werkzeug reads `self.server.app`)."""

    def __init__(self, server: Any, app: Any) -> None:
        self._server, self.app = server, app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def _make_environ(self: Any) -> dict[str, Any]:
    environ = _original_make_environ(self)
    if environ.get("wsgi.input_terminated"):  # a chunked body (werkzeug dechunks it): closed after, as before
        return environ
    length = str(environ.get("CONTENT_LENGTH") or "0")
    body = _CountedBody(environ["wsgi.input"], int(length) if length.isdigit() else 0)
    environ["wsgi.input"] = self._swapdrop_body = body
    return environ


def _run_wsgi(self: Any) -> None:
    self._swapdrop_body = None
    self._swapdrop_kept = False
    self._swapdrop_broken = False
    self._swapdrop_wanted = not self.close_connection  # the request's wish: HTTP/1.1 without "Connection: close"
    server, rfile = self.server, self.rfile

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            iterable = server.app(environ, start_response)
            try:
                yield from iterable
            finally:
                if hasattr(iterable, "close"):
                    iterable.close()
        except BaseException:
            self._swapdrop_broken = True  # werkzeug answers 500 and the connection closes
            raise
        body = self._swapdrop_body
        if self._swapdrop_wanted and body is not None and body.drain():
            self.rfile = _NothingMore()  # werkzeug's own drain must not read the client's next request
        else:
            self._swapdrop_broken = True

    self.server = _ServerView(server, app)
    try:
        _original_run_wsgi(self)
    except BaseException:
        self.close_connection = True
        raise
    finally:
        self.server, self.rfile = server, rfile
    if not self._swapdrop_kept or self._swapdrop_broken:
        self.close_connection = True


def _send_header(self: Any, keyword: str, value: str) -> None:
    if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "_swapdrop_wanted", False):
        body = getattr(self, "_swapdrop_body", None)
        if body is not None and not self._swapdrop_broken and body.left <= DRAIN_LIMIT:
            self._swapdrop_kept = True
            return  # werkzeug's blanket close: this connection stays open (the body is drained by then)
    _original_send_header(self, keyword, value)


def keep_connections_alive() -> None:
    """Let moto's server keep HTTP/1.1 connections open, as AWS does (idempotent; for the whole process)."""
    _handler.make_environ = _make_environ  # type: ignore[method-assign]
    _handler.run_wsgi = _run_wsgi  # type: ignore[method-assign]
    _handler.send_header = _send_header  # type: ignore[method-assign]
    _handler.timeout = IDLE_SECONDS
    # werkzeug writes the status line, headers and body in separate sends: on a kept connection Nagle's
    # algorithm would hold each small write for the client's delayed ACK (40 ms a request).
    _handler.disable_nagle_algorithm = True


def _no_request_line(self: Any, code: Any = "-", size: Any = "-") -> None:
    """moto's server logs every request it answers (werkzeug's INFO line, to stderr when nothing configured
    logging): thousands of lines in a bench or a demo. Errors are still logged."""


_original_log_error = _handler.log_error


def _log_error(self: Any, format: str, *args: Any) -> None:
    if format.startswith("Request timed out"):
        return  # http.server's words for a kept connection that sent no next request within IDLE_SECONDS
    _original_log_error(self, format, *args)


def quiet_request_log() -> None:
    """Stop moto's server logging a line per request, or an error per idle kept connection it closes
    (idempotent; for the whole process)."""
    _handler.log_request = _no_request_line  # type: ignore[method-assign]
    _handler.log_error = _log_error  # type: ignore[method-assign]


# --- DynamoDB attribute values ---------------------------------------------------------------------------
# moto serialises every response through botocore's shapes, and for each DynamoDB AttributeValue (one per
# attribute, nested maps and lists included) it asks each of the shape's ten members (S, N, B, SS, NS, BS, M,
# L, NULL, BOOL) for a value through its alias pickers, though the value is a dict holding one of them. A job
# record's GetItem took 3 ms of moto's CPU, 90 % of it there: more than the rest of a job's calls together.
# The fast path serialises only the members the dict holds, each through moto's own serialiser for that
# member's shape, so the answer is the same (tests/unit/test_local_moto_routing.py compares them).

_json_serializer = _serialize.BaseJSONSerializer
_original_serialize_structure = _json_serializer._serialize_type_structure


def _serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if shape.name == "AttributeValue" and type(value) is dict:
        members = shape.members
        if all(member in members for member in value):
            wrapper: dict[str, Any] = {}
            for member, member_value in value.items():
                if member_value is not None:
                    self._serialize(wrapper, member_value, members[member], member)
            self._default_serialize(serialized, wrapper, shape, key)
            return
    _original_serialize_structure(self, serialized, value, shape, key)


def fast_attribute_values() -> None:
    """Serialise DynamoDB attribute values without asking every member of their shape (idempotent; for the
    whole process)."""
    _json_serializer._serialize_type_structure = _serialize_structure  # type: ignore[method-assign]


# --- atomic operations -----------------------------------------------------------------------------------
# AWS applies each request atomically; moto's threaded server runs them side by side on shared Python objects.
# Two races lost work in the local stack:
# - SQS: DeleteMessage rebuilds the queue's message list without the queue's lock and puts the copy back, so
#   a message sent to that queue in between (an S3 notification, a capacity wait's resend) vanished. One job
#   of a 2,000-upload burst was left PENDING with no message: its resend was sent while another was deleted.
# - DynamoDB: a Query on an index walks every item of the table while a PutItem adds one ("dictionary changed
#   size during iteration": an HTTP 500 that AWS never answers for that).
# A delete now holds the queue's lock (the one sends take); DynamoDB requests run one at a time (they are
# CPU-bound under one GIL anyway: nothing is lost but the races).

_dynamodb_lock = threading.RLock()
_original_dynamodb_call = _dynamodb_responses.DynamoHandler.call_action
_original_sqs_delete = _sqs_models.Queue.delete_message


def _dynamodb_one_at_a_time(self: Any) -> Any:
    with _dynamodb_lock:
        return _original_dynamodb_call(self)


def _sqs_delete_under_lock(self: Any, receipt_handle: str) -> None:
    with self._messages_lock:
        _original_sqs_delete(self, receipt_handle)


def atomic_operations() -> None:
    """Make SQS deletes and DynamoDB requests atomic, as on AWS (idempotent; for the whole process)."""
    _dynamodb_responses.DynamoHandler.call_action = _dynamodb_one_at_a_time  # type: ignore[method-assign]
    _sqs_models.Queue.delete_message = _sqs_delete_under_lock  # type: ignore[method-assign]


def patch_moto() -> None:
    """Every patch above: what the local stack's moto server runs with, in or out of the stack's process."""
    remember_backends()
    keep_connections_alive()
    quiet_request_log()
    fast_attribute_values()
    atomic_operations()
