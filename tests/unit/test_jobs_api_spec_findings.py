"""What the property-based run against the local stack (tests/integration/test_api_fuzz.py) found,
pinned through lambda_handler on fakes: each answer is in the error shape, with a status that
api/openapi.yaml documents for the route."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import api_handler
import pytest
import yaml
from fakes import FakeLambdaContext

from .api_events import Api, call, http_event

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "api" / "openapi.yaml").read_text())
JOB = "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617"
UPLOAD_JOB = {"face": "alice", "target": {"upload": {"contentType": "image/jpeg"}}}


def documented(method: str, path: str) -> set[int]:
    return {int(status) for status in SPEC["paths"][path][method.lower()]["responses"]}


@pytest.mark.parametrize(
    ("method", "path", "route", "body"),
    [
        ("POST", "/jobs", "/jobs", UPLOAD_JOB),
        ("PUT", "/faces/alice", "/faces/{face}", {"contentType": "image/jpeg"}),
    ],
)
@pytest.mark.parametrize("key", [None, "k-1"])
def test_a_body_that_is_not_json_is_415_not_500(
    api: Api, method: str, path: str, route: str, body: dict, key: str | None
) -> None:
    headers = {"content-type": "text/plain"} | ({"Idempotency-Key": key} if key else {})
    reply = call(method, path, body=body, headers=headers)
    assert (reply.status, reply.error["code"]) == (415, "unsupported_media_type")
    assert "application/json" in reply.error["message"]
    assert 415 in documented(method, route)


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_bad_idempotency_key_on_cancel_and_retry_is_a_documented_400(api: Api, action: str) -> None:
    reply = call("POST", f"/jobs/{JOB}/{action}", headers={"Idempotency-Key": "has space"})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert 400 in documented("POST", f"/jobs/{{jobId}}/{action}")


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_cancel_and_retry_with_a_key_and_a_body_that_is_not_json_are_not_a_500(api: Api, action: str) -> None:
    """They take no body; one that does not parse is still part of what the key stands for."""
    first = call("POST", f"/jobs/{JOB}/{action}", raw_body="not json", headers={"Idempotency-Key": "k-2"})
    assert (first.status, first.error["code"]) == (404, "not_found")
    other = call("POST", f"/jobs/{JOB}/{action}", raw_body="other text", headers={"Idempotency-Key": "k-2"})
    assert (other.status, other.error["code"]) == (404, "not_found")  # refusals are not stored


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/jobs"), ("PUT", "/faces/alice"), ("POST", f"/jobs/{JOB}/cancel")]
)
def test_form_and_multipart_bodies_are_415_before_powertools_parses_them(
    api: Api, content_type: str, method: str, path: str
) -> None:
    """Powertools reads such bodies itself: a multipart type without a boundary made it raise (a 500)."""
    reply = call(method, path, raw_body="face=alice", headers={"content-type": content_type})
    assert (reply.status, reply.error["code"]) == (415, "unsupported_media_type")


def test_json_with_parameters_and_bodiless_requests_pass_the_media_type_check(api: Api) -> None:
    reply = call(
        "PUT",
        "/faces/alice",
        body={"contentType": "image/png"},
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert reply.status == 200
    assert call("POST", f"/jobs/{JOB}/cancel", headers={"content-type": "text/plain"}).status == 404  # no body
    assert call("GET", "/jobs", raw_body="x", headers={"content-type": "text/plain"}).status == 200  # GET: ignored


def test_415_is_documented_on_every_operation_that_takes_a_body() -> None:
    with_415 = {
        (method.upper(), path)
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        if "415" in operation["responses"]
    }
    assert with_415 == {
        ("POST", "/jobs"),
        ("PUT", "/faces/{face}"),
        ("POST", "/jobs/{jobId}/cancel"),
        ("POST", "/jobs/{jobId}/retry"),
    }


@pytest.mark.parametrize("key", [None, "k-3"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/jobs"), ("PUT", "/faces/alice")])
def test_a_body_that_is_not_utf8_is_400_not_500(api: Api, method: str, path: str, key: str | None) -> None:
    event = http_event(method, path, headers={"Idempotency-Key": key} if key else None)
    event |= {"body": base64.b64encode(b"\xc3\x28{\xff").decode(), "isBase64Encoded": True}
    answer = api_handler.lambda_handler(event, FakeLambdaContext())
    error = json.loads(answer["body"])["error"]
    assert (answer["statusCode"], error["code"], error["details"]) == (
        400,
        "invalid_request",
        [{"loc": ["body"], "msg": "not UTF-8"}],
    )
