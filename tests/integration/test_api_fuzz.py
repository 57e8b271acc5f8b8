"""A short property-based run of api/openapi.yaml against the running local API (schemathesis): for
every operation, generated requests (valid and invalid ones), each SigV4-signed as a client would
sign it, must get no 5xx, a status the spec documents, the content type and the body schema it
documents, and never the gateway's refusal of a correctly signed request.

Sized for CI on 2 cores: a few examples per operation, derandomized so a red run reproduces. Only
loopback is reached: the API's base URL is 127.0.0.1, and a generated target URL the submitter
would fetch is pointed at a closed loopback port first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from swapdrop_local.auth import sign_headers
from swapdrop_local.stack import RunningStack, StackOptions

pytestmark = pytest.mark.integration

SPEC_FILE = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
schema = schemathesis.openapi.from_path(SPEC_FILE)
# Methods the local adapter (http.server) has no handler for answer its own 501 page; on AWS, API
# Gateway answers them before any of this repository's code runs. The rest (GET, PUT, POST, DELETE,
# PATCH) on a route without them reach the adapter's route table and are checked.
schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "patch"}
EXAMPLES_PER_OPERATION = 20
NOWHERE = "127.0.0.1:9"
"""Where a generated target URL is sent instead: loopback, a port nothing listens on."""
_UNSIGNED_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")


class SigV4(requests.auth.AuthBase):
    """Signs each prepared request as botocore would (service execute-api), whatever was generated
    for the Authorization header."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        if parts.query:  # as SigV4 clients send it: RFC 3986 (a space is %20, never requests' '+')
            query = urlencode(parse_qsl(parts.query, keep_blank_values=True), quote_via=quote, safe="-_.~")
            request.url = urlunsplit(parts._replace(query=query))
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _UNSIGNED_HEADERS}
        request.headers.clear()
        method, url = request.method or "GET", request.url or ""
        request.headers.update(sign_headers(self.credentials, method, url, headers, body))
        return request


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="fuzz-secret-key",
        reconcile_interval=0,
        emulator={"auto_run": False},
        stack_name="swapdrop-fuzz",
    )
    with RunningStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def session(stack: RunningStack) -> Iterator[requests.Session]:
    with requests.Session() as signed:
        signed.auth = SigV4(stack.info()["api_credentials"])
        yield signed


def _loopback_urls(value: Any) -> Any:
    """Every http(s) `url` in the body aimed at NOWHERE (its path kept): the submitter fetches what
    the API accepts, and a generated host name must never be resolved or reached."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "url" and isinstance(item, str):
                try:
                    parts = urlsplit(item)
                    remote = parts.scheme.lower() in ("http", "https") and parts.netloc != NOWHERE
                except ValueError:
                    remote = False
                if remote:
                    value[key] = parts._replace(netloc=NOWHERE).geturl()
            else:
                _loopback_urls(item)
    elif isinstance(value, list):
        for item in value:
            _loopback_urls(item)
    return value


def signed_requests_are_not_refused_by_the_gateway(ctx: Any, response: Any, case: Any) -> bool | None:
    """A correctly signed request reaches the function: a 403 here means signing and checking disagree
    (and a run that only ever saw 403s would prove nothing)."""
    if case.path.startswith("/callbacks"):
        return None  # open route: 403 is the callback token's answer
    if response.status_code in (401, 403):
        raise AssertionError(f"the gateway refused a signed request: {response.status_code} {response.text[:200]}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    signed_requests_are_not_refused_by_the_gateway,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_keeps_to_its_spec(case: schemathesis.Case, stack: RunningStack, session: requests.Session) -> None:
    base_url = stack.info()["api_url"]
    assert urlsplit(base_url).hostname == "127.0.0.1"
    _loopback_urls(case.body)
    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=60)
