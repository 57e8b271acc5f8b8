"""A local S3 gateway in front of moto that checks presigned requests as S3 does.

moto's server accepts any browser-form POST (no policy, signature, expiry or size check)
and serves a presigned URL after it has expired. The jobs API hands out exactly these
(presigned POST forms for uploads, presigned GETs for results), so locally they must be
refused as AWS refuses them. The gateway forwards every request to moto unchanged, except:

- a POST object (multipart/form-data to a bucket, no Authorization header): the form is
  read as a stream, the policy checked (signature with the local credentials, expiration,
  every condition, no field left uncovered) once the fields before the file are in, and the
  file refused as soon as it passes the policy's content-length-range; only then is the form
  (its parts up to the file: S3 ignores what follows) sent on to moto, which stores it and
  sends its notification;
- a presigned request (X-Amz-* query authentication): the signature is recomputed with
  botocore's S3 query signer and the expiry checked.

Header-signed requests (boto3 clients) pass as they are. Refusals are S3's XML error
documents with S3's status codes and messages.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.client
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, Preamble

log = logging.getLogger("swapdrop.local")

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
MAX_PRESIGN_SECONDS = 604800
"""SigV4's limit for X-Amz-Expires: a week."""
FUTURE_SKEW_SECONDS = 900
"""S3 answers "Request is not yet valid" for an X-Amz-Date more than 15 minutes ahead."""
MAX_PRE_FILE_BYTES = 20 * 1024
"""S3 limits the form fields before the file to 20 KB."""
MAX_AFTER_FILE_BYTES = 64 * 1024
"""What may follow the file part (S3 ignores it; it is read and dropped, within this bound)."""
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
"""The gateway's own ceiling on a POSTed file, whatever the policy allows (bounded memory)."""
BODY_DEADLINE_SECONDS = 30.0
IDLE_TIMEOUT_SECONDS = 30.0
_CHUNK = 65536
_EXEMPT_FIELDS = frozenset({"x-amz-signature", "file", "policy"})
"""Form fields no condition has to cover (and names starting x-ignore-), per S3's POST policy rules."""
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders")

# S3's words, as S3 answers them.
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)
POLICY_EXPIRED = "Invalid according to Policy: Policy expired."
CONDITION_FAILED = "Invalid according to Policy: Policy Condition failed: "
EXTRA_FIELDS = "Invalid according to Policy: Extra input fields: "
TOO_LARGE = "Your proposed upload exceeds the maximum allowed size"
TOO_SMALL = "Your proposed upload is smaller than the minimum allowed size"
REQUEST_EXPIRED = "Request has expired"
NOT_YET_VALID = "Request is not yet valid"
UNKNOWN_ACCESS_KEY = "The AWS Access Key Id you provided does not exist in our records."
MALFORMED_POST = "The body of your POST request is not well-formed multipart/form-data."
SIGV4_ONLY = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
QUERY_INCOMPLETE = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature,"
    " X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
BOTH_AUTH = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter"
    " or the Authorization header should be specified"
)


class S3Error(Exception):
    """A refusal, answered as S3 answers it: `status` and an XML <Error> document."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.extra = {name: str(value) for name, value in extra.items()}

    def document(self, request_id: str = "") -> bytes:
        request_id = request_id or secrets.token_hex(8).upper()
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        parts += [f"<{name}>{escape(value)}</{name}>" for name, value in self.extra.items()]
        parts += [
            f"<RequestId>{request_id}</RequestId>",
            f"<HostId>{base64.b64encode(request_id.encode()).decode()}</HostId>",
        ]
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


def _access_denied(message: str, **extra: Any) -> S3Error:
    return S3Error(403, "AccessDenied", message, **extra)


def _invalid_argument(message: str, name: str, value: str = "") -> S3Error:
    return S3Error(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value[:256])


def _iso8601(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _parse_amz_date(text: str) -> float:
    return datetime.strptime(text, SIGV4_TIMESTAMP).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Keys:
    """The access keys S3 knows locally (access key id → secret) and the stack's region."""

    secrets: Mapping[str, str] = field(repr=False)
    region: str

    def secret_for(self, access_key_id: str) -> str:
        secret = self.secrets.get(access_key_id)
        if secret is None:
            raise S3Error(403, "InvalidAccessKeyId", UNKNOWN_ACCESS_KEY, AWSAccessKeyId=access_key_id[:128])
        return secret


def _signer(secret_key: str, access_key: str, region: str) -> SigV4Auth:
    return SigV4Auth(Credentials(access_key, secret_key), SERVICE, region)


# --------------------------------------------------------------------------- POST policy


def post_policy_signature(secret_key: str, scope_date: str, region: str, policy_b64: str) -> str:
    """SigV4 for a POST form: HMAC-SHA256 of the base64 policy with the signing key of that day and region."""
    request = AWSRequest(method="POST", url="http://local/")
    request.context["timestamp"] = scope_date + "T000000Z"  # only the date enters the signing key
    return _signer(secret_key, "", region).signature(policy_b64, request)


@dataclass(frozen=True)
class CheckedPolicy:
    """What the file is still checked against once the fields passed."""

    min_bytes: int = 0
    max_bytes: int | None = None


def _condition_text(condition: Any) -> str:
    if isinstance(condition, dict):
        (name, value), *_ = condition.items()
        condition = ["eq", f"${name}", value]
    return json.dumps(condition, ensure_ascii=False)


def _invalid_policy(message: str) -> S3Error:
    return S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: {message}")


def _parse_expiration(value: Any) -> float:
    if not isinstance(value, str):
        raise _invalid_policy(f"Invalid 'expiration' value: '{str(value)[:64]}'")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: '{value[:64]}'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def check_post_policy(fields: Mapping[str, str], bucket: str, keys: Keys, now: float) -> CheckedPolicy:
    """Check a POST form's fields (names lower-cased, the file excluded) as S3 does before it reads the file.

    Order: required fields, signature over the policy, policy document, expiration, every
    condition, then fields no condition covers. The content-length-range is returned, to be
    applied to the file as it arrives."""
    if not fields.get("key"):
        raise _invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            "key",
        )
    if "awsaccesskeyid" in fields or "signature" in fields:
        raise S3Error(400, "InvalidRequest", SIGV4_ONLY)
    policy_b64 = fields.get("policy")
    if not policy_b64:
        raise _access_denied("Access Denied")  # an anonymous POST to a private bucket
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if not fields.get(name):
            label = "X-Amz-" + name.removeprefix("x-amz-").capitalize()
            raise _invalid_argument(
                f"Bucket POST must contain a field named '{label}'.  If it is specified, please check the order"
                " of the fields.",
                label,
            )
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise S3Error(400, "InvalidRequest", SIGV4_ONLY)
    credential = fields["x-amz-credential"].split("/")
    if len(credential) != 5 or credential[3] != SERVICE or credential[4] != "aws4_request":
        raise _invalid_argument(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting"
            ' "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
            "X-Amz-Credential",
            fields["x-amz-credential"],
        )
    secret = keys.secret_for(credential[0])
    # S3 signs with its own region: a form signed for another one fails here, as it would on AWS.
    expected = post_policy_signature(secret, credential[1], keys.region, policy_b64)
    provided = fields["x-amz-signature"]
    if not hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace")):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
            AWSAccessKeyId=credential[0],
            StringToSign=policy_b64[:4096],
            SignatureProvided=provided[:128],
        )
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise _invalid_policy("Invalid JSON.")
    if "expiration" not in policy:
        raise _invalid_policy("Policy missing expiration.")
    if now > _parse_expiration(policy["expiration"]):
        raise _access_denied(POLICY_EXPIRED)
    conditions = policy.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid_policy("Policy missing conditions.")
    covered: set[str] = set()
    checked = CheckedPolicy()
    for condition in conditions:
        checked = _check_condition(condition, fields, bucket, covered, checked)
    extra = [name for name in fields if name not in covered and name not in _EXEMPT_FIELDS]
    extra = [name for name in extra if not name.startswith("x-ignore-")]
    if extra:
        raise _access_denied(EXTRA_FIELDS + ", ".join(extra))
    return checked


def _check_condition(
    condition: Any, fields: Mapping[str, str], bucket: str, covered: set[str], checked: CheckedPolicy
) -> CheckedPolicy:
    if isinstance(condition, dict):
        if len(condition) != 1:
            raise _invalid_policy(
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
            )
        (name, value), *_ = condition.items()
        operator, target = "eq", f"${name}"
    elif isinstance(condition, list) and len(condition) == 3 and isinstance(condition[0], str):
        operator, target, value = condition[0].lower(), condition[1], condition[2]
    else:
        raise _invalid_policy(f"Invalid Condition: {_condition_text(condition)[:256]}")
    if operator == "content-length-range":
        if not all(isinstance(bound, int) and not isinstance(bound, bool) and bound >= 0 for bound in (target, value)):
            raise _invalid_policy(f"Invalid content-length-range: {_condition_text(condition)[:256]}")
        return CheckedPolicy(min_bytes=target, max_bytes=value)
    if operator not in ("eq", "starts-with") or not isinstance(target, str) or not target.startswith("$"):
        raise _invalid_policy(f"Invalid Condition: {_condition_text(condition)[:256]}")
    if not isinstance(value, str):
        raise _invalid_policy(f"Invalid Condition: {_condition_text(condition)[:256]}")
    name = target[1:].lower()
    covered.add(name)
    actual = bucket if name == "bucket" else fields.get(name)
    if operator == "eq":
        passed = actual == value
    elif name == "content-type" and actual is not None:  # a list of types: each one must match
        passed = all(part.strip().startswith(value) for part in actual.split(","))
    else:
        passed = actual is not None and actual.startswith(value)
    if not passed:
        raise _access_denied(CONDITION_FAILED + _condition_text(condition))
    return checked


def check_file_size(checked: CheckedPolicy, size: int, ceiling: int) -> None:
    """The file against the policy's content-length-range and the gateway's own ceiling."""
    limit = ceiling if checked.max_bytes is None else min(checked.max_bytes, ceiling)
    if size > limit:
        raise S3Error(400, "EntityTooLarge", TOO_LARGE, ProposedSize=size, MaxSizeAllowed=limit)
    if size < checked.min_bytes:
        raise S3Error(400, "EntityTooSmall", TOO_SMALL, ProposedSize=size, MinSizeAllowed=checked.min_bytes)


class PostForm:
    """A POST object's multipart body, fed as it arrives; checks each step as S3 does.

    Memory stays bounded: fields before the file up to 20 KB (S3's limit), the file up to
    its policy's maximum (and `max_file_bytes`), little after it. `body()` is the form to
    forward: the same parts, up to the file."""

    def __init__(
        self,
        content_type: str,
        bucket: str,
        keys: Keys,
        now: float,
        content_length: int | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        mimetype, options = parse_options_header(content_type)
        boundary = options.get("boundary", "")
        if mimetype != "multipart/form-data" or not boundary or len(boundary) > 200:
            raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST)
        self.boundary = boundary.encode("latin-1", "replace")
        self._decoder = MultipartDecoder(self.boundary, max_form_memory_size=MAX_PRE_FILE_BYTES + _CHUNK * 2)
        self._bucket, self._keys, self._now = bucket, keys, now
        self._content_length = content_length
        self._max_file_bytes = max_file_bytes
        self.fields: dict[str, str] = {}
        self._parts: list[tuple[str, list[tuple[str, str]], bytes]] = []
        self._current: tuple[str, list[tuple[str, str]]] | None = None
        self._value = bytearray()
        self._file_chunks: list[bytes] = []
        self.file_size = 0
        self.filename: str | None = None
        self._state = "fields"  # fields → file → after → done
        self._received = 0
        self._given = 0
        self._pending = bytearray()
        self._file_data_offset = 0
        self._after_bytes = 0
        self._checked: CheckedPolicy | None = None

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> None:
        """The next bytes of the body (b"" once it has all arrived); S3Error on the first problem."""
        self._received += len(data)
        # werkzeug's decoder can take the CR of a boundary split across two reads for data (a
        # final "--boundary-" without its second dash): it only ever sees a boundary whole.
        self._pending += data
        hold = 0 if not data else len(self.boundary) + 16
        given = bytes(self._pending[: len(self._pending) - hold]) if len(self._pending) > hold else b""
        del self._pending[: len(given)]
        self._given += len(given)
        try:
            if given:
                self._decoder.receive_data(given)
                self._drain()
            if not data:
                self._decoder.receive_data(None)
                self._drain()
        except RequestEntityTooLarge:
            if self._state == "fields":
                self._pre_data_too_large()
            raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST) from None
        except ValueError:
            raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST) from None
        if self._state == "fields" and self._received > MAX_PRE_FILE_BYTES + 4096:  # all of it before the file
            self._pre_data_too_large()
        if not data and not self.done:
            raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST)

    def _pre_data_too_large(self) -> None:
        raise S3Error(
            400,
            "MaxPostPreDataLengthExceeded",
            "Your POST request fields preceeding the upload file was too large.",
            MaxPostPreDataLength=MAX_PRE_FILE_BYTES,
        )

    def _drain(self) -> None:
        while True:
            event = self._decoder.next_event()
            if isinstance(event, NeedData):
                return
            if isinstance(event, Preamble):
                continue
            if isinstance(event, Epilogue):
                self._finish()
                return
            if self._state == "after":
                if isinstance(event, Data):
                    self._after_bytes += len(event.data)
                    if self._after_bytes > MAX_AFTER_FILE_BYTES:
                        raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST)
                continue
            if isinstance(event, (Field, File)) and (event.name or "").lower() == "file":
                # S3 takes the part named "file" as the file, with or without a filename
                self.filename = event.filename if isinstance(event, File) else ""
                self._current = (event.name or "", list(event.headers.items()))
                self._state = "file"
                self._checked = check_post_policy(self.fields, self._bucket, self._keys, self._now)
                buffered = self._decoder.buffer  # it starts with the line break before the data
                self._file_data_offset = self._given - len(buffered) + (2 if buffered[:2] == b"\r\n" else 1)
                self._refuse_early()
            elif isinstance(event, (Field, File)):
                name = (event.name or "").lower()
                if name in self.fields:
                    raise _invalid_argument(f"POST form field '{event.name[:64]}' given more than once.", name)
                self._current = (event.name or "", list(event.headers.items()))
                self._value = bytearray()
            elif isinstance(event, Data):
                self._data(event)

    def _data(self, event: Data) -> None:
        assert self._current is not None
        if self._state == "file":
            self.file_size += len(event.data)
            self._file_chunks.append(event.data)
            assert self._checked is not None
            if self.file_size > self._limit():
                check_file_size(self._checked, self._proposed_size(), self._max_file_bytes)
            if not event.more_data:
                self._parts.append((*self._current, b"".join(self._file_chunks)))
                self._file_chunks = []
                self._state = "after"
            return
        self._value += event.data
        if not event.more_data:
            name, headers = self._current
            try:
                self.fields[name.lower()] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST) from None
            self._parts.append((name, headers, bytes(self._value)))
            self._current = None

    def _limit(self) -> int:
        assert self._checked is not None
        maximum = self._checked.max_bytes
        return self._max_file_bytes if maximum is None else min(maximum, self._max_file_bytes)

    def _proposed_size(self) -> int:
        """The file's size as the Content-Length tells it (the form's closing boundary aside)."""
        if self._content_length is None:
            return self.file_size
        closing = len(b"\r\n--" + self.boundary + b"--\r\n")
        return max(self.file_size, self._content_length - self._file_data_offset - closing)

    def _refuse_early(self) -> None:
        """A file the Content-Length already shows too large is refused before it is read."""
        if self._content_length is not None and self._proposed_size() > self._limit():
            assert self._checked is not None
            check_file_size(self._checked, self._proposed_size(), self._max_file_bytes)

    def _finish(self) -> None:
        if self._state == "fields":
            if not self.fields.get("key"):
                check_post_policy(self.fields, self._bucket, self._keys, self._now)  # names what is missing
            raise _invalid_argument("POST requires exactly one file upload per request.", "file")
        if self._state == "file":
            raise S3Error(400, "MalformedPOSTRequest", MALFORMED_POST)
        assert self._checked is not None
        check_file_size(self._checked, self.file_size, self._max_file_bytes)
        self._state = "done"

    def body(self) -> bytes:
        """The form as moto gets it: the parts up to the file, the same boundary."""
        assert self.done
        out = bytearray()
        for _name, headers, value in self._parts:
            out += b"--" + self.boundary + b"\r\n"
            for header, header_value in headers:
                out += f"{header}: {header_value}\r\n".encode()
            out += b"\r\n" + value + b"\r\n"
        out += b"--" + self.boundary + b"--\r\n"
        return bytes(out)


# --------------------------------------------------------------------------- presigned URLs


class _S3QueryRecompute(S3SigV4QueryAuth):
    """botocore's S3 query signer, made to sign exactly the headers the URL names."""

    def __init__(self, credentials: Credentials, region: str, signed: HTTPHeaders) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def is_presigned(raw_query: str) -> bool:
    names = {name for name, _ in parse_qsl(raw_query, keep_blank_values=True)}
    return bool(names & {*_QUERY_AUTH, "X-Amz-Expires", "AWSAccessKeyId", "Signature"})


def verify_presigned(
    method: str, raw_path: str, raw_query: str, headers: Iterable[tuple[str, str]], keys: Keys, now: float
) -> None:
    """Check a presigned (query-authenticated) request as S3 does; S3Error when S3 would refuse it."""
    headers = list(headers)
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    if any(name.lower() == "authorization" for name, _ in headers):
        raise S3Error(400, "InvalidArgument", BOTH_AUTH)
    if "AWSAccessKeyId" in names or "Signature" in names:
        raise S3Error(400, "InvalidRequest", SIGV4_ONLY)
    required = (*_QUERY_AUTH, "X-Amz-Expires")
    if any(names.count(name) != 1 for name in required):
        raise S3Error(400, "AuthorizationQueryParametersError", QUERY_INCOMPLETE)
    one = dict(pairs)
    if one["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error(400, "AuthorizationQueryParametersError", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    expires_text = one["X-Amz-Expires"]
    if not expires_text.isdigit() or len(expires_text) > 9:
        raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number")
    expires = int(expires_text)
    if expires > MAX_PRESIGN_SECONDS:
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than"
            " 604800 seconds",
        )
    credential = one["X-Amz-Credential"].split("/")
    if len(credential) != 5 or credential[3] != SERVICE or credential[4] != "aws4_request":
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting"
            ' "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    if credential[2] != keys.region:
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            f"Error parsing the X-Amz-Credential parameter; the region '{credential[2][:32]}' is wrong;"
            f" expecting '{keys.region}'",
            Region=keys.region,
        )
    try:
        signed_at = _parse_amz_date(one["X-Amz-Date"])
    except ValueError:
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        ) from None
    secret = keys.secret_for(credential[0])
    signed_names = one["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed_names:
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            "Query-string authentication requires the host header to be signed.",
        )
    received = {name.lower() for name, _ in headers}
    unsigned = sorted(
        n for n in received if n.startswith("x-amz-") and n not in signed_names and n != "x-amz-content-sha256"
    )
    if unsigned:
        raise _access_denied(
            "There were headers present in the request which were not signed", HeadersNotSigned=", ".join(unsigned)
        )
    signed = HTTPHeaders()
    for name in signed_names:
        for header, value in headers:
            if header.lower() == name:
                signed[name] = value
    signer = _S3QueryRecompute(Credentials(credential[0], secret), keys.region, signed)
    request = AWSRequest(method=method.upper(), url=f"http://local{raw_path}")
    request.params = [(name, value) for name, value in pairs if name != "X-Amz-Signature"]
    request.context["timestamp"] = one["X-Amz-Date"]
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected.encode(), one["X-Amz-Signature"].encode("utf-8", "replace")):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            SIGNATURE_MISMATCH,
            AWSAccessKeyId=credential[0],
            StringToSign=string_to_sign,
            SignatureProvided=one["X-Amz-Signature"][:128],
            CanonicalRequest=canonical[:4096],
        )
    if signed_at > now + FUTURE_SKEW_SECONDS:
        raise _access_denied(NOT_YET_VALID, **{"X-Amz-Date": one["X-Amz-Date"]}, ServerTime=_iso8601(now))
    if now > signed_at + expires:
        raise _access_denied(
            REQUEST_EXPIRED,
            **{"X-Amz-Expires": expires},
            Expires=_iso8601(signed_at + expires),
            ServerTime=_iso8601(now),
        )


def bucket_of(raw_path: str) -> tuple[str, str]:
    """(bucket, key) of a path-style request path (the key still percent-encoded)."""
    path = raw_path.lstrip("/")
    bucket, _, key = path.partition("/")
    return unquote(bucket), key


# --------------------------------------------------------------------------- the server


class _Incomplete(Exception):
    """The client stopped sending before its Content-Length."""


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
    block_on_close = False


class S3Gateway:
    """Serve on 127.0.0.1 in front of moto's server at `upstream` (http://host:port)."""

    def __init__(
        self,
        upstream: str,
        keys: Keys,
        host: str = "127.0.0.1",
        port: int = 0,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        clock: Callable[[], float] = time.time,
        body_deadline: float = BODY_DEADLINE_SECONDS,
    ) -> None:
        split = urlsplit(upstream)
        if split.scheme != "http" or not split.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self._upstream = (split.hostname, split.port or 80)
        self.keys = keys
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        """Injectable, so tests can move time past an expiry."""
        self.body_deadline = body_deadline
        self._server = _Server((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> S3Gateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> S3Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_TIMEOUT_SECONDS
            # Status line, headers and body go out in separate sends: on a kept connection Nagle's algorithm
            # would hold each later write for the client's delayed ACK (40 ms an answer). AWS answers at once.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # presigned URLs carry signatures
                pass

            def setup(self) -> None:
                super().setup()
                self._moto: http.client.HTTPConnection | None = None
                """This client connection's connection to moto, kept open between its requests."""

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    self._drop_moto()

            def _drop_moto(self) -> None:
                if self._moto is not None:
                    self._moto.close()
                    self._moto = None

            def _handle(self) -> None:
                split = urlsplit(self.path)
                headers = list(self.headers.items())
                try:
                    if is_presigned(split.query):
                        verify_presigned(self.command, split.path, split.query, headers, gateway.keys, gateway.clock())
                    elif self._is_post_object(split.path, split.query):
                        self._post_object(split.path)
                        return
                except S3Error as refused:
                    log.info("s3 gateway: %s %s refused: %s", self.command, split.path[:200], refused.code)
                    self._refuse(refused)
                    return
                self._forward(self._request_body())

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _handle

            def _is_post_object(self, path: str, query: str) -> bool:
                bucket, key = bucket_of(path)
                content_type = self.headers.get("Content-Type", "")
                return (
                    self.command == "POST"
                    and bool(bucket)
                    and not key
                    and not query
                    and not self.headers.get("Authorization")
                    and content_type.lower().startswith("multipart/form-data")
                )

            # --- POST object -----------------------------------------------------------------

            def _post_object(self, path: str) -> None:
                bucket, _ = bucket_of(path)
                length = self._content_length()
                form = PostForm(
                    self.headers.get("Content-Type", ""),
                    bucket,
                    gateway.keys,
                    gateway.clock(),
                    content_length=length,
                    max_file_bytes=gateway.max_file_bytes,
                )
                try:
                    for chunk in self._body_chunks(length):
                        form.feed(chunk)
                    form.feed(b"")
                except _Incomplete:
                    raise S3Error(
                        400,
                        "IncompleteBody",
                        "You did not provide the number of bytes specified by the Content-Length HTTP header",
                    ) from None
                except TimeoutError:
                    raise S3Error(
                        400,
                        "RequestTimeout",
                        "Your socket connection to the server was not read from or written to within the timeout"
                        " period. Idle connections will be closed.",
                    ) from None
                body = form.body()
                headers = [(k, v) for k, v in self.headers.items() if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
                self._forward(body, headers)

            def _content_length(self) -> int | None:
                if self.headers.get("Transfer-Encoding"):
                    if self.headers.get("Content-Length"):
                        raise S3Error(400, "InvalidRequest", "Content-Length and Transfer-Encoding cannot both be set")
                    if self.headers["Transfer-Encoding"].strip().lower() != "chunked":
                        raise S3Error(
                            501,
                            "NotImplemented",
                            "A header you provided implies functionality that is not implemented",
                            Header="Transfer-Encoding",
                        )
                    return None
                value = self.headers.get("Content-Length")
                if value is None:
                    raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
                if not value.strip().isdigit() or len(self.headers.get_all("Content-Length") or []) != 1:
                    raise S3Error(400, "InvalidArgument", "Invalid Content-Length", ArgumentName="Content-Length")
                return int(value)

            def _body_chunks(self, length: int | None) -> Iterable[bytes]:
                """The body as it arrives, within one deadline; _Incomplete if it stops short."""
                deadline = time.monotonic() + gateway.body_deadline

                def arm() -> None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self.connection.settimeout(remaining)

                if length is not None:
                    left = length
                    while left > 0:
                        arm()
                        chunk = self.rfile.read1(min(left, _CHUNK))  # type: ignore[attr-defined]
                        if not chunk:
                            raise _Incomplete
                        left -= len(chunk)
                        yield chunk
                else:
                    while True:
                        arm()
                        size_line = self.rfile.readline(1024)
                        if not size_line:
                            raise _Incomplete
                        try:
                            size = int(size_line.split(b";", 1)[0].strip(), 16)
                        except ValueError:
                            raise S3Error(400, "IncompleteBody", "The request body is not correctly chunked") from None
                        if size == 0:
                            while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        while size > 0:
                            arm()
                            chunk = self.rfile.read1(min(size, _CHUNK))  # type: ignore[attr-defined]
                            if not chunk:
                                raise _Incomplete
                            size -= len(chunk)
                            yield chunk
                        self.rfile.readline(8)
                self.connection.settimeout(IDLE_TIMEOUT_SECONDS)

            # --- forwarding -------------------------------------------------------------------

            def _request_body(self) -> Any:
                """The body to forward as a stream (a file-like with a length), or bytes for chunked input."""
                if self.headers.get("Transfer-Encoding"):
                    return b"".join(self._body_chunks(None))
                length = int(self.headers.get("Content-Length") or 0)
                return _Exact(self.rfile, length) if length else None

            def _forward(self, body: Any, headers: list[tuple[str, str]] | None = None) -> None:
                """Send the request on to moto over this client's kept connection (a fresh one when there is
                none, or when a kept one turns out closed and the body can be sent again)."""
                headers = headers if headers is not None else list(self.headers.items())
                replayable = body is None or isinstance(body, bytes)
                for attempt in range(2):
                    reused = self._moto is not None
                    if self._moto is None:
                        self._moto = http.client.HTTPConnection(*gateway._upstream, timeout=300)
                    try:
                        response = self._send_to_moto(self._moto, body, headers)
                        break
                    except (http.client.InvalidURL, ValueError):
                        self._drop_moto()
                        self._refuse(S3Error(400, "InvalidURI", "Couldn't parse the specified URI."))
                        return
                    except (OSError, http.client.HTTPException):
                        self._drop_moto()
                        if reused and replayable and attempt == 0:
                            continue  # moto closed the kept connection: once more on a new one
                        log.warning("s3 gateway: moto did not answer %s", self.command)
                        self._refuse(S3Error(503, "ServiceUnavailable", "Please reduce your request rate."))
                        return
                try:
                    self._relay(response)
                finally:
                    if response.will_close or not response.isclosed():
                        self._drop_moto()  # moto closes it, or its answer was not read to the end

            def _send_to_moto(
                self, connection: http.client.HTTPConnection, body: Any, headers: list[tuple[str, str]]
            ) -> http.client.HTTPResponse:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                chunked_in = False
                for name, value in headers:
                    lower = name.lower()
                    if lower in _HOP_BY_HOP or lower == "expect":  # moto gets the body at once
                        chunked_in = chunked_in or lower == "transfer-encoding"
                        continue
                    connection.putheader(name, value)
                if isinstance(body, bytes) and chunked_in:
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders()
                if isinstance(body, bytes):
                    connection.send(body)
                elif body is not None:
                    while chunk := body.read(_CHUNK):
                        connection.send(chunk)
                return connection.getresponse()

            def _relay(self, response: http.client.HTTPResponse) -> None:
                self.send_response(response.status, response.reason)
                length = response.getheader("Content-Length")
                bodiless = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
                chunked = length is None and not bodiless
                for name, value in response.getheaders():
                    if name.lower() in _HOP_BY_HOP:
                        continue
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if bodiless:
                    response.close()  # nothing to read; the connection to moto stays usable
                    return
                try:
                    while chunk := response.read(_CHUNK):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True

            def _refuse(self, error: S3Error) -> None:
                data = error.document()
                self.close_connection = True  # the rest of a refused body is not worth reading
                try:
                    self.send_response(error.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    return
                self._linger()

            def _linger(self, seconds: float = 2.0, max_bytes: int = 8 * 1024 * 1024) -> None:
                """Close gently: a client still sending would otherwise get a reset, not the answer."""
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                    deadline, drained = time.monotonic() + seconds, 0
                    while drained < max_bytes and (remaining := deadline - time.monotonic()) > 0:
                        self.connection.settimeout(remaining)
                        data = self.connection.recv(_CHUNK)
                        if not data:
                            break
                        drained += len(data)
                except OSError:
                    pass

        return Handler


class _Exact:
    """`length` bytes of `stream`, read as asked (the request body streamed on to moto)."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream, self._left = stream, length

    def read(self, size: int = _CHUNK) -> bytes:
        if self._left <= 0:
            return b""
        chunk = self._stream.read1(min(size, self._left))
        if not chunk:
            raise ConnectionError("the client stopped sending before its Content-Length")
        self._left -= len(chunk)
        return chunk
