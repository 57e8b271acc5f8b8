"""POST one webhook to a URL we do not control: the SSRF rules of result downloads, with the address pinned.

The host is resolved once; every address it resolves to must pass url_rules; the connection goes to the
first checked address (url_rules.checked_address, pinned_http: never a second lookup, so a name that answers
differently the next time — DNS rebinding — cannot move it). HTTPS keeps the host name for SNI and certificate
checks. 10 s in all, redirects never followed, at most 64 KiB of the answer read. URLs are logged without
their query string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import urllib3

from swapdrop.pinned_http import PoolFactory, pinned_pool
from swapdrop.url_rules import Resolver, checked_address, resolve_host

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None = None
    """The HTTP status; None when there was no answer (refused, unreachable, timed out, dropped)."""
    error: str | None = None
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (Retry-After), when it did."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    def __init__(
        self,
        allow_private: bool = False,
        resolver: Resolver = resolve_host,
        timeout_seconds: float = TIMEOUT_SECONDS,
        pools: PoolFactory = pinned_pool,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolver
        self._timeout = timeout_seconds
        self._pools = pools

    def check(self, url: str) -> tuple[str, str]:
        """The address to connect to and the host, or ValueError saying why the URL is refused."""
        return checked_address(url, "the webhook", self._resolve, self._allow_private)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        try:
            address, host = self.check(url)
        except ValueError as refused:
            return SendResult(error=str(refused))
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {**headers, "Host": parts.netloc, "Content-Type": "application/json", "User-Agent": "Swapdrop-Webhooks"}
        try:
            pool = self._pools(parts.scheme, address, port, host, self._timeout)
            response = pool.urlopen(
                "POST", target, body=body, headers=sent, redirect=False, retries=False, preload_content=False
            )
            try:
                response.read(MAX_ANSWER_BYTES)
            finally:
                response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return SendResult(error=f"no answer from the webhook URL ({_cause(error)})")
        status = int(response.status)
        error = None if 200 <= status < 300 else f"the webhook URL answered HTTP {status}"
        if 300 <= status < 400:
            error += " (a redirect; redirects are not followed)"
        return SendResult(status=status, error=error, retry_after=retry_after(response.headers.get("Retry-After")))


def _cause(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    return type(reason).__name__ if isinstance(reason, Exception) else type(error).__name__


def retry_after(value: str | None, now: Callable[[], float] | None = None) -> float | None:
    """Retry-After as seconds (a number, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (now or time.time)())
