"""Fetch the upstream's result image from its `imageUrl`, which we do not control.

The URL comes from a callback body, so it is treated as hostile: http/https only,
no credentials in it, no link-local, metadata, multicast or reserved addresses
(and no private or loopback ones unless the local stack allows them), redirects
followed by hand and checked again, a size cap, and the content must be an image.

It also gets a total time budget (connect, redirects and every read together), well under
CallbackFunction's 30 s: a per-read timeout alone lets a server that drips one byte every
few seconds hold the callback for as long as it likes. Over budget the copy fails with a
reason, and the reconciler retries it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from swapdrop.image_check import InvalidImage, inspect_image
from swapdrop.url_rules import address_blocked, url_problem

MAX_REDIRECTS = 3
DEFAULT_BUDGET_SECONDS = 20.0
CALLBACK_BUDGET_SECONDS = 6.0
"""The copy made while a callback waits for its answer: relays give up on a callback after a
few seconds (the emulator after 10), so a slow result is left to the reconciler, which copies
with the whole DEFAULT_BUDGET_SECONDS."""
_READ_SIZE = 64 * 1024
_SLACK = 0.05  # a socket timeout set to the time left may wake a hair before the deadline

Resolver = Callable[[str], list[str]]


class DownloadRefused(Exception):
    """Why this result could not be fetched, for the job's record."""


@dataclass(frozen=True, slots=True)
class DownloadedImage:
    data: bytes
    extension: str
    mime_type: str


def resolve_host(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


class ResultDownloader:
    def __init__(
        self,
        max_bytes: int,
        allow_private: bool = False,
        timeout_seconds: float = 15.0,
        session: requests.Session | None = None,
        resolver: Resolver = resolve_host,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_bytes = max_bytes
        self._allow_private = allow_private
        self._connect_timeout = min(5.0, timeout_seconds)
        self._read_timeout = timeout_seconds
        self._session = session or requests.Session()
        self._resolve = resolver
        self._budget = budget_seconds
        self._clock = clock

    def download(self, url: str) -> DownloadedImage:
        deadline = self._clock() + self._budget
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            remaining = self._remaining(deadline)
            timeout = (min(self._connect_timeout, remaining), min(self._read_timeout, remaining))
            try:
                response = self._session.get(url, stream=True, timeout=timeout, allow_redirects=False)
            except requests.RequestException as error:
                self._remaining(deadline, _SLACK)  # a timeout that ran into the deadline says so
                raise DownloadRefused(f"could not fetch the result image ({type(error).__name__})") from None
            except ValueError:  # requests parses a redirect's Location eagerly, even unfollowed
                raise DownloadRefused("the result URL redirected to a malformed location") from None
            with response:
                if response.is_redirect:
                    try:
                        url = urljoin(url, response.headers.get("Location", ""))
                    except ValueError:
                        raise DownloadRefused("the result URL redirected to a malformed location") from None
                    continue
                if response.status_code != 200:
                    raise DownloadRefused(f"the result URL answered HTTP {response.status_code}")
                data = self._read_capped(response, deadline)
            try:
                info = inspect_image(data, "the result")
            except InvalidImage as error:
                raise DownloadRefused(str(error)) from None
            return DownloadedImage(data=data, extension=info.extension, mime_type=info.mime_type)
        raise DownloadRefused(f"the result URL redirected more than {MAX_REDIRECTS} times")

    def _read_capped(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise DownloadRefused(f"the result image is {declared} bytes, over the {self._max_bytes}-byte limit")
        chunks, total = [], 0
        try:
            while chunk := _read_some(response.raw, min(self._read_timeout, self._remaining(deadline))):
                total += len(chunk)
                if total > self._max_bytes:
                    raise DownloadRefused(f"the result image is over the {self._max_bytes}-byte limit")
                chunks.append(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
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

    def check_url(self, url: str) -> None:
        problem = url_problem(url, "the result URL")
        if problem:
            raise DownloadRefused(problem)
        host = urlsplit(url).hostname or ""
        try:
            addresses = self._resolve(host)
        except (OSError, UnicodeError):
            raise DownloadRefused(f"the result host '{host[:80]}' does not resolve") from None
        for address in addresses:
            self._check_address(host, ipaddress.ip_address(address.split("%")[0]))

    def _check_address(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if address_blocked(address, self._allow_private):
            raise DownloadRefused(f"the result host '{host}' resolves to a disallowed address ({address})")


def _read_some(raw: object, timeout: float) -> bytes:
    """What has arrived, up to 64 KiB, waiting at most `timeout` for it.

    urllib3's read() waits to fill the whole buffer, so a drip never returns and the
    budget would never be checked; read1() returns what one receive got. The socket's
    timeout is narrowed to what is left of the budget before each receive.
    """
    if isinstance(raw, urllib3.BaseHTTPResponse):
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(timeout)
        return raw.read1(_READ_SIZE, decode_content=True)
    return raw.read(_READ_SIZE)  # type: ignore[attr-defined]  # test streams
