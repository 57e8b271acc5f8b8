"""One rule for the URLs Swapdrop fetches: result images and the jobs API's target URLs.
IP literals only: nothing here resolves or connects."""

from __future__ import annotations

import ipaddress

import pytest
from swapdrop.url_rules import UrlRefused, address_blocked, blocked_literal, checked_address, url_problem


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


# --- checked_address: resolve once, check every address, connect to the first -----------------------


def test_checked_address_resolves_once_and_returns_the_first_checked_address() -> None:
    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    assert checked_address("https://Img.Example:8443/a.png", "the result", resolve, False) == (
        "93.184.215.14",
        "img.example",
    )
    assert calls == ["img.example"]


@pytest.mark.parametrize(
    ("url", "answer", "message"),
    [
        ("ftp://x.example/a", ["93.184.215.14"], "the webhook URL's scheme 'ftp' is not http or https"),
        ("https://x.example/a", [], "the webhook host 'x.example' does not resolve"),
        ("https://x.example/a", OSError("no such name"), "the webhook host 'x.example' does not resolve"),
        ("https://x.example/a", UnicodeError("label too long"), "the webhook host 'x.example' does not resolve"),
        (
            "https://x.example/a",
            ["93.184.215.14", "169.254.169.254"],
            "the webhook host 'x.example' resolves to a disallowed address (169.254.169.254)",
        ),
        (
            "https://x.example/a",
            ["10.0.0.1"],
            "the webhook host 'x.example' resolves to a disallowed address (10.0.0.1)",
        ),
    ],
)
def test_checked_address_refuses_with_the_reason(url: str, answer: list[str] | Exception, message: str) -> None:
    def resolve(host: str) -> list[str]:
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(UrlRefused) as refused:
        checked_address(url, "the webhook", resolve, False)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)


def test_checked_address_admits_private_addresses_only_where_allowed() -> None:
    assert checked_address("http://emulator.local:9/", "the result", lambda host: ["127.0.0.1"], True)[0] == "127.0.0.1"
    with pytest.raises(UrlRefused):
        checked_address("http://emulator.local:9/", "the result", lambda host: ["127.0.0.1"], False)


@pytest.mark.parametrize(
    ("url", "allow_private", "blocked"),
    [
        ("http://169.254.169.254/latest/meta-data", True, "169.254.169.254"),
        ("http://[::ffff:169.254.169.254]/x", True, "::ffff:169.254.169.254"),
        ("http://10.0.0.5/x", False, "10.0.0.5"),
        ("http://10.0.0.5/x", True, None),
        ("https://example.com/x", False, None),  # a name: checked when fetched, after resolving
        ("https://93.184.216.34/x", False, None),
    ],
)
def test_blocked_literal_refuses_only_literal_addresses_the_rules_refuse(
    url: str, allow_private: bool, blocked: str | None
) -> None:
    found = blocked_literal(url, allow_private)
    assert (str(found) if found is not None else None) == blocked
