"""lenient_json: parsing bodies and answers from parties we do not control never recurses,
never raises on big integers, and never takes more than one pass over the text."""

from __future__ import annotations

import pytest
from swapdrop.lenient_json import JsonRefused, loads, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[", "{{{", "]]]"]', 1),  # brackets inside strings do not count
        ('[{"a": "x\\"[[[\\"y"}, [[1]]]', 3),  # nor after escaped quotes
        ('"just a string"', 0),
        ('[[1], "unterminated [[[[', 2),  # an unterminated string runs to the end
        ("", 0),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_nesting_depth_stops_as_soon_as_it_passes_the_limit() -> None:
    assert nesting_depth("[" * 100_000, stop_above=64) == 65


@pytest.mark.timeout(30)  # a hang guard, not a benchmark: the quadratic scan took minutes here
def test_a_body_of_escaped_quotes_is_refused_in_one_pass() -> None:
    """256 KiB of `\\"` after one quote: a scan that retried the string pattern at every quote
    was quadratic (64 KiB took 18 s; the callback route's 256 KiB would take minutes)."""
    body = b'"' + b'\\"' * (128 * 1024)
    with pytest.raises(JsonRefused, match="not valid JSON"):
        loads(body, "body")


def test_deep_nesting_is_refused_before_parsing() -> None:
    with pytest.raises(JsonRefused, match="nests deeper than 64 levels"):
        loads(b"[" * 10_000 + b"]" * 10_000, "body")


def test_huge_integers_become_infinite_floats_and_odd_tokens_parse() -> None:
    parsed = loads('{"a": ' + "9" * 5000 + ', "b": NaN, "c": -Infinity, "d": 1e400}')
    assert parsed["a"] == float("inf") and parsed["c"] == float("-inf") and parsed["d"] == float("inf")
    assert parsed["b"] != parsed["b"]  # NaN


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"\xff\xfe{}", "not UTF-8 text at byte 0"), (b"{", "not valid JSON (Expecting"), (b"", "not valid JSON")],
)
def test_unreadable_bodies_say_why(body: bytes, fragment: str) -> None:
    with pytest.raises(JsonRefused, match=fragment.replace("(", r"\(")):
        loads(body, "body")
