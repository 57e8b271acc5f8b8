"""POST one webhook to a URL we do not control: the SSRF rules of result downloads, with the address pinned.

The host is resolved once; every address it resolves to must pass url_rules; the connection goes to the
first checked address (never a second lookup, so a name that answers differently the next time — DNS
rebinding — cannot move it). HTTPS keeps the host name for SNI and certificate checks. 10 s in all,
redirects never followed, at most 64 KiB of the answer read. URLs are logged without their query string.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import urllib3

from swapdrop.result_download import Resolver, resolve_host
from swapdrop.url_rules import address_blocked, url_problem

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024


class Pool(Protocol):
    def urlopen(self, method: str, url: str, **kwargs: Any) -> Any: ...


PoolFactory = Callable[[str, str, int, str, float], Pool]
"""(scheme, address to connect to, port, host name for TLS, timeout) → a connection pool."""


def pinned_pool(scheme: str, address: str, port: int, host: str, timeout: float) -> Pool:
    options: dict[str, Any] = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    return urllib3.HTTPConnectionPool(address, port, **options)


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
        problem = url_problem(url, "the webhook URL")
        if problem:
            raise ValueError(problem)
        host = urlsplit(url).hostname or ""
        try:
            addresses = self._resolve(host)
        except (OSError, UnicodeError):
            raise ValueError(f"the webhook host '{host[:80]}' does not resolve") from None
        if not addresses:
            raise ValueError(f"the webhook host '{host[:80]}' does not resolve")
        for address in addresses:
            if address_blocked(ipaddress.ip_address(address.split("%")[0]), self._allow_private):
                raise ValueError(f"the webhook host '{host[:80]}' resolves to a disallowed address ({address})")
        return addresses[0], host

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
