"""The `api` fixture (JobsService on fakes, idempotency on moto in-process), and HTTP API (payload 2.0)
events for ApiFunction as `sam local generate-event apigateway http-api-proxy` shapes them, with the
authorizer context API Gateway adds (IAM or JWT), and a way to call the handler."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import api_handler
import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from fakes import FakeJobSender, FakeLambdaContext
from moto import mock_aws
from swapdrop import wiring
from swapdrop.jobs_api.cursor import CursorSigner
from swapdrop.jobs_api.idempotency import IdempotentPosts
from swapdrop.jobs_api.service import ApiPolicy, JobsService

from .builders import BUCKET, CALLBACK_SECRET
from .conftest import World

OPERATOR_ARN = "arn:aws:iam::123456789012:user/ops"
IAM = {"iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012", "userArn": OPERATOR_ARN, "userId": "AIDA"}}


def jwt(sub: str) -> dict[str, Any]:
    return {"jwt": {"claims": {"sub": sub, "iss": "https://issuer.example"}, "scopes": None}}


def http_event(
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = IAM,
    raw_body: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    if text is not None and base64_body:
        text = base64.b64encode(text.encode()).decode()
    all_headers = {"content-type": "application/json", "host": "api.example"} | {
        k.lower(): v for k, v in (headers or {}).items()
    }
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "api.example",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "t"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "16/Oct/2024:09:59:21 +0000",
        "timeEpoch": 1729072761000,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": context,
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    if text is not None:
        event["body"] = text
    return event


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error(self) -> dict[str, Any]:
        assert set(self.body) == {"error"}, self.body
        assert set(self.body["error"]) == {"code", "message", "details"}, self.body
        return self.body["error"]


def call(method: str, path: str, **kwargs: Any) -> Reply:
    answer = api_handler.lambda_handler(http_event(method, path, **kwargs), FakeLambdaContext())
    text = answer.get("body") or ""
    return Reply(answer["statusCode"], json.loads(text) if text else None, answer.get("headers", {}))


def segment(text: str) -> str:
    """A path segment as a client sends it (percent-encoded)."""
    return quote(text, safe="")


# --- the service behind the handler, on fakes -------------------------------------------------

MAX_BYTES = 1000
IDEMPOTENCY_TABLE = "swapdrop-idempotency"


@dataclass
class Api:
    world: World
    sender: FakeJobSender
    service: JobsService
    posts: IdempotentPosts
    cancelled: list[str] = field(default_factory=list)
    cancelled_on: list[str | None] = field(default_factory=list)
    """The upstream pool member each cancel went to (None: the job recorded none)."""
    cancel_answer: Any = True
    ticks: list[float] = field(default_factory=lambda: [0.0])
    api_key: bool = True

    def sleep(self, seconds: float) -> None:
        self.ticks[0] += seconds
        self.world.clock.advance(seconds=seconds)
        for hook in list(self.during_sleep):
            hook(self.ticks[0])

    during_sleep: list[Any] = field(default_factory=list)


def make_table() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def api(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with mock_aws():
        client = make_table()
        ids = (f"{n:032x}" for n in itertools.count(1))
        sender = FakeJobSender()
        holder: dict[str, Api] = {}

        def cancel_upstream(task_id: str, member: str | None) -> Any:
            holder["api"].cancelled.append(task_id)
            holder["api"].cancelled_on.append(member)
            answer = holder["api"].cancel_answer
            if isinstance(answer, BaseException):
                raise answer
            return answer

        service = JobsService(
            jobs=world.jobs,
            media=world.media,
            sender=sender,
            finisher=world.finisher,
            cancel_upstream=cancel_upstream,
            cursors=CursorSigner(lambda: CALLBACK_SECRET),
            api_key_set=lambda: holder["api"].api_key,
            policy=ApiPolicy(bucket=BUCKET, max_image_bytes=MAX_BYTES, version="1.2.3"),
            clock=world.clock,
            new_id=lambda: next(ids),
            sleep=lambda s: holder["api"].sleep(s),
            monotonic=lambda: holder["api"].ticks[0],
        )
        posts = IdempotentPosts(DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE, boto3_client=client))
        holder["api"] = Api(world, sender, service, posts)
        monkeypatch.setattr(wiring, "api_service", lambda: service)
        monkeypatch.setattr(wiring, "api_idempotency", lambda: posts)
        yield holder["api"]
