"""The callback handler routes its one route itself (no Powertools resolver at cold start): it must answer
exactly as Powertools' APIGatewayHttpResolver with the same route answers (`callback_handler.app`)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import callback_handler
import pytest
from fakes import FakeLambdaContext

from .conftest import World
from .test_handlers import JOB_ID, callback_world, http_event  # noqa: F401 - callback_world is a fixture


def _variants() -> dict[str, dict[str, Any]]:
    bad_token = http_event(token="example-token")
    malformed = http_event()
    malformed["body"] = '{"id": "1729072764329123"}'
    unreadable = http_event()
    unreadable["body"], unreadable["isBase64Encoded"] = "not base64!", True
    staged = copy.deepcopy(bad_token)
    staged["requestContext"]["stage"] = "prod"
    staged["rawPath"] = f"/prod/callbacks/{JOB_ID}"
    trailing = copy.deepcopy(bad_token)
    trailing["rawPath"] = f"/callbacks/{JOB_ID}/"
    nested = copy.deepcopy(bad_token)
    nested["rawPath"] = f"/callbacks/{JOB_ID}/more"
    odd_id = copy.deepcopy(bad_token)
    odd_id["rawPath"] = "/callbacks/a%2Fb~(x)!*'@,;=+&$<> [ ]{}|^"
    no_query = http_event()
    no_query["rawQueryString"] = ""
    del no_query["queryStringParameters"]
    cases = {"bad token": bad_token, "malformed": malformed, "unreadable": unreadable, "stage prefix": staged,
             "trailing slash": trailing, "nested": nested, "odd job id": odd_id, "no query": no_query}  # fmt: skip
    for method in ("GET", "PUT", "DELETE", "post"):
        event = copy.deepcopy(bad_token)
        event["requestContext"]["http"]["method"] = method
        cases[method] = event
    elsewhere = copy.deepcopy(bad_token)
    elsewhere["rawPath"] = f"/elsewhere/{JOB_ID}"
    cases["elsewhere"] = elsewhere
    return cases


@pytest.mark.parametrize("case", sorted(_variants()))
def test_answers_as_powertools_resolver_would(callback_world: World, case: str) -> None:  # noqa: F811
    event = _variants()[case]
    writes = len(callback_world.jobs.writes)
    ours = callback_handler.lambda_handler(copy.deepcopy(event), FakeLambdaContext())
    theirs = callback_handler.app.resolve(copy.deepcopy(event), FakeLambdaContext())
    assert ours == theirs
    assert len(callback_world.jobs.writes) == writes, "none of these cases changes the job"


def test_a_success_answers_as_powertools_resolver_would(callback_world: World) -> None:  # noqa: F811
    """Applied once by each: the second is a duplicate, so compare the first answer's shape and the duplicate's."""
    ours = callback_handler.lambda_handler(http_event(), FakeLambdaContext())
    theirs = callback_handler.app.resolve(http_event(), FakeLambdaContext())
    again = callback_handler.lambda_handler(http_event(), FakeLambdaContext())
    assert ours["statusCode"] == theirs["statusCode"] == again["statusCode"] == 200
    assert set(ours) == set(theirs) and ours["headers"] == theirs["headers"]
    assert again == theirs, "the same duplicate answer from both"


def test_base64_bodies_route_alike(callback_world: World) -> None:  # noqa: F811
    event = http_event(token="example-token")
    event["body"], event["isBase64Encoded"] = base64.b64encode(event["body"].encode()).decode(), True
    assert callback_handler.lambda_handler(copy.deepcopy(event), FakeLambdaContext()) == callback_handler.app.resolve(
        event, FakeLambdaContext()
    )
