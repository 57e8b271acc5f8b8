"""Hostile bodies on every POST/PUT route: deep, truncated, wrong-typed, duplicated keys, odd encodings.
Each is a clear 4xx in the error shape, never a 500 (a crash) and never a job."""

from __future__ import annotations

import pytest

from .api_events import Api, call

ROUTES = [("POST", "/jobs"), ("PUT", "/faces/alice"), ("POST", f"/jobs/{'a' * 32}/cancel")]
BODIES = {
    "deep array": "[" * 50_000 + "]" * 50_000,
    "deep object": '{"a":' * 20_000 + "1" + "}" * 20_000,
    "deep metadata": '{"face": "alice", "target": {"s3Key": "k.jpg"}, "metadata": '
    + '{"a":' * 5_000
    + "1"
    + "}" * 5_000
    + "}",
    "truncated": '{"face": "alice", "target": {"upload": {"contentType": "image/pn',
    "not json": "face=alice&target=x",
    "a number": "1e999999",
    "nan": '{"face": NaN, "target": {"upload": {"contentType": "image/png"}}}',
    "lone surrogate": '{"face": "\\ud800", "target": {"upload": {"contentType": "image/png"}}}',
    "duplicate keys": '{"face": "alice", "face": "../x", "target": {"upload": {"contentType": "image/png"}}}',
    "null": "null",
    "empty": "",
}


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p[:12]}" for m, p in ROUTES])
@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_a_hostile_body_is_a_clear_4xx_and_creates_nothing(api: Api, method: str, path: str, body: str) -> None:
    reply = call(method, path, raw_body=body)
    assert 400 <= reply.status < 500, (reply.status, reply.body)
    if reply.status != 404:  # the cancel of an unknown job may answer 404 before reading the body
        assert set(reply.body) == {"error"} and {"code", "message", "details"} <= set(reply.body["error"])
        assert len(reply.body["error"]["message"]) < 300, "a message never echoes the body at length"
    assert api.world.jobs.items == {} and api.sender.sent == []


def test_a_deep_body_says_why(api: Api) -> None:
    reply = call("POST", "/jobs", raw_body="[" * 50_000 + "]" * 50_000)
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert (
        reply.error["message"] == "the request body nests deeper than 16 levels, far more than a jobs API request needs"
    )


def test_a_batch_with_metadata_is_well_within_the_depth_limit(api: Api) -> None:
    body = {"face": "alice", "targets": [{"upload": {"contentType": "image/png"}}], "metadata": {"k": "v"}}
    assert call("POST", "/jobs", body=body).status == 202
