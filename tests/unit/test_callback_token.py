"""callback_token: the HMAC token in the notifyHook URL."""

from __future__ import annotations

import re

import pytest
from swapdrop.callback_token import is_valid, token_for

SECRET = "s3cr3t-value"


def test_round_trip() -> None:
    token = token_for(SECRET, "job-1")
    assert is_valid(SECRET, "job-1", token)
    assert token == token_for(SECRET, "job-1")


def test_token_is_bound_to_the_job_and_the_secret() -> None:
    token = token_for(SECRET, "job-1")
    assert not is_valid(SECRET, "job-2", token)
    assert not is_valid("another-secret", "job-1", token)
    assert token != token_for(SECRET, "job-2")


def test_tampered_token_is_invalid() -> None:
    token = token_for(SECRET, "job-1")
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    assert not is_valid(SECRET, "job-1", flipped)
    assert not is_valid(SECRET, "job-1", token[:-1])
    assert not is_valid(SECRET, "job-1", token + "A")
    assert not is_valid(SECRET, "job-1", token + "=")


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_is_invalid(token: str | None) -> None:
    assert not is_valid(SECRET, "job-1", token)


def test_non_ascii_token_is_simply_invalid() -> None:
    assert not is_valid(SECRET, "job-1", "café")


def test_token_is_url_safe_and_unpadded() -> None:
    for job_id in (f"job-{i}" for i in range(200)):
        token = token_for(SECRET, job_id)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
