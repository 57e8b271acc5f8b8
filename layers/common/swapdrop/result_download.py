"""Fetch the upstream's result image from its `imageUrl`, which we do not control.

The URL comes from a callback body, so it is treated as hostile: http/https only,
no credentials in it, no link-local, metadata, multicast or reserved addresses
(and no private or loopback ones unless the local stack allows them), redirects
followed by hand and checked again, a size cap, and the content must be an image.

It also gets a total time budget (connect, redirects and every read together), well under
CallbackFunction's 30 s: a per-read timeout alone lets a server that drips one byte every
few seconds hold the callback for as long as it likes. Over budget the copy fails with a
reason, and the reconciler retries it.

Every hop (the URL and each redirect) is resolved once by url_rules.checked_address and fetched
from the address that was checked (pinned_http, shared with the webhook sender), so a name that
answers a public address to the check and the metadata endpoint to the connection (DNS
rebinding) gets nowhere. urllib3 directly, not requests: requests would resolve the name again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3

from swapdrop.image_check import InvalidImage, inspect_image
from swapdrop.pinned_http import PoolFactory, pinned_pool
from swapdrop.url_rules import Resolver, UrlRefused, checked_address, resolve_host

MAX_REDIRECTS = 3
DEFAULT_BUDGET_SECONDS = 20.0
CALLBACK_BUDGET_SECONDS = 6.0
"""The copy made while a callback waits for its answer: relays give up on a callback after a
few seconds (the emulator after 10), so a slow result is left to the reconciler, which copies
with the whole DEFAULT_BUDGET_SECONDS."""
_READ_SIZE = 64 * 1024
_SLACK = 0.05  # a socket timeout set to the time left may wake a hair before the deadline
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class DownloadRefused(Exception):
    """Why this result could not be fetched, for the job's record."""


@dataclass(frozen=True, slots=True)
class DownloadedImage:
    data: bytes
    extension: str
    mime_type: str


class ResultDownloader:
    def __init__(
        self,
        max_bytes: int,
        allow_private: bool = False,
        timeout_seconds: float = 15.0,
        pools: PoolFactory = pinned_pool,
        resolver: Resolver = resolve_host,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_bytes = max_bytes
        self._allow_private = allow_private
        self._connect_timeout = min(5.0, timeout_seconds)
        self._read_timeout = timeout_seconds
        self._pools = pools
        self._resolve = resolver
        self._budget = budget_seconds
        self._clock = clock

    def download(self, url: str) -> DownloadedImage:
        deadline = self._clock() + self._budget
        for _ in range(MAX_REDIRECTS + 1):
            address, host = self.check_url(url)
            with self._get(url, address, host, deadline) as response:
                location = response.headers.get("Location") if response.status in _REDIRECTS else None
                if location is not None:
                    try:
                        url = urljoin(url, location)
                    except ValueError:
                        raise DownloadRefused("the result URL redirected to a malformed location") from None
                    continue
                if response.status != 200:
                    raise DownloadRefused(f"the result URL answered HTTP {response.status}")
                data = self._read_capped(response, deadline)
            try:
                info = inspect_image(data, "the result")
            except InvalidImage as error:
                raise DownloadRefused(str(error)) from None
            return DownloadedImage(data=data, extension=info.extension, mime_type=info.mime_type)
        raise DownloadRefused(f"the result URL redirected more than {MAX_REDIRECTS} times")

    @contextlib.contextmanager
    def _get(self, url: str, address: str, host: str, deadline: float) -> Any:
        """GET `url` from `address` (the checked one) with what is left of the budget; the answer
        unread, its connection and pool closed afterwards."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        remaining = self._remaining(deadline)
        timeout = urllib3.Timeout(
            connect=min(self._connect_timeout, remaining), read=min(self._read_timeout, remaining)
        )
        headers = {"Host": parts.netloc, "User-Agent": "Swapdrop", "Accept": "image/*"}
        with contextlib.ExitStack() as cleanup:
            try:
                pool = self._pools(parts.scheme, address, port, host, remaining)
                cleanup.callback(pool.close)
                response = pool.urlopen(
                    "GET",
                    target,
                    headers=headers,
                    timeout=timeout,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                )
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                self._remaining(deadline, _SLACK)  # a timeout that ran into the deadline says so
                raise DownloadRefused(f"could not fetch the result image ({type(error).__name__})") from None
            cleanup.callback(response.close)
            yield response

    def _read_capped(self, response: Any, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise DownloadRefused(f"the result image is {declared} bytes, over the {self._max_bytes}-byte limit")
        chunks, total = [], 0
        try:
            while chunk := _read_some(response, min(self._read_timeout, self._remaining(deadline))):
                total += len(chunk)
                if total > self._max_bytes:
                    raise DownloadRefused(f"the result image is over the {self._max_bytes}-byte limit")
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            self._remaining(deadline, _SLACK)
            raise DownloadRefused(f"the result download broke off ({type(error).__name__})") from None
        return b"".join(chunks)

    def _remaining(self, deadline: float, slack: float = 0.0) -> float:
        """Seconds left in the budget; over it (within `slack`), the refusal that says so."""
        remaining = deadline - self._clock()
        if remaining <= slack:
            raise DownloadRefused(
                f"the result download took longer than {self._budget:g} s (its total time budget) and was cut off"
            )
        return remaining

    def check_url(self, url: str) -> tuple[str, str]:
        """(the address to connect to, the host): resolved once, every address checked."""
        try:
            return checked_address(url, "the result", self._resolve, self._allow_private)
        except UrlRefused as refused:
            raise DownloadRefused(str(refused)) from None


def _read_some(response: Any, timeout: float) -> bytes:
    """What has arrived, up to 64 KiB, waiting at most `timeout` for it.

    urllib3's read() waits to fill the whole buffer, so a drip never returns and the
    budget would never be checked; read1() returns what one receive got. The socket's
    timeout is narrowed to what is left of the budget before each receive.
    """
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(timeout)
    return response.read1(_READ_SIZE, decode_content=True)
