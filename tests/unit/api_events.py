"""API Gateway HTTP API (payload 2.0) events for ApiFunction, as `sam local generate-event apigateway http-api-proxy`
shapes them, with the authorizer context API Gateway adds (IAM or JWT), and a way to call the handler."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import api_handler
from fakes import FakeLambdaContext

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
