"""The local HTTP API enforces API Gateway's auth over real HTTP: a route the template leaves to
AWS_IAM answers only SigV4 requests signed with the stack's local credentials (header or
presigned form), refuses the rest with 403 and API Gateway's message before the function is
invoked, and hands the function requestContext.authorizer.iam; open routes (callbacks, /health)
need nothing; the JWT API takes only RS256 tokens from the local issuer (401 otherwise) and
hands the function the claims. Hostile headers get an answer, never a crash or a pass."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from swapdrop_local.auth import (
    ApiCredentials,
    LocalJwtIssuer,
    SigV4Verifier,
    mint_jwt,
    presign_url,
    sign_headers,
    signed_request,
)
from swapdrop_local.http_api import HttpApiServer, Route
from swapdrop_local.stack import RunningStack, StackOptions, route_auth

REGION = "eu-west-1"
SIGNATURE_MISMATCH = "The request signature we calculated does not match the signature you provided."


@dataclass
class FakeApi:
    """A tiny handler behind both adapters: it records the events it gets and echoes the caller."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.events.append(event)
        authorizer = event["requestContext"].get("authorizer")
        return {"statusCode": 200, "body": json.dumps({"authorizer": authorizer, "body": event.get("body")})}


@dataclass
class Apis:
    handler: FakeApi
    iam: HttpApiServer
    jwt: HttpApiServer
    info: dict[str, Any]


@pytest.fixture
def apis(tmp_path: Any) -> Iterator[Apis]:
    handler = FakeApi()
    credentials = ApiCredentials.generate(REGION)
    guarded = [("POST", "/jobs"), ("GET", "/jobs/{jobId}"), ("GET", "/jobs")]
    routes = [Route(m, p, handler, "ApiFunction", auth="AWS_IAM") for m, p in guarded]
    routes += [
        Route("GET", "/health", handler, "ApiFunction"),
        Route("POST", "/callbacks/{jobId}", handler, "CallbackFunction"),
    ]
    iam = HttpApiServer(routes, authorizers={"AWS_IAM": SigV4Verifier(credentials, REGION)}).start()
    jwt_api = HttpApiServer([Route(m, p, handler, "ApiFunction", auth="JWT") for m, p in guarded])
    issuer = LocalJwtIssuer(f"{jwt_api.url}/")
    issuer.write_private_key(tmp_path / "jwt.pem")
    jwt_api.authorizers["JWT"] = issuer.verifier()
    jwt_api.start()
    info = {
        "api_url": iam.url,
        "jwt_api_url": jwt_api.url,
        "api_credentials": credentials.info(),
        "jwt": issuer.info(),
    }
    yield Apis(handler, iam, jwt_api, info)
    iam.stop()
    jwt_api.stop()


def _raw(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the answer's status, headers and body (the server must answer)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _message(response: requests.Response) -> str:
    return response.json()["message"]


# --- IAM (SigV4)


def test_a_signed_request_reaches_the_function_with_the_iam_identity(apis: Apis) -> None:
    response = signed_request(apis.info, "POST", "/jobs", json_body={"face": "ada"}, params={"dry": "1"})
    assert response.status_code == 200, response.text
    (event,) = apis.handler.events
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == apis.info["api_credentials"]["access_key_id"]
    assert iam["userArn"] == "arn:aws:iam::123456789012:user/swapdrop-local"
    assert set(iam) == {"accessKey", "accountId", "callerId", "cognitoIdentity", "principalOrgId", "userArn", "userId"}
    assert json.loads(event["body"]) == {"face": "ada"} and event["queryStringParameters"] == {"dry": "1"}
    assert event["routeKey"] == "POST /jobs"


def test_a_signed_get_with_a_path_parameter_and_query_passes(apis: Apis) -> None:
    response = signed_request(apis.info, "GET", "/jobs/0123abc", params={"wait": "0", "note": "a b/c"})
    assert response.status_code == 200, response.text
    assert apis.handler.events[0]["pathParameters"] == {"jobId": "0123abc"}


def test_an_unsigned_request_is_forbidden_and_never_invoked(apis: Apis) -> None:
    response = requests.post(f"{apis.iam.url}/jobs", json={"face": "ada"}, timeout=30)
    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    assert apis.handler.events == []


def test_a_wrong_secret_is_refused(apis: Apis) -> None:
    wrong = {**apis.info, "api_credentials": {**apis.info["api_credentials"], "secret_access_key": "y" * 40}}
    response = signed_request(wrong, "GET", "/jobs")
    assert response.status_code == 403 and _message(response).startswith(SIGNATURE_MISMATCH)
    assert apis.handler.events == []


def test_an_unknown_access_key_is_refused(apis: Apis) -> None:
    stranger = {**apis.info, "api_credentials": ApiCredentials.generate(REGION).info()}
    response = signed_request(stranger, "GET", "/jobs")
    assert (response.status_code, response.json()) == (
        403,
        {"message": "The security token included in the request is invalid."},
    )


def _signed_then_sent(apis: Apis, sign: tuple[str, str, bytes], send: tuple[str, str, bytes]) -> requests.Response:
    """Sign one request, send another with the first one's signature."""
    method, path, body = sign
    headers = sign_headers(apis.info["api_credentials"], method, apis.iam.url + path, {}, body)
    method, path, body = send
    return requests.request(method, apis.iam.url + path, data=body or None, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "sent",
    [
        ("POST", "/jobs?x=1", b'{"face": "eve"}'),  # body
        ("GET", "/jobs/other?x=1", b""),  # path
        ("GET", "/jobs/one?x=2", b""),  # query
        ("GET", "/jobs/one", b""),  # query dropped
    ],
    ids=["body", "path", "query", "query-dropped"],
)
def test_a_request_changed_after_signing_is_refused(apis: Apis, sent: tuple[str, str, bytes]) -> None:
    signed = ("POST", "/jobs?x=1", b'{"face": "ada"}') if sent[0] == "POST" else ("GET", "/jobs/one?x=1", b"")
    assert _signed_then_sent(apis, signed, signed).status_code == 200  # the unchanged one passes
    response = _signed_then_sent(apis, signed, sent)
    assert response.status_code == 403 and _message(response).startswith(SIGNATURE_MISMATCH)
    assert len(apis.handler.events) == 1


def test_an_old_signature_has_expired(apis: Apis) -> None:
    url = f"{apis.iam.url}/jobs"
    old = datetime.now(UTC) - timedelta(minutes=6)
    headers = sign_headers(apis.info["api_credentials"], "GET", url, at=old)
    response = requests.get(url, headers=headers, timeout=30)
    assert response.status_code == 403
    assert _message(response).startswith(f"Signature expired: {old.strftime('%Y%m%dT%H%M%SZ')} is now earlier than")


def test_a_presigned_url_works_until_it_expires_and_a_replay_after_is_refused(apis: Apis) -> None:
    url = f"{apis.iam.url}/jobs/0123abc?wait=0"
    fresh = presign_url(apis.info["api_credentials"], "GET", url, expires=60)
    assert requests.get(fresh, timeout=30).status_code == 200
    assert requests.get(fresh, timeout=30).status_code == 200  # within its life a replay is valid, as on AWS
    lapsed = presign_url(
        apis.info["api_credentials"], "GET", url, expires=60, at=datetime.now(UTC) - timedelta(seconds=90)
    )
    response = requests.get(lapsed, timeout=30)
    assert response.status_code == 403 and _message(response).startswith("Signature expired:")
    assert len(apis.handler.events) == 2


def test_open_routes_need_no_signature_and_carry_no_authorizer(apis: Apis) -> None:
    health = requests.get(f"{apis.iam.url}/health", timeout=30)
    callback = requests.post(f"{apis.iam.url}/callbacks/job-1?token=t", json={"id": "task"}, timeout=30)
    assert health.status_code == 200 and callback.status_code == 200
    assert all("authorizer" not in event["requestContext"] for event in apis.handler.events)
    assert apis.handler.events[1]["queryStringParameters"] == {"token": "t"}


def test_an_unknown_route_is_not_found_before_any_auth(apis: Apis) -> None:
    response = requests.get(f"{apis.iam.url}/nowhere", timeout=30)
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


# --- hostile headers


def _request_bytes(apis: Apis, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    host = urlsplit(apis.iam.url).netloc
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *[f"{k}: {v}" for k, v in headers]]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_a_huge_authorization_header_gets_a_short_refusal_and_the_server_carries_on(apis: Apis) -> None:
    huge = "AWS4-HMAC-SHA256 Credential=" + "A" * 60000 + ", SignedHeaders=host, Signature=00"
    status, _, body = _raw(apis.iam.url, _request_bytes(apis, "/jobs", [("Authorization", huge)]))
    assert status == 403 and len(body) < 300
    over_limit = "AWS4-HMAC-SHA256 Credential=" + "A" * 70000
    status, _, _ = _raw(apis.iam.url, _request_bytes(apis, "/jobs", [("Authorization", over_limit)]))
    assert status == 431  # the header line is over http.server's limit: refused before any parsing
    assert signed_request(apis.info, "GET", "/jobs").status_code == 200
    assert len(apis.handler.events) == 1


def test_control_characters_in_auth_headers_are_refused(apis: Apis) -> None:
    url = f"{apis.iam.url}/jobs"
    signed = sign_headers(apis.info["api_credentials"], "GET", url)
    for name, value in (
        ("Authorization", signed["Authorization"].replace("Signature=", "Signature=\x01\x7f")),
        ("X-Amz-Date", signed["X-Amz-Date"] + "\x1b"),
        ("Authorization", "AWS4-HMAC-SHA256\x00Credential=x"),
    ):
        headers = [(k, value if k == name else v) for k, v in signed.items()]
        status, _, body = _raw(apis.iam.url, _request_bytes(apis, "/jobs", headers))
        assert status == 403, body
    assert apis.handler.events == []


def test_duplicated_auth_headers_are_refused(apis: Apis) -> None:
    url = f"{apis.iam.url}/jobs"
    signed = sign_headers(apis.info["api_credentials"], "GET", url)
    for duplicated in ("Authorization", "X-Amz-Date"):
        headers = [*signed.items(), (duplicated, signed[duplicated])]
        status, _, body = _raw(apis.iam.url, _request_bytes(apis, "/jobs", headers))
        assert status == 403, body
    assert apis.handler.events == []


def test_a_repeated_header_reaches_the_function_joined_with_commas(apis: Apis) -> None:
    status, _, _ = _raw(apis.iam.url, _request_bytes(apis, "/health", [("X-Tag", "a"), ("X-Tag", "b")]))
    assert status == 200 and apis.handler.events[0]["headers"]["x-tag"] == "a,b"


# --- JWT


def _bearer(apis: Apis, token: str | None, path: str = "/jobs") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{apis.jwt.url}{path}", headers=headers, timeout=30)


def test_a_token_from_the_local_issuer_reaches_the_function_with_its_claims(apis: Apis) -> None:
    token = mint_jwt(apis.info, "user-1", email="u@example.com")
    response = _bearer(apis, token, "/jobs/0123abc")
    assert response.status_code == 200, response.text
    context = apis.handler.events[0]["requestContext"]["authorizer"]
    assert context["jwt"]["scopes"] is None
    claims = context["jwt"]["claims"]
    assert (claims["sub"], claims["email"], claims["iss"]) == ("user-1", "u@example.com", apis.info["jwt"]["issuer"])
    assert claims["aud"] == "swapdrop-local" and isinstance(claims["exp"], str)


def _hs256_with_public_key(apis: Apis) -> str:
    """The algorithm-confusion token: HS256 keyed with the issuer's public key (PEM)."""
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(apis.info["jwt"]["private_key_file"]).read_bytes(), None)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": apis.info["jwt"]["key_id"]}
    now = int(time.time())
    claims = {"iss": apis.info["jwt"]["issuer"], "aud": "swapdrop-local", "sub": "eve", "iat": now, "exp": now + 600}
    signing_input = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return signing_input + "." + part(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())


def _alg_none(apis: Apis) -> str:
    now = int(time.time())
    claims = {"iss": apis.info["jwt"]["issuer"], "aud": "swapdrop-local", "sub": "eve", "exp": now + 600}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": apis.info["jwt"]["key_id"]})


@pytest.mark.parametrize(
    "make",
    [
        lambda a: mint_jwt(a.info, "u", ttl_seconds=-5),
        lambda a: mint_jwt(a.info, "u", aud="another-app"),
        lambda a: mint_jwt(a.info, "u", iss="http://127.0.0.1:1/"),
        _alg_none,
        _hs256_with_public_key,
        lambda a: "garbage",
        lambda a: None,
        lambda a: "",
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "alg-none", "hs256-public-key", "garbage", "missing", "empty"],
)
def test_a_bad_or_missing_token_is_unauthorized(apis: Apis, make: Any) -> None:
    response = _bearer(apis, make(apis))
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    assert response.headers["www-authenticate"].startswith('Bearer scope="" error="invalid_token"')
    assert apis.handler.events == []


def test_each_api_takes_only_its_own_kind_of_caller(apis: Apis) -> None:
    token = mint_jwt(apis.info, "user-1")
    on_iam = requests.get(f"{apis.iam.url}/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert on_iam.status_code == 403
    url = f"{apis.jwt.url}/jobs"
    on_jwt = requests.get(url, headers=sign_headers(apis.info["api_credentials"], "GET", url), timeout=30)
    assert on_jwt.status_code == 401
    assert requests.get(f"{apis.jwt.url}/health", timeout=30).status_code == 404  # open routes live on one API
    assert apis.handler.events == []


# --- the whole stack: routes from the template, credentials and issuer in the info file


def test_the_stack_serves_the_templates_routes_with_their_auth_and_writes_a_private_info_file(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swapdrop.local")
    with RunningStack(StackOptions(reconcile_interval=0, stack_name="swapdrop-auth-test")) as running:
        info = running.info()
        info_file = tmp_path / "stack.json"
        running.write_info(info_file)
        assert info_file.stat().st_mode & 0o777 == 0o600
        assert json.loads(info_file.read_text())["api_credentials"] == info["api_credentials"]
        assert {"api_url", "jwt_api_url", "api_credentials", "jwt"} <= set(info)
        assert info["api_credentials"]["service"] == "execute-api" and info["api_credentials"]["region"] == "us-east-1"
        key_file = info["jwt"]["private_key_file"]
        assert Path(key_file).stat().st_mode & 0o777 == 0o600
        assert info["jwt"]["issuer"] == f"{info['jwt_api_url']}/"
        assert info["api_credentials"]["secret_access_key"] not in caplog.text

        assert running.api and running.jwt_api and running.stack and running.stack.resolver
        routes = {(r.method, r.path): r.auth for r in running.api.routes}
        assert routes[("POST", "/callbacks/{jobId}")] == "NONE"  # the callback keeps its token, no signature
        for route in running.api.routes:
            assert route.auth == route_auth(running.stack.resolver, route.function_name, _event_of(running, route))
        guarded = {key for key, auth in routes.items() if auth != "NONE"}
        assert {(r.method, r.path) for r in running.jwt_api.routes} == guarded
        assert all(r.auth == "JWT" for r in running.jwt_api.routes)
        callback = requests.post(f"{info['api_url']}/callbacks/nojob?token=bad", json={}, timeout=30)
        # no signature needed: the function itself judges the token (API Gateway would say "Forbidden")
        assert (callback.status_code, callback.json()) == (403, {"message": "invalid or missing token"})
        assert guarded, "the template leaves the jobs API's routes to AWS_IAM"
        assert ("GET", "/jobs") in guarded
        # past the authorizers, the real function answers (whatever it says, it is not the gateway's refusal)
        signed = signed_request(info, "GET", "/jobs", params={"limit": "1"})
        assert signed.status_code not in (401, 403), signed.text
        bearer = {"Authorization": f"Bearer {mint_jwt(info, 'user-1')}"}
        with_jwt = requests.get(f"{info['jwt_api_url']}/jobs", headers=bearer, timeout=30)
        assert with_jwt.status_code not in (401, 403), with_jwt.text
        for method, path in sorted(guarded):
            concrete = path.replace("{jobId}", "0" * 32).replace("{face}", "ada")
            unsigned = requests.request(method, info["api_url"] + concrete, timeout=30)
            assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"}), (method, path)
        key_path = key_file
    assert not Path(key_path).exists(), "the issuer's key goes away with the stack"


def _event_of(running: RunningStack, route: Route) -> str:
    assert running.stack and running.stack.resolver
    events = running.stack.resolver.template["Resources"][route.function_name]["Properties"]["Events"]
    for name, event in events.items():
        props = event.get("Properties", {})
        if event.get("Type") == "HttpApi" and (props.get("Method", "").upper(), props.get("Path")) == (
            route.method,
            route.path,
        ):
            return name
    raise AssertionError(f"no template event for {route.method} {route.path}")
