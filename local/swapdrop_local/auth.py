"""API Gateway's authorizers, locally: AWS_IAM (SigV4) and JWT, refusing as API Gateway refuses.

A client that works against `swapdrop local` must work against AWS, and one that is refused
on AWS must be refused here with the same status and body. So the IAM check recomputes the
signature with botocore's own SigV4 signer from what was received (method, path, query,
the headers the client says it signed, the body's hash) and compares in constant time; the
JWT check is PyJWT with RS256 only, the issuer and the audience pinned. The stack makes the
credentials and the issuer's key at start; `signed_request` and `mint_jwt` are the client
side for tests, the demo and people.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import os
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode

import jwt
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from swapdrop_local.template import LOCAL_ACCOUNT

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
CLOCK_SKEW_SECONDS = 300
"""API Gateway accepts an X-Amz-Date up to 5 minutes either side of its clock."""
MAX_PRESIGN_SECONDS = 604800
"""SigV4's limit for X-Amz-Expires: a week."""
JWT_AUDIENCE = "swapdrop-local"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# API Gateway's answers (403 for IAM, 401 for JWT), word for word.
FORBIDDEN = "Forbidden"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret"
    " Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 - a message
UNAUTHORIZED = "Unauthorized"
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders")
QUERY_PARAMETERS_MISSING = (
    "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature',"
    " 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the query-string parameters."
)
BOTH_AUTH_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string"
    " parameter or the Authorization header should be specified"
)


class AuthRefused(Exception):
    """A request the authorizer refuses: API Gateway answers `status` with {"message": message}."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.reason = reason or message
        """For the log: short, never the token or the signature."""


@dataclass(frozen=True)
class IncomingRequest:
    """What an authorizer sees: the request as received (raw path and query, every header line)."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


class Authorizer(Protocol):
    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        """The event's requestContext.authorizer, or AuthRefused."""
        ...


# --------------------------------------------------------------------------- IAM (SigV4)


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class ApiCredentials:
    """The local stack's IAM user: its access key, and the identity API Gateway reports for it."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    user_name: str = "swapdrop-local"
    user_id: str = "AIDALOCALSWAPDROPUSER"
    service: str = SERVICE

    @classmethod
    def generate(cls, region: str) -> ApiCredentials:
        """Fresh random keys shaped as AWS's (AKIA + 16, a 40-character secret)."""
        return cls(
            access_key_id="AKIA" + _random(string.ascii_uppercase + "234567", 16),
            secret_access_key=_random(string.ascii_letters + string.digits + "+/", 40),
            region=region,
            user_id="AIDA" + _random(string.ascii_uppercase + "234567", 17),
        )

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{self.user_name}"

    def info(self) -> dict[str, str]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": self.region,
            "service": self.service,
        }

    def identity(self) -> dict[str, Any]:
        """requestContext.authorizer.iam as API Gateway (payload 2.0) fills it for an IAM user."""
        return {
            "accessKey": self.access_key_id,
            "accountId": LOCAL_ACCOUNT,
            "callerId": self.user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": self.user_arn,
            "userId": self.user_id,
        }


class _Recompute(SigV4Auth):
    """botocore's signer, made to sign exactly the headers the client named (and no others)."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: HTTPHeaders) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def _iso(moment: float) -> str:
    return time.strftime(SIGV4_TIMESTAMP, time.gmtime(moment))


def _parse_iso(text: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(text, SIGV4_TIMESTAMP)))
    except ValueError:
        raise AuthRefused(
            403,
            f"Date must be in ISO-8601 'basic format'. Got '{text[:64]}'. See http://en.wikipedia.org/wiki/ISO_8601",
            reason="malformed date",
        ) from None


@dataclass
class _Claimed:
    """What the request claims: key, scope, date, signed headers and signature."""

    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    terminator: str
    timestamp: str
    signed_headers: list[str]
    signature: str
    expires: int | None = None


class SigV4Verifier:
    """API Gateway's AWS_IAM authorizer for the local credentials (header or presigned-query form)."""

    def __init__(
        self,
        credentials: ApiCredentials | Iterable[ApiCredentials],
        region: str,
        service: str = SERVICE,
        clock: Any = time.time,
    ) -> None:
        keys = [credentials] if isinstance(credentials, ApiCredentials) else list(credentials)
        self._keys = {c.access_key_id: c for c in keys}
        self.region = region
        self.service = service
        self._clock = clock

    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        authorization = request.header_values("authorization")
        pairs = parse_qsl(request.raw_query, keep_blank_values=True)
        presigned = any(name == "X-Amz-Algorithm" for name, _ in pairs)
        if authorization and presigned:
            raise AuthRefused(403, BOTH_AUTH_MECHANISMS, reason="both header and query auth")
        if not authorization and not presigned:
            raise AuthRefused(403, FORBIDDEN, reason="no signature")
        if len(authorization) > 1:
            raise AuthRefused(403, FORBIDDEN, reason="more than one Authorization header")
        if presigned:
            claimed, query = self._from_query(pairs), [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
            if any(k == "X-Amz-Security-Token" for k, _ in pairs):
                raise AuthRefused(403, INVALID_TOKEN, reason="session token (none are issued locally)")
        else:
            claimed, query = self._from_header(authorization[0], request), pairs
            if request.header_values("x-amz-security-token"):
                raise AuthRefused(403, INVALID_TOKEN, reason="session token (none are issued locally)")
        credentials = self._keys.get(claimed.access_key_id)
        if credentials is None:
            raise AuthRefused(403, INVALID_TOKEN, reason="unknown access key")
        self._check_scope(claimed)
        self._check_time(claimed)
        expected = self._signature(credentials, claimed, request, query)
        if not hmac.compare_digest(expected.encode(), claimed.signature.encode("utf-8", "replace")):
            raise AuthRefused(403, SIGNATURE_MISMATCH, reason="signature mismatch")
        return {"iam": credentials.identity()}

    # --- what the request claims ------------------------------------------------------------

    def _from_header(self, value: str, request: IncomingRequest) -> _Claimed:
        algorithm, _, rest = value.strip().partition(" ")
        parameters: dict[str, str] = {}
        for part in rest.split(","):
            name, equals, content = part.strip().partition("=")
            if not equals or algorithm != ALGORITHM:
                digest = base64.b64encode(hashlib.sha256(value.encode("utf-8", "replace")).digest()).decode()
                raise AuthRefused(
                    403,
                    "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and"
                    f" encoded with Base64): '{digest}'.",
                    reason="not a SigV4 Authorization header",
                )
            parameters[name] = content
        missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not parameters.get(name)]
        dates = request.header_values("x-amz-date") or request.header_values("date")
        problems = [f"Authorization header requires '{name}' parameter." for name in missing]
        if not dates:
            problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        if problems:
            raise AuthRefused(403, " ".join(problems), reason="incomplete Authorization header")
        if len(dates) > 1:
            raise AuthRefused(403, FORBIDDEN, reason="more than one date header")
        if request.header_values("x-amz-date"):
            timestamp = dates[0].strip()
            _parse_iso(timestamp)
        else:
            try:
                timestamp = parsedate_to_datetime(dates[0]).astimezone(UTC).strftime(SIGV4_TIMESTAMP)
            except (TypeError, ValueError):
                raise AuthRefused(403, FORBIDDEN, reason="malformed Date header") from None
        return self._claimed(parameters["Credential"], timestamp, parameters["SignedHeaders"], parameters["Signature"])

    def _from_query(self, pairs: list[tuple[str, str]]) -> _Claimed:
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            values.setdefault(name, []).append(value)
        names = (*_QUERY_AUTH, "X-Amz-Expires")
        if any(len(values.get(name, [])) != 1 or not values[name][0] for name in names):
            raise AuthRefused(403, QUERY_PARAMETERS_MISSING, reason="incomplete query auth")
        one = {name: values[name][0] for name in names}
        if one["X-Amz-Algorithm"] != ALGORITHM:
            raise AuthRefused(
                403, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"', reason="unsupported query algorithm"
            )
        if not one["X-Amz-Expires"].isdigit() or len(one["X-Amz-Expires"]) > 7:
            raise AuthRefused(403, "X-Amz-Expires should be a number", reason="bad X-Amz-Expires")
        expires = int(one["X-Amz-Expires"])
        if expires > MAX_PRESIGN_SECONDS:
            raise AuthRefused(
                403,
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less"
                " than 604800 seconds",
                reason="X-Amz-Expires over a week",
            )
        _parse_iso(one["X-Amz-Date"])
        claimed = self._claimed(
            one["X-Amz-Credential"], one["X-Amz-Date"], one["X-Amz-SignedHeaders"], one["X-Amz-Signature"]
        )
        claimed.expires = expires
        return claimed

    @staticmethod
    def _claimed(credential: str, timestamp: str, signed_headers: str, signature: str) -> _Claimed:
        parts = credential.split("/")
        if len(parts) != 5:
            raise AuthRefused(403, FORBIDDEN, reason="malformed Credential")
        return _Claimed(
            access_key_id=parts[0],
            scope_date=parts[1],
            scope_region=parts[2],
            scope_service=parts[3],
            terminator=parts[4],
            timestamp=timestamp,
            signed_headers=signed_headers.split(";"),
            signature=signature.strip(),
        )

    # --- checks ------------------------------------------------------------------------------

    def _check_scope(self, claimed: _Claimed) -> None:
        if claimed.terminator != "aws4_request":
            raise AuthRefused(
                403,
                "Credential should be scoped with a valid terminator: 'aws4_request',"
                f" not '{claimed.terminator[:64]}'. ",
                reason="bad scope terminator",
            )
        if claimed.scope_service != self.service:
            raise AuthRefused(
                403, f"Credential should be scoped to correct service: '{self.service}'. ", reason="wrong service"
            )
        if claimed.scope_region != self.region:
            raise AuthRefused(403, "Credential should be scoped to a valid region. ", reason="wrong region")
        if claimed.scope_date != claimed.timestamp[:8]:
            raise AuthRefused(
                403,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP:"
                f" '{claimed.scope_date[:16]}' != '{claimed.timestamp[:8]}', from '{claimed.timestamp}'.",
                reason="scope date mismatch",
            )
        if "host" not in claimed.signed_headers:
            raise AuthRefused(
                403, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", reason="host unsigned"
            )

    def _check_time(self, claimed: _Claimed) -> None:
        signed_at, now = _parse_iso(claimed.timestamp), float(int(self._clock()))
        if signed_at > now + CLOCK_SKEW_SECONDS:
            raise AuthRefused(
                403,
                f"Signature not yet current: {claimed.timestamp} is still later than"
                f" {_iso(now + CLOCK_SKEW_SECONDS)} ({_iso(now)} + 5 min.)",
                reason="signed in the future",
            )
        if claimed.expires is None and signed_at < now - CLOCK_SKEW_SECONDS:
            raise AuthRefused(
                403,
                f"Signature expired: {claimed.timestamp} is now earlier than"
                f" {_iso(now - CLOCK_SKEW_SECONDS)} ({_iso(now)} - 5 min.)",
                reason="signature expired",
            )
        if claimed.expires is not None and now > signed_at + claimed.expires:
            raise AuthRefused(
                403,
                f"Signature expired: {claimed.timestamp} is now earlier than"
                f" {_iso(now - claimed.expires)} ({_iso(now)} - {claimed.expires} sec.)",
                reason="presigned URL expired",
            )

    def _signature(
        self, credentials: ApiCredentials, claimed: _Claimed, request: IncomingRequest, query: list[tuple[str, str]]
    ) -> str:
        signed = HTTPHeaders()
        for name in claimed.signed_headers:
            for value in request.header_values(name):
                signed[name] = value
        body_hash = hashlib.sha256(request.body).hexdigest() if request.body else EMPTY_SHA256
        claimed_hash = request.header_values("x-amz-content-sha256")
        if claimed_hash and claimed_hash != [body_hash]:  # UNSIGNED-PAYLOAD or a lie: the body would be unchecked
            return ""
        signer = _Recompute(
            Credentials(credentials.access_key_id, credentials.secret_access_key), self.service, self.region, signed
        )
        # The received path as is (botocore normalises and encodes it as every SigV4 client does);
        # the query decoded, so botocore re-encodes it canonically.
        aws_request = AWSRequest(method=request.method, url=f"http://local{request.raw_path}", data=request.body)
        aws_request.params = query
        aws_request.context["timestamp"] = claimed.timestamp
        canonical = signer.canonical_request(aws_request)
        return signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)


# --------------------------------------------------------------------------- the client side of SigV4


def _botocore_credentials(credentials: Mapping[str, str]) -> Credentials:
    return Credentials(credentials["access_key_id"], credentials["secret_access_key"])


def _sign_at(signer: SigV4Auth, request: AWSRequest, moment: datetime | None) -> None:
    """botocore's add_auth, at `moment` instead of now (tests sign in the past and the future)."""
    if moment is None:
        signer.add_auth(request)
        return
    request.context["timestamp"] = moment.astimezone(UTC).strftime(SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(request)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    signer._inject_signature_to_request(request, signer.signature(string_to_sign, request))


def sign_headers(
    credentials: Mapping[str, str],
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    at: datetime | None = None,
) -> dict[str, str]:
    """The headers to send (Authorization and X-Amz-Date added) for a SigV4 request to `url`."""
    request = AWSRequest(method=method.upper(), url=url, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(_botocore_credentials(credentials), credentials.get("service", SERVICE), credentials["region"])
    _sign_at(signer, request, at)
    return dict(request.headers.items())


def presign_url(
    credentials: Mapping[str, str], method: str, url: str, expires: int = 3600, at: datetime | None = None
) -> str:
    """A presigned URL (X-Amz-* query parameters), as botocore's SigV4QueryAuth makes it."""
    request = AWSRequest(method=method.upper(), url=url)
    signer = SigV4QueryAuth(
        _botocore_credentials(credentials), credentials.get("service", SERVICE), credentials["region"], expires
    )
    _sign_at(signer, request, at)
    return request.url


def api_url(info: Mapping[str, Any], path: str, params: Mapping[str, Any] | None = None) -> str:
    url = info["api_url"].rstrip("/") + path
    if params:
        url += "?" + urlencode(list(params.items()), quote_via=quote, safe="-_.~")
    return url


def signed_request(
    info: Mapping[str, Any],
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    data: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 35.0,
) -> Any:
    """Send a SigV4-signed request to the local IAM API (`info` is RunningStack.info()); a requests.Response."""
    import requests

    url = api_url(info, path, params)
    all_headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    signed = sign_headers(info["api_credentials"], method, url, all_headers, data)
    return requests.request(method.upper(), url, data=data or None, headers=signed, timeout=timeout)


# --------------------------------------------------------------------------- JWT


def _claim_text(value: Any) -> str:
    """API Gateway hands every claim to the function as a string: lists as "[a b]", objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _unauthorized(description: str) -> AuthRefused:
    header = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return AuthRefused(401, UNAUTHORIZED, {"www-authenticate": header}, reason=description)


class JwtVerifier:
    """API Gateway's JWT authorizer for one issuer and audience: RS256 only, the issuer's key only."""

    def __init__(self, issuer: str, audience: str, public_key: rsa.RSAPublicKey, key_id: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._public_key = public_key
        self._key_id = key_id

    def authorize(self, request: IncomingRequest) -> dict[str, Any]:
        values = request.header_values("authorization")
        if len(values) != 1 or not values[0].strip():
            raise _unauthorized("the token is missing" if not values else "more than one Authorization header")
        token = values[0].strip()
        if token[:7].lower() == "bearer ":  # API Gateway takes the token with or without the prefix
            token = token[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("the token is not a valid JWT") from None
        if header.get("alg") != "RS256":
            raise _unauthorized("the token's algorithm is not RS256")
        if header.get("kid") != self._key_id:
            raise _unauthorized("the token's key id is not the issuer's")
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("the token does not have a valid audience") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the token does not have a valid issuer") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise _unauthorized("the token's signature or claims are invalid") from None
        return {"jwt": {"claims": {name: _claim_text(value) for name, value in claims.items()}, "scopes": None}}


class LocalJwtIssuer:
    """The local OIDC issuer: an RSA key made at stack start, kept in memory and in a 0600 file."""

    def __init__(self, issuer: str, audience: str = JWT_AUDIENCE, key: rsa.RSAPrivateKey | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.private_key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_der).hexdigest()[:16]
        self.private_key_file: Path | None = None

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_private_key(self, path: Path) -> Path:
        """Write the key readable by its owner only (created 0600, never world-readable for an instant)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.private_pem())
        self.private_key_file = path
        return path

    def verifier(self) -> JwtVerifier:
        return JwtVerifier(self.issuer, self.audience, self.private_key.public_key(), self.key_id)

    def info(self) -> dict[str, str]:
        key_file = str(self.private_key_file) if self.private_key_file else ""
        return {
            "issuer": self.issuer,
            "audience": self.audience,
            "key_id": self.key_id,
            "private_key_file": key_file,
            "private_key_pem_file": key_file,  # the name ISSUE7's design uses
        }

    def mint(self, sub: str, ttl_seconds: int = 3600, **claims: Any) -> str:
        return _mint(self.private_key, self.key_id, self.issuer, self.audience, sub, ttl_seconds, claims)


def _mint(
    key: Any, key_id: str, issuer: str, audience: str, sub: str, ttl_seconds: int, claims: Mapping[str, Any]
) -> str:
    now = int(time.time())
    payload = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + ttl_seconds, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": key_id})


def mint_jwt(info: Mapping[str, Any], sub: str, ttl_seconds: int = 3600, **claims: Any) -> str:
    """An RS256 token from the local issuer (`info` is RunningStack.info()); `claims` override any default."""
    settings = info["jwt"]
    key_file = settings.get("private_key_file") or settings["private_key_pem_file"]
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    return _mint(key, settings["key_id"], settings["issuer"], settings["audience"], sub, ttl_seconds, claims)
