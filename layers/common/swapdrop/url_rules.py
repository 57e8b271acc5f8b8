"""Which URLs Swapdrop fetches (result images, jobs-API target URLs): one rule for both doors.

The text of a URL is judged first (scheme, credentials, host); its addresses are judged after
resolving, so a name that points at the metadata endpoint or a private network is refused too.
"""

from __future__ import annotations

import ipaddress
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
