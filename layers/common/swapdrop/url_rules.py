"""Which URLs Swapdrop fetches (result images, jobs-API target URLs): one rule for both doors.

The text of a URL is judged first (scheme, credentials, host); its addresses are judged after
resolving, so a name that points at the metadata endpoint or a private network is refused too.
checked_address resolves once and returns the address to connect to (pinned_http), so the
connection goes where the check looked (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from swapdrop.layout import printable

MAX_SHOWN_URL_CHARS = 200

_ALWAYS_BLOCKED = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, incl. the EC2/Lambda metadata endpoints
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("0.0.0.0/8"),
)


Resolver = Callable[[str], list[str]]


class UrlRefused(ValueError):
    """Why a URL is not one we fetch, for a person."""


def resolve_host(host: str) -> list[str]:
    """The host's addresses, once each, in getaddrinfo's order (the system's preference, e.g. IPv4
    first where there is no IPv6 route)."""
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)))


def checked_address(url: str, what: str, resolve: Resolver, allow_private: bool) -> tuple[str, str]:
    """(the address to connect to, the host name) for `url`, named `what` ("the result") in refusals.

    The host is resolved exactly once and every address it resolves to must pass address_blocked
    (one bad address among good ones refuses the URL); the first is the one to connect to.
    Raises UrlRefused saying why not."""
    problem = url_problem(url, f"{what} URL")
    if problem:
        raise UrlRefused(problem)
    host = urlsplit(url).hostname or ""
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError):
        raise UrlRefused(f"{what} host '{printable(host[:80])}' does not resolve") from None
    if not addresses:
        raise UrlRefused(f"{what} host '{printable(host[:80])}' does not resolve")
    for address in addresses:
        if address_blocked(ipaddress.ip_address(address.split("%")[0]), allow_private):
            raise UrlRefused(f"{what} host '{printable(host[:80])}' resolves to a disallowed address ({address})")
    return addresses[0], host


def url_problem(url: str, what: str) -> str | None:
    """Why `url` (named `what` in the message) is not one we fetch, judged by its text alone, or None.
    One rule for result URLs and the jobs API's target URLs; the addresses are checked after resolving."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"{what} is malformed"
    if parts.scheme not in ("http", "https"):
        return f"{what}'s scheme '{printable(parts.scheme[:20])}' is not http or https"
    if parts.username or parts.password:
        return f"{what} carries credentials; pass a URL without user:password@"
    if not host:
        return f"{what} has no host"
    return None


def address_blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    """Link-local (the metadata endpoints), multicast, reserved and unspecified addresses always;
    private and loopback ones unless allowed (the local stack, whose swap API is on loopback)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    blocked = any(address in network for network in _ALWAYS_BLOCKED) or address.is_link_local
    blocked = blocked or address.is_multicast or address.is_reserved or address.is_unspecified
    if not allow_private:
        blocked = blocked or address.is_private or address.is_loopback
    return blocked


def shown_url(url: str) -> str:
    """scheme://host[:port]/path of `url`, safe for a log line or a person: no query, fragment or userinfo."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a malformed URL)"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    shown = printable(f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}{parts.path}")
    return shown if len(shown) <= MAX_SHOWN_URL_CHARS else f"{shown[:MAX_SHOWN_URL_CHARS]}…"


def blocked_literal(url: str, allow_private: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The URL's host when it is an IP literal that `address_blocked` refuses, else None: what a
    request can be refused for at once (a name is resolved and checked when it is fetched)."""
    try:
        address = ipaddress.ip_address((urlsplit(url).hostname or "").split("%")[0])
    except ValueError:
        return None
    return address if address_blocked(address, allow_private) else None
