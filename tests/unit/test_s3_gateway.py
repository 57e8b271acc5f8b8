"""The local S3 gateway's checks decide as S3 does, without a socket: a presigned POST form made by
MediaStore.presigned_post passes only as signed (key, Content-Type, size range, expiry, no extra
field), and a presigned URL made by botocore passes only unchanged and unexpired; refusals carry
S3's codes, statuses and messages."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config
from swapdrop.media_store import S3MediaStore
from swapdrop_local.s3_gateway import (
    CheckedPolicy,
    Keys,
    PostForm,
    S3Error,
    check_post_policy,
    is_presigned,
    verify_presigned,
)
from urllib3 import encode_multipart_formdata

REGION = "eu-west-1"
BUCKET = "swapdrop-media"
HOST = "127.0.0.1:9000"
KEYS = Keys({"local": "local"}, REGION)
KEY = "uploads/0123456789abcdef0123456789abcdef/target.png"
MAX = 1000


def _client(secret: str = "local", region: str = REGION):  # noqa: S107 - the local stack's key
    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=f"http://{HOST}",
        aws_access_key_id="local",
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4"),
    )


def _form(expires: int = 900, key: str = KEY, content_type: str = "image/png", **kwargs) -> dict:
    return S3MediaStore(_client(**kwargs), BUCKET).presigned_post(key, content_type, MAX, expires)


def _body(fields: dict[str, str], data: bytes = b"x" * 10, content_type: str = "image/png", after=()):
    parts: list = [*fields.items(), ("file", ("target.png", data, content_type)), *after]
    return encode_multipart_formdata(parts)


def _post(body: bytes, content_type: str, now: float | None = None, chunk: int = 65536, length=True) -> PostForm:
    form = PostForm(
        content_type, BUCKET, KEYS, time.time() if now is None else now, len(body) if length else None, 10_000
    )
    for start in range(0, len(body), chunk):
        form.feed(body[start : start + chunk])
    form.feed(b"")
    return form


def _refusal(body: bytes, content_type: str, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as caught:
        _post(body, content_type, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- POST forms


@pytest.mark.parametrize("chunk", [65536, 7, 1])
def test_a_presigned_post_passes_and_is_forwarded_byte_for_byte(chunk: int) -> None:
    form = _form()
    body, content_type = _body(form["fields"], b"\x89PNG" + b"a" * 100)
    checked = _post(body, content_type, chunk=chunk)
    assert checked.done and checked.file_size == 104
    assert checked.body() == body  # moto gets the very form the client sent


def test_the_whole_policy_range_is_allowed() -> None:
    fields = _form()["fields"]
    for size in (1, MAX):
        assert _post(*_body(fields, b"a" * size)).file_size == size


def test_a_file_over_the_range_is_refused_with_its_size_before_it_is_read() -> None:
    body, content_type = _body(_form()["fields"], b"a" * (MAX + 1))
    error = _refusal(body, content_type)
    assert (error.status, error.code, error.message) == (
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    )
    assert error.extra == {"ProposedSize": str(MAX + 1), "MaxSizeAllowed": str(MAX)}
    big, content_type = _body(_form()["fields"], b"a" * 5000)
    head = big[: big.index(b"aaaa") + 100]  # the fields, the file's headers, 100 of its 5000 bytes
    form = PostForm(content_type, BUCKET, KEYS, time.time(), len(big), 10_000)
    with pytest.raises(S3Error) as caught:
        form.feed(head)
    assert caught.value.code == "EntityTooLarge" and caught.value.extra["ProposedSize"] == "5000"


def test_without_a_content_length_the_file_is_refused_once_it_passes_the_range() -> None:
    body, content_type = _body(_form()["fields"], b"a" * (MAX * 3))
    error = _refusal(body, content_type, length=False, chunk=512)
    assert error.code == "EntityTooLarge" and error.extra["MaxSizeAllowed"] == str(MAX)


def test_the_gateway_ceiling_applies_when_the_policy_allows_more() -> None:
    fields = S3MediaStore(_client(), BUCKET).presigned_post(KEY, "image/png", 50_000, 900)["fields"]
    error = _refusal(*_body(fields, b"a" * 10_001))
    assert error.code == "EntityTooLarge" and error.extra["MaxSizeAllowed"] == "10000"


def test_an_empty_file_is_too_small() -> None:
    error = _refusal(*_body(_form()["fields"], b""))
    assert (error.status, error.code) == (400, "EntityTooSmall")
    assert error.message == "Your proposed upload is smaller than the minimum allowed size"
    assert error.extra == {"ProposedSize": "0", "MinSizeAllowed": "1"}


def test_another_content_type_fails_its_condition() -> None:
    fields = {**_form()["fields"], "Content-Type": "text/html"}
    error = _refusal(*_body(fields, content_type="text/html"))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == 'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]'


def test_another_key_fails_its_condition() -> None:
    fields = {**_form()["fields"], "key": "faces/mallory.png"}
    error = _refusal(*_body(fields))
    assert error.status == 403
    assert error.message == f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{KEY}"]'


def test_an_expired_policy_is_refused() -> None:
    body, content_type = _body(_form(expires=60)["fields"])
    _post(body, content_type, now=time.time() + 59)
    error = _refusal(body, content_type, now=time.time() + 61)
    assert (error.status, error.code, error.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


def _tamper_policy(fields: dict[str, str], change) -> dict[str, str]:
    policy = json.loads(base64.b64decode(fields["policy"]))
    change(policy)
    return {**fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}


def test_a_changed_policy_or_signature_does_not_match() -> None:
    fields = _form()["fields"]

    def widen(policy: dict) -> None:
        policy["conditions"] = [c for c in policy["conditions"] if not isinstance(c, list)]

    for changed in (
        _tamper_policy(fields, widen),
        {**fields, "x-amz-signature": "0" * 64},
        {**fields, "x-amz-date": "20200101T000000Z"},  # the date field is a condition
    ):
        error = _refusal(*_body(changed, b"a" * (MAX + 5)))
        assert error.code in ("SignatureDoesNotMatch", "AccessDenied")
        assert error.status == 403
    error = _refusal(*_body(_tamper_policy(fields, widen)))
    assert error.code == "SignatureDoesNotMatch"
    assert error.message == (
        "The request signature we calculated does not match the signature you provided. Check your key and"
        " signing method."
    )


def test_a_form_signed_with_another_secret_or_region_does_not_match() -> None:
    assert _refusal(*_body(_form(secret="guess")["fields"])).code == "SignatureDoesNotMatch"
    assert _refusal(*_body(_form(region="us-east-1")["fields"])).code == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused() -> None:
    fields = _form()["fields"]
    fields = {**fields, "x-amz-credential": fields["x-amz-credential"].replace("local/", "AKIAOTHER/", 1)}
    error = _refusal(*_body(fields))
    assert (error.status, error.code) == (403, "InvalidAccessKeyId")


def test_a_field_no_condition_covers_is_refused_but_x_ignore_fields_pass() -> None:
    fields = _form()["fields"]
    error = _refusal(*_body({**fields, "x-amz-meta-owner": "mallory"}))
    assert (error.status, error.message) == (403, "Invalid according to Policy: Extra input fields: x-amz-meta-owner")
    assert _post(*_body({**fields, "x-ignore-filename": "a.png"})).done


def test_missing_key_policy_or_signature_fields() -> None:
    fields = _form()["fields"]
    no_key = {k: v for k, v in fields.items() if k != "key"}
    assert _refusal(*_body(no_key)).code == "InvalidArgument"
    no_policy = {k: v for k, v in fields.items() if k not in ("policy", "x-amz-signature")}
    assert (_refusal(*_body(no_policy)).status, _refusal(*_body(no_policy)).message) == (403, "Access Denied")
    no_signature = {k: v for k, v in fields.items() if k != "x-amz-signature"}
    error = _refusal(*_body(no_signature))
    assert error.code == "InvalidArgument" and error.extra["ArgumentName"] == "X-Amz-Signature"
    sigv2 = {**fields, "AWSAccessKeyId": "local", "signature": "x"}
    assert _refusal(*_body(sigv2)).code == "InvalidRequest"


def test_a_truncated_or_malformed_body_is_refused() -> None:
    body, content_type = _body(_form()["fields"])
    error = _refusal(body[:-20], content_type)
    assert (error.status, error.code) == (400, "MalformedPOSTRequest")
    assert _refusal(b"not a form", content_type).code == "MalformedPOSTRequest"
    with pytest.raises(S3Error) as caught:
        PostForm("multipart/form-data", BUCKET, KEYS, time.time())  # no boundary
    assert caught.value.code == "MalformedPOSTRequest"


def test_no_file_or_two_files() -> None:
    fields = _form()["fields"]
    body, content_type = encode_multipart_formdata(list(fields.items()))
    assert _refusal(body, content_type).message == "POST requires exactly one file upload per request."
    two = [("file", ("b.png", b"b", "image/png"))]
    form = _post(*_body(fields, after=two))  # what follows the file is ignored, as S3 ignores it
    assert form.file_size == 10 and b"b.png" not in form.body()


def test_fields_after_the_file_never_reach_moto() -> None:
    fields = _form()["fields"]
    form = _post(*_body(fields, after=[("x-amz-meta-owner", "mallory"), ("key", "faces/evil.png")]))
    assert b"mallory" not in form.body() and b"evil" not in form.body()


def test_a_repeated_field_is_refused() -> None:
    fields = _form()["fields"]
    body, content_type = encode_multipart_formdata(
        [*fields.items(), ("KEY", "faces/other.png"), ("file", ("a.png", b"a", "image/png"))]
    )
    assert _refusal(body, content_type).code == "InvalidArgument"


def test_fields_before_the_file_are_limited_to_20_kb() -> None:
    fields = {**_form()["fields"], "x-ignore-padding": "p" * 30_000}
    error = _refusal(*_body(fields), chunk=4096)
    assert (error.status, error.code) == (400, "MaxPostPreDataLengthExceeded")


def test_starts_with_and_content_type_lists() -> None:
    policy = {
        "expiration": "2099-01-01T00:00:00.000Z",
        "conditions": [
            {"bucket": BUCKET},
            ["starts-with", "$key", "uploads/"],
            ["starts-with", "$Content-Type", "image/"],
            ["content-length-range", 5, 50],
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            ["eq", "$x-amz-credential", "local/20260101/eu-west-1/s3/aws4_request"],
            {"x-amz-date": "20260101T000000Z"},
        ],
    }
    from swapdrop_local.s3_gateway import post_policy_signature

    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    fields = {
        "key": "uploads/a.png",
        "content-type": "image/png, image/webp",
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "local/20260101/eu-west-1/s3/aws4_request",
        "x-amz-date": "20260101T000000Z",
        "policy": encoded,
        "x-amz-signature": post_policy_signature("local", "20260101", REGION, encoded),
    }
    assert check_post_policy(fields, BUCKET, KEYS, time.time()) == CheckedPolicy(5, 50)
    with pytest.raises(S3Error, match=r'\["starts-with", "\$Content-Type", "image/"\]'):
        check_post_policy({**fields, "content-type": "image/png, text/html"}, BUCKET, KEYS, time.time())
    with pytest.raises(S3Error, match=r'\["eq", "\$bucket", "swapdrop-media"\]'):
        check_post_policy(fields, "other-bucket", KEYS, time.time())


def test_the_error_document_is_s3s_xml() -> None:
    error = S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", ProposedSize=5)
    root = ElementTree.fromstring(error.document("REQ1"))  # noqa: S314 - our own document
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["Code", "Message", "ProposedSize", "RequestId", "HostId"]
    assert root.findtext("Code") == "EntityTooLarge" and root.findtext("ProposedSize") == "5"
    assert b"<Message>a &lt;b&gt; &amp;</Message>" in S3Error(403, "AccessDenied", "a <b> &").document()


# --------------------------------------------------------------------------- presigned URLs


def _presigned(method: str = "get_object", key: str = KEY, expires: int = 300, **params) -> tuple[str, str]:
    url = _client().generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key, **params}, ExpiresIn=expires)
    split = urlsplit(url)
    return split.path, split.query


def _verify(method: str, path: str, query: str, now: float | None = None, headers=None) -> None:
    verify_presigned(method, path, query, headers or [("Host", HOST)], KEYS, time.time() if now is None else now)


def test_a_presigned_get_passes_until_it_expires() -> None:
    path, query = _presigned(expires=60)
    assert is_presigned(query) and not is_presigned("list-type=2&prefix=a")
    _verify("GET", path, query)
    _verify("GET", path, query, now=time.time() + 59)
    with pytest.raises(S3Error) as caught:
        _verify("GET", path, query, now=time.time() + 65)
    error = caught.value
    assert (error.status, error.code, error.message) == (403, "AccessDenied", "Request has expired")
    assert error.extra["X-Amz-Expires"] == "60" and {"Expires", "ServerTime"} <= set(error.extra)


@pytest.mark.parametrize("key", ["uploads/../faces/ada.png", "results/a b+c%/ü\x01\x7f.png", "./x//y"])
def test_keys_with_dots_and_control_characters_sign_and_verify(key: str) -> None:
    path, query = _presigned(key=key)
    _verify("GET", path, query)
    other = _presigned(key=key + "x")[0]
    with pytest.raises(S3Error, match="SignatureDoesNotMatch"):
        _verify("GET", other, query)


def test_anything_changed_after_presigning_does_not_match() -> None:
    path, query = _presigned(VersionId="v1")
    for changed_path, changed_query, method, host in (
        (path.replace("target", "Target"), query, "GET", HOST),
        (path, query.replace("versionId=v1", "versionId=v2"), "GET", HOST),
        (path, query + "&response-content-type=text%2Fhtml", "GET", HOST),
        (path, query, "DELETE", HOST),
        (path, query, "GET", "127.0.0.1:9001"),
    ):
        with pytest.raises(S3Error) as caught:
            _verify(method, changed_path, changed_query, headers=[("Host", host)])
        assert (caught.value.status, caught.value.code) == (403, "SignatureDoesNotMatch")


def test_presigned_put_and_head_pass() -> None:
    _verify("PUT", *_presigned("put_object"))
    _verify("HEAD", *_presigned("head_object"))


def test_presigned_refusals_with_s3s_codes() -> None:
    path, query = _presigned()

    def refused(**kwargs) -> S3Error:
        with pytest.raises(S3Error) as caught:
            _verify(kwargs.pop("method", "GET"), kwargs.pop("path", path), kwargs.pop("query", query), **kwargs)
        return caught.value

    assert refused(now=time.time() - 3600).message == "Request is not yet valid"
    unsigned = refused(headers=[("Host", HOST), ("x-amz-meta-owner", "m")])
    assert (unsigned.status, unsigned.extra["HeadersNotSigned"]) == (403, "x-amz-meta-owner")
    assert refused(headers=[("Host", HOST), ("Authorization", "AWS4-HMAC-SHA256 x")]).code == "InvalidArgument"
    assert refused(query=query.replace("X-Amz-Date", "X-Amz-Nope")).code == "AuthorizationQueryParametersError"
    assert refused(query=query.replace("X-Amz-Expires=300", "X-Amz-Expires=604801")).status == 400
    assert refused(query=query.replace("eu-west-1", "us-east-1")).code == "AuthorizationQueryParametersError"
    assert refused(query=query.replace("local%2F", "AKIAOTHER%2F")).code == "InvalidAccessKeyId"
    assert refused(query="AWSAccessKeyId=local&Signature=x&Expires=1").code == "InvalidRequest"
