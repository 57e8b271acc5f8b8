"""moto's server finds the backend for every request by listing moto's package directory (about 170
stat calls) and then trying every service's URL patterns, all under one lock that every request
thread takes: 1-2 ms a request, serialised across the whole local stack. The backend for a host
never changes while the process runs, so the local stack remembers it. Routing is unchanged: the
first request for a host still asks moto, and a host moto cannot place is asked again every time."""

from __future__ import annotations

from typing import Any

from moto.moto_server import werkzeug_app

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
