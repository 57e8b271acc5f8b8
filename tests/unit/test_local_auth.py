"""The local authorizers decide as API Gateway does, without a socket: SigV4 requests signed by
botocore pass and anything changed after signing fails with API Gateway's message; JWTs pass
only RS256 from the local issuer for its audience; a route's authorizer comes from the template
as SAM reads it."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from swapdrop_local import auth
from swapdrop_local.auth import (
    ApiCredentials,
    AuthRefused,
    IncomingRequest,
    LocalJwtIssuer,
    SigV4Verifier,
    presign_url,
    sign_headers,
)
from swapdrop_local.stack import redacted, route_auth
from swapdrop_local.template import Resolver

REGION = "eu-west-1"
HOST = "127.0.0.1:8080"
BASE = f"http://{HOST}"
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
CREDENTIALS = ApiCredentials.generate(REGION)


def _verifier(now: datetime = NOW) -> SigV4Verifier:
    return SigV4Verifier(CREDENTIALS, REGION, clock=lambda: now.timestamp())


def _received(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> IncomingRequest:
    """The request as the server sees it: what the client signed, plus the Host line it sends."""
    split = urlsplit(url)
    lines = [(name, value) for name, value in headers.items() if name.lower() != "host"]
    return IncomingRequest(method, split.path, split.query, [("Host", HOST), *lines], body)


def _signed(
    method: str = "POST",
    path: str = "/jobs",
    body: bytes = b'{"face": "ada"}',
    credentials: dict[str, str] | None = None,
    at: datetime = NOW,
    extra: dict[str, str] | None = None,
) -> IncomingRequest:
    url = BASE + path
    headers = {"Content-Type": "application/json", **(extra or {})}
    signed = sign_headers(credentials or CREDENTIALS.info(), method, url, headers, body, at=at)
    return _received(method, url, signed, body)


def _refusal(request: IncomingRequest, verifier: SigV4Verifier | None = None) -> AuthRefused:
    with pytest.raises(AuthRefused) as refused:
        (verifier or _verifier()).authorize(request)
    return refused.value


def test_a_botocore_signed_request_passes_with_the_iam_identity_api_gateway_gives() -> None:
    context = _verifier().authorize(_signed())
    assert context == {
        "iam": {
            "accessKey": CREDENTIALS.access_key_id,
            "accountId": "123456789012",
            "callerId": CREDENTIALS.user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": "arn:aws:iam::123456789012:user/swapdrop-local",
            "userId": CREDENTIALS.user_id,
        }
    }


def test_a_query_string_and_an_encoded_path_are_canonicalised_as_the_client_did() -> None:
    url = auth.api_url({"api_url": BASE}, "/faces/a%20b", {"face": "x y/z", "cursor": "a+b=", "limit": 5})
    signed = sign_headers(CREDENTIALS.info(), "GET", url, at=NOW)
    assert _verifier().authorize(_received("GET", url, signed))["iam"]["accessKey"] == CREDENTIALS.access_key_id


def test_an_unsigned_request_is_forbidden() -> None:
    refused = _refusal(IncomingRequest("GET", "/jobs", "", [("Host", HOST)]))
    assert (refused.status, refused.message) == (403, "Forbidden")


def test_a_wrong_secret_is_a_signature_mismatch() -> None:
    wrong = {**CREDENTIALS.info(), "secret_access_key": "x" * 40}
    refused = _refusal(_signed(credentials=wrong))
    assert refused.status == 403 and refused.message == auth.SIGNATURE_MISMATCH
    assert refused.message.startswith("The request signature we calculated does not match the signature you provided.")


def _header(request: IncomingRequest, name: str, value: str) -> IncomingRequest:
    """`request` with header `name` set to `value` (replaced where present)."""
    headers = [(k, value if k == name else v) for k, v in request.headers]
    return replace(request, headers=headers)


def _added(request: IncomingRequest, name: str, value: str) -> IncomingRequest:
    return replace(request, headers=[*request.headers, (name, value)])


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: replace(r, body=b'{"face": "eve"}'), id="body"),
        pytest.param(lambda r: replace(r, raw_path="/jobs/x"), id="path"),
        pytest.param(lambda r: replace(r, raw_query="limit=1"), id="query"),
        pytest.param(lambda r: replace(r, method="PUT"), id="method"),
        pytest.param(lambda r: _header(r, "Content-Type", "text/plain"), id="signed-header"),
        pytest.param(lambda r: _added(r, "Content-Type", "text/plain"), id="duplicated-signed-header"),
        pytest.param(lambda r: _added(r, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"), id="unsigned-payload-claimed"),
    ],
)
def test_anything_changed_after_signing_is_a_signature_mismatch(tamper: Any) -> None:
    refused = _refusal(tamper(_signed()))
    assert (refused.status, refused.message) == (403, auth.SIGNATURE_MISMATCH)


def test_an_unsigned_header_may_change_as_on_aws() -> None:
    assert _verifier().authorize(_added(_signed(), "X-Trace", "1"))


def test_a_date_more_than_five_minutes_old_has_expired() -> None:
    refused = _refusal(_signed(at=NOW - timedelta(minutes=5, seconds=1)))
    assert refused.status == 403
    assert refused.message == (
        "Signature expired: 20260501T115459Z is now earlier than 20260501T115500Z (20260501T120000Z - 5 min.)"
    )


def test_a_date_more_than_five_minutes_ahead_is_not_yet_current() -> None:
    refused = _refusal(_signed(at=NOW + timedelta(minutes=5, seconds=1)))
    assert refused.status == 403
    assert refused.message == (
        "Signature not yet current: 20260501T120501Z is still later than 20260501T120500Z (20260501T120000Z + 5 min.)"
    )


def test_within_the_clock_skew_either_side_passes() -> None:
    for skew in (timedelta(minutes=-5), timedelta(minutes=5)):
        assert _verifier().authorize(_signed(at=NOW + skew))


def test_an_unknown_access_key_is_an_invalid_security_token() -> None:
    stranger = ApiCredentials.generate(REGION).info()
    refused = _refusal(_signed(credentials=stranger))
    assert (refused.status, refused.message) == (403, "The security token included in the request is invalid.")


def test_a_session_token_is_refused_since_the_local_stack_issues_none() -> None:
    refused = _refusal(_signed(extra={"X-Amz-Security-Token": "FwoG..."}))
    assert (refused.status, refused.message) == (403, auth.INVALID_TOKEN)


def test_a_signature_for_another_region_or_service_names_the_scope() -> None:
    other_region = _refusal(_signed(credentials={**CREDENTIALS.info(), "region": "us-east-1"}))
    assert other_region.message == "Credential should be scoped to a valid region. "
    other_service = _refusal(_signed(credentials={**CREDENTIALS.info(), "service": "lambda"}))
    assert other_service.message == "Credential should be scoped to correct service: 'execute-api'. "


def test_a_bearer_token_on_an_iam_route_is_refused_without_echoing_it() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.secret-looking.token"
    refused = _refusal(IncomingRequest("GET", "/jobs", "", [("Host", HOST), ("Authorization", f"Bearer {token}")]))
    assert refused.status == 403
    assert refused.message.startswith("Invalid key=value pair (missing equal-sign) in Authorization header")
    assert token not in refused.message


def test_an_incomplete_authorization_header_names_what_is_missing() -> None:
    header = f"AWS4-HMAC-SHA256 Credential={CREDENTIALS.access_key_id}/20260501/{REGION}/execute-api/aws4_request"
    refused = _refusal(IncomingRequest("GET", "/jobs", "", [("Host", HOST), ("Authorization", header)]))
    assert refused.status == 403
    assert "requires 'Signature' parameter" in refused.message
    assert "requires 'SignedHeaders' parameter" in refused.message
    assert "'X-Amz-Date' or a 'Date' header" in refused.message


def test_two_authorization_headers_are_forbidden() -> None:
    request = _signed()
    authorization = next(v for k, v in request.headers if k == "Authorization")
    refused = _refusal(_added(request, "Authorization", authorization))
    assert (refused.status, refused.message) == (403, "Forbidden")


def test_control_characters_in_the_authorization_header_are_refused() -> None:
    request = _signed()
    authorization = next(v for k, v in request.headers if k == "Authorization")
    refused = _refusal(_header(request, "Authorization", authorization.replace("Signature=", "Signature=\x00\x1b")))
    assert (refused.status, refused.message) == (403, auth.SIGNATURE_MISMATCH)


def test_a_huge_authorization_header_is_refused_with_a_short_answer() -> None:
    huge = "AWS4-HMAC-SHA256 " + "Credential=" + "A" * 60000
    refused = _refusal(IncomingRequest("GET", "/jobs", "", [("Host", HOST), ("Authorization", huge)]))
    assert refused.status == 403 and len(refused.message) < 300


# --- presigned URLs


def _presigned(expires: int = 60, at: datetime = NOW, path: str = "/jobs?face=ada") -> IncomingRequest:
    url = presign_url(CREDENTIALS.info(), "GET", BASE + path, expires=expires, at=at)
    return _received("GET", url, {})


def test_a_presigned_url_passes_until_it_expires_and_not_after() -> None:
    request = _presigned(expires=60)
    assert _verifier(NOW + timedelta(seconds=60)).authorize(request)
    refused = _refusal(request, _verifier(NOW + timedelta(seconds=61)))
    assert refused.status == 403 and refused.message.startswith("Signature expired: 20260501T120000Z")


def test_a_presigned_url_with_a_changed_query_or_expiry_fails() -> None:
    request = _presigned()
    for query in (
        request.raw_query.replace("face=ada", "face=eve"),
        request.raw_query.replace("X-Amz-Expires=60", "X-Amz-Expires=6000"),
    ):
        assert _refusal(replace(request, raw_query=query)).message == auth.SIGNATURE_MISMATCH


def test_a_presigned_url_longer_than_a_week_or_incomplete_is_refused() -> None:
    assert "less than a week" in _refusal(_presigned(expires=604801)).message
    request = _presigned()
    without_date = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Date="))
    assert _refusal(replace(request, raw_query=without_date)).message == auth.QUERY_PARAMETERS_MISSING


def test_header_and_query_signatures_together_are_refused() -> None:
    request = _presigned()
    assert _refusal(_added(request, "Authorization", "AWS4-HMAC-SHA256 x=y")).message == auth.BOTH_AUTH_MECHANISMS


# --- JWT

ISSUER = LocalJwtIssuer("http://127.0.0.1:9999/")


def _bearer(token: str, scheme: str = "Bearer ") -> IncomingRequest:
    return IncomingRequest("GET", "/jobs", "", [("Host", HOST), ("Authorization", scheme + token)])


def _jwt_refusal(request: IncomingRequest) -> AuthRefused:
    with pytest.raises(AuthRefused) as refused:
        ISSUER.verifier().authorize(request)
    assert refused.value.status == 401 and refused.value.message == "Unauthorized"
    assert refused.value.headers["www-authenticate"].startswith('Bearer scope="" error="invalid_token"')
    return refused.value


def test_a_token_from_the_issuer_passes_with_its_claims_as_strings() -> None:
    token = ISSUER.mint("user-1", groups=["a", "b"], admin=False, n=3, nested={"x": 1})
    context = ISSUER.verifier().authorize(_bearer(token))
    claims = context["jwt"]["claims"]
    assert context["jwt"]["scopes"] is None
    assert claims["sub"] == "user-1" and claims["iss"] == ISSUER.issuer and claims["aud"] == "swapdrop-local"
    assert (claims["groups"], claims["admin"], claims["n"], claims["nested"]) == ("[a b]", "false", "3", '{"x":1}')
    assert all(isinstance(value, str) for value in claims.values())
    assert ISSUER.verifier().authorize(_bearer(token, scheme=""))  # API Gateway takes it without "Bearer " too


@pytest.mark.parametrize(
    ("token", "description"),
    [
        (ISSUER.mint("u", ttl_seconds=-1), "the token has expired"),
        (ISSUER.mint("u", aud="someone-else"), "the token does not have a valid audience"),
        (ISSUER.mint("u", iss="http://127.0.0.1:1/"), "the token does not have a valid issuer"),
        (LocalJwtIssuer(ISSUER.issuer).mint("u"), "the token's key id is not the issuer's"),
        ("not.a.jwt", "the token is not a valid JWT"),
    ],
    ids=["expired", "audience", "issuer", "other-key", "garbage"],
)
def test_a_bad_token_is_unauthorized(token: str, description: str) -> None:
    assert description in _jwt_refusal(_bearer(token)).headers["www-authenticate"]


def test_a_token_signed_by_another_key_with_the_issuers_kid_is_unauthorized() -> None:
    impostor = LocalJwtIssuer(ISSUER.issuer, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    impostor.key_id = ISSUER.key_id
    _jwt_refusal(_bearer(impostor.mint("u")))


def test_alg_none_and_hs256_with_the_public_key_as_secret_are_unauthorized() -> None:
    claims = {"iss": ISSUER.issuer, "aud": ISSUER.audience, "sub": "u", "exp": 4102444800}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": ISSUER.key_id})
    _jwt_refusal(_bearer(unsigned))
    public_pem = ISSUER.private_key.public_key().public_bytes(
        auth.serialization.Encoding.PEM, auth.serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": ISSUER.key_id}
    confused = _hs256(header, claims, public_pem)  # PyJWT refuses to make this one itself
    _jwt_refusal(_bearer(confused))


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return signing_input + "." + part(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def test_a_missing_or_doubled_token_is_unauthorized() -> None:
    _jwt_refusal(IncomingRequest("GET", "/jobs", "", [("Host", HOST)]))
    token = ISSUER.mint("u")
    _jwt_refusal(IncomingRequest("GET", "/jobs", "", [("Authorization", f"Bearer {token}")] * 2))


def test_mint_jwt_reads_the_key_file_the_info_names(tmp_path: Any) -> None:
    issuer = LocalJwtIssuer("http://127.0.0.1:9998/")
    key_file = issuer.write_private_key(tmp_path / "key.pem")
    assert key_file.stat().st_mode & 0o777 == 0o600
    token = auth.mint_jwt({"jwt": issuer.info()}, "user-9", ttl_seconds=60, tenant="t1")
    claims = issuer.verifier().authorize(_bearer(token))["jwt"]["claims"]
    assert (claims["sub"], claims["tenant"]) == ("user-9", "t1")
    assert int(claims["exp"]) - int(claims["iat"]) == 60


# --- which routes need what, from the template


def _template(api_auth: dict[str, Any] | None, events: dict[str, Any]) -> Resolver:
    api: dict[str, Any] = {"Type": "AWS::Serverless::HttpApi", "Properties": {}}
    if api_auth is not None:
        api["Properties"]["Auth"] = api_auth
    function = {"Type": "AWS::Serverless::Function", "Properties": {"Events": events}}
    return Resolver({"Resources": {"Api": api, "Fn": function}}, region=REGION)


def _event(path: str, auth_block: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ApiId": {"Ref": "Api"}, "Method": "GET", "Path": path}
    if auth_block is not None:
        props["Auth"] = auth_block
    return {"Type": "HttpApi", "Properties": props}


IAM_DEFAULT = {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}


def test_routes_take_the_apis_default_unless_they_say_none() -> None:
    resolver = _template(IAM_DEFAULT, {"Jobs": _event("/jobs"), "Health": _event("/health", {"Authorizer": "NONE"})})
    assert route_auth(resolver, "Fn", "Jobs") == "AWS_IAM"
    assert route_auth(resolver, "Fn", "Health") == "NONE"


def test_an_api_without_auth_leaves_routes_open_and_iam_needs_enabling() -> None:
    assert route_auth(_template(None, {"Cb": _event("/callbacks/{jobId}")}), "Fn", "Cb") == "NONE"
    resolver = _template({}, {"Jobs": _event("/jobs", {"Authorizer": "AWS_IAM"})})
    with pytest.raises(ValueError, match="EnableIamAuthorizer"):
        route_auth(resolver, "Fn", "Jobs")


def test_a_jwt_authorizer_is_jwt_and_an_unknown_one_is_an_error_not_an_open_route() -> None:
    api_auth = {
        **IAM_DEFAULT,
        "Authorizers": {"Oidc": {"JwtConfiguration": {"issuer": "https://x", "audience": ["a"]}}},
    }
    resolver = _template(
        api_auth,
        {"A": _event("/a", {"Authorizer": "Oidc"}), "B": _event("/b", {"Authorizer": "LambdaAuth"})},
    )
    assert route_auth(resolver, "Fn", "A") == "JWT"
    with pytest.raises(ValueError, match="LambdaAuth"):
        route_auth(resolver, "Fn", "B")


def test_redacted_info_hides_only_the_secret() -> None:
    info = {"api_url": BASE, "api_credentials": CREDENTIALS.info()}
    shown = redacted(copy.deepcopy(info))
    assert CREDENTIALS.secret_access_key not in json.dumps(shown)
    assert shown["api_credentials"]["access_key_id"] == CREDENTIALS.access_key_id
    assert info["api_credentials"]["secret_access_key"] == CREDENTIALS.secret_access_key
