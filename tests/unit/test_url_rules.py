"""One rule for the URLs Swapdrop fetches: result images and the jobs API's target URLs.
IP literals only: nothing here resolves or connects."""

from __future__ import annotations

import ipaddress

import pytest
from swapdrop.url_rules import address_blocked, url_problem


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/a.png", "scheme 'ftp'"),
        ("https://user:pw@example.com/a.png", "credentials"),
        ("https:///a.png", "no host"),
        ("https://example.com:99999/a.png", "malformed"),
        ("http://[::1/a.png", "malformed"),
        ("\x1b[31mhttps://x/a.png", "scheme"),
    ],
)
def test_a_url_is_refused_by_its_text_with_the_reason(url: str, fragment: str) -> None:
    problem = url_problem(url, "the target URL")
    assert problem is not None and problem.startswith("the target URL") and fragment in problem
    assert "\x1b" not in problem


def test_a_plain_https_url_passes() -> None:
    assert url_problem("https://images.example.com/a/b.png?x=1", "the result URL") is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - a refused address, never bound
        "224.0.0.1",
        "fe80::1",
    ],
)
def test_metadata_link_local_and_reserved_addresses_are_refused_even_where_private_ones_are_allowed(
    address: str,
) -> None:
    assert address_blocked(ipaddress.ip_address(address), allow_private=True)
    assert address_blocked(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "::ffff:10.0.0.1"])
def test_private_and_loopback_addresses_only_where_allowed(address: str) -> None:
    assert address_blocked(ipaddress.ip_address(address), allow_private=False)
    assert not address_blocked(ipaddress.ip_address(address), allow_private=True)


def test_public_addresses_pass() -> None:
    assert not address_blocked(ipaddress.ip_address("93.184.216.34"), allow_private=False)
