"""The local S3 gateway over real HTTP: presigned POST forms made by MediaStore.presigned_post and
presigned GETs are refused as S3 refuses them (moto alone accepts them all), what passes lands
in moto and notifies the submit queue, anything else is forwarded as it is; and `swapdrop local`
hands out forms and result URLs that point at the gateway."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from swapdrop.layout import decode_event_key
from swapdrop.media_store import S3MediaStore
from swapdrop_local.provision import LocalStack, provision
from swapdrop_local.s3_gateway import Keys, S3Gateway

from integration.conftest import png

REGION = "us-east-1"
MAX = 2000
UPLOAD = "uploads/" + "ab" * 16 + "/target.png"


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> LocalStack:
    return provision(
        endpoint_url=moto_endpoint,
        region=REGION,
        callback_base_url="http://127.0.0.1:9",
        parameter_overrides={"UpstreamBaseUrl": "http://127.0.0.1:9"},
        stack_name="s3gw",
    )


@pytest.fixture
def gateway(moto_endpoint: str) -> Iterator[S3Gateway]:
    with S3Gateway(moto_endpoint, Keys({"local": "local"}, REGION), max_file_bytes=MAX + 1024) as running:
        yield running


def _s3(endpoint: str) -> Any:
    """An S3 client as the functions make it (their local keys, SigV4), on `endpoint`."""
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(signature_version="s3v4"),
    )


def _media(gateway: S3Gateway, stack: LocalStack) -> S3MediaStore:
    return S3MediaStore(_s3(gateway.url), stack.bucket)


def _upload(form: dict[str, Any], data: bytes, content_type: str = "image/png", **extra: str) -> requests.Response:
    fields = {**form["fields"], **extra}
    return requests.post(form["url"], data=fields, files={"file": ("t.png", data, content_type)}, timeout=30)


def _error(response: requests.Response) -> tuple[int, str, str]:
    assert response.headers["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(response.content)  # noqa: S314 - the gateway's own document
    return response.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def _exists(stack: LocalStack, key: str) -> bool:
    try:
        stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    except ClientError:
        return False
    return True


def _queued(stack: LocalStack, key: str, wait_seconds: float = 10.0) -> bool:
    sqs = stack.client("sqs")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
            records = json.loads(message["Body"]).get("Records", [])
            if key in {decode_event_key(r["s3"]["object"]["key"]) for r in records}:
                return True
    return False


def test_moto_alone_accepts_what_s3_refuses(stack: LocalStack, moto_endpoint: str) -> None:
    """Why the gateway exists: straight to moto, an oversized upload and a lapsed URL both pass."""
    form = S3MediaStore(_s3(moto_endpoint), stack.bucket).presigned_post("uploads/moto/x.png", "image/png", 10, 1)
    assert _upload(form, b"a" * 50, content_type="text/html", key="elsewhere.png").status_code == 204
    url = S3MediaStore(_s3(moto_endpoint), stack.bucket).presigned_get("elsewhere.png", 1)
    time.sleep(2.1)
    assert requests.get(url, timeout=10).status_code == 200


def test_a_valid_upload_lands_in_moto_and_notifies_the_queue(stack: LocalStack, gateway: S3Gateway) -> None:
    data = png((200, 10, 10))
    form = _media(gateway, stack).presigned_post(UPLOAD, "image/png", MAX, 60)
    assert form["url"].startswith(gateway.url + "/")
    assert _upload(form, data).status_code == 204
    stored = stack.client("s3").get_object(Bucket=stack.bucket, Key=UPLOAD)["Body"].read()
    assert stored == data
    assert _queued(stack, UPLOAD)


def test_refused_uploads_store_nothing(stack: LocalStack, gateway: S3Gateway) -> None:
    media = _media(gateway, stack)
    key = "uploads/" + "cd" * 16 + "/target.png"
    form = media.presigned_post(key, "image/png", MAX, 60)
    status, code, _ = _error(_upload(form, b"a" * (MAX + 1)))
    assert (status, code) == (400, "EntityTooLarge")
    status, code, _ = _error(_upload(form, b""))
    assert (status, code) == (400, "EntityTooSmall")
    assert _error(_upload(form, b"a", content_type="text/html", **{"Content-Type": "text/html"})) == (
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]',
    )
    assert _error(_upload(form, b"a", key="faces/mallory.png")) == (
        403,
        "AccessDenied",
        f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{key}"]',
    )
    assert _error(_upload(form, b"a", **{"x-amz-signature": "0" * 64}))[1] == "SignatureDoesNotMatch"
    assert _error(_upload(form, b"a", **{"x-amz-meta-owner": "mallory"}))[2] == (
        "Invalid according to Policy: Extra input fields: x-amz-meta-owner"
    )
    gateway.clock = lambda: time.time() + 61
    assert _error(_upload(form, b"a")) == (403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    assert not _exists(stack, key) and not _exists(stack, "faces/mallory.png")


def test_a_large_body_is_refused_without_being_read(stack: LocalStack, gateway: S3Gateway) -> None:
    form = _media(gateway, stack).presigned_post("uploads/big/target.png", "image/png", MAX, 60)
    response = _upload(form, b"a" * (20 * 1024 * 1024))
    status, code, _ = _error(response)
    assert (status, code) == (400, "EntityTooLarge")
    root = ElementTree.fromstring(response.content)  # noqa: S314
    assert root.findtext("ProposedSize") == str(20 * 1024 * 1024) and root.findtext("MaxSizeAllowed") == str(MAX)


def _raw(gateway: S3Gateway, request: bytes, half_close: bool = False) -> bytes:
    parts = urlsplit(gateway.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_truncated_bodies_are_refused_and_the_gateway_keeps_serving(stack: LocalStack, gateway: S3Gateway) -> None:
    form = _media(gateway, stack).presigned_post("uploads/cut/target.png", "image/png", MAX, 60)
    prepared = requests.Request(
        "POST", form["url"], data=form["fields"], files={"file": ("t.png", b"a" * 100, "image/png")}
    ).prepare()
    body = prepared.body[:-30]
    path = urlsplit(form["url"]).path
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(gateway.url).netloc}\r\n"
        f"Content-Type: {prepared.headers['Content-Type']}\r\n"
    )
    answer = _raw(gateway, f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    assert answer.startswith(b"HTTP/1.1 400") and b"<Code>MalformedPOSTRequest</Code>" in answer
    answer = _raw(gateway, f"{head}Content-Length: {len(body) + 500}\r\n\r\n".encode() + body, half_close=True)
    assert answer.startswith(b"HTTP/1.1 400") and b"<Code>IncompleteBody</Code>" in answer
    assert not _exists(stack, "uploads/cut/target.png")
    assert _upload(form, b"a" * 10).status_code == 204  # still serving


def test_a_presigned_get_works_until_it_expires(stack: LocalStack, gateway: S3Gateway) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket, Key="results/ada/r.png", Body=b"result")
    url = _media(gateway, stack).presigned_get("results/ada/r.png", 300)
    assert url.startswith(gateway.url + "/")
    assert requests.get(url, timeout=10).content == b"result"
    assert requests.head(url, timeout=10).status_code == 403  # signed for GET
    tampered = url.replace("r.png", "s.png")
    assert _error(requests.get(tampered, timeout=10))[:2] == (403, "SignatureDoesNotMatch")
    gateway.clock = lambda: time.time() + 301
    assert _error(requests.get(url, timeout=10)) == (403, "AccessDenied", "Request has expired")


@pytest.mark.parametrize("key", ["results/../faces/x.png", "results/a b+c%/\u00fc\x01\x7f.png", "results/./y"])
def test_odd_keys_are_forwarded_exactly(stack: LocalStack, gateway: S3Gateway, key: str) -> None:
    client = _s3(gateway.url)  # header-signed: forwarded without checks
    client.put_object(Bucket=stack.bucket, Key=key, Body=key.encode())
    assert stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read() == key.encode()
    url = _media(gateway, stack).presigned_get(key, 60)
    split = urlsplit(url)  # sent as is: no client-side dot-segment removal
    answer = _raw(
        gateway,
        f"GET {split.path}?{split.query} HTTP/1.1\r\nHost: {split.netloc}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(key.encode())


def test_header_signed_clients_pass_through_streaming_both_ways(stack: LocalStack, gateway: S3Gateway) -> None:
    client = _s3(gateway.url)
    data = bytes(range(256)) * 16 * 1024  # 4 MiB
    client.put_object(Bucket=stack.bucket, Key="faces/big.bin", Body=data)
    assert client.get_object(Bucket=stack.bucket, Key="faces/big.bin")["Body"].read() == data
    assert client.head_object(Bucket=stack.bucket, Key="faces/big.bin")["ContentLength"] == len(data)
    listed = client.list_objects_v2(Bucket=stack.bucket, Prefix="faces/big")["Contents"]
    assert [o["Key"] for o in listed] == ["faces/big.bin"]
    client.delete_objects(Bucket=stack.bucket, Delete={"Objects": [{"Key": "faces/big.bin"}]})
    assert not _exists(stack, "faces/big.bin")


def test_swapdrop_local_hands_out_forms_and_urls_that_the_gateway_checks() -> None:
    """The jobs API's own forms and result URLs, end to end on `swapdrop local`: they point at the
    gateway, an oversized target is refused there, a valid one starts the job, the result comes back."""
    from swapdrop_local.auth import signed_request
    from swapdrop_local.stack import RunningStack, StackOptions

    result = png((30, 160, 90), size=(64, 48))
    options = StackOptions(
        reconcile_interval=0,
        parameters={"MaxImageBytes": "200000"},
        emulator={"step_delay": 0.02, "engine": lambda _source, _target: result},
    )
    with RunningStack(options) as running:
        info = running.info()
        assert info["s3_url"] == running.s3_gateway.url != info["endpoint_url"]
        for function in running.functions.values():
            assert function._environment["AWS_ENDPOINT_URL_S3"] == info["s3_url"]
        face = signed_request(info, "PUT", "/faces/ada", json_body={"contentType": "image/png"})
        assert face.status_code == 200, face.text
        assert face.json()["upload"]["url"].startswith(info["s3_url"] + "/")
        assert _upload(face.json()["upload"], png((200, 150, 120))).status_code == 204
        created = signed_request(
            info, "POST", "/jobs", json_body={"face": "ada", "target": {"upload": {"contentType": "image/png"}}}
        )
        assert created.status_code == 202, created.text
        job = created.json()
        assert _error(_upload(job["upload"], b"a" * 200_001))[:2] == (400, "EntityTooLarge")
        assert _upload(job["upload"], png((10, 20, 30))).status_code == 204
        deadline = time.monotonic() + 60
        while (view := signed_request(info, "GET", f"/jobs/{job['jobId']}", params={"wait": 5}).json())[
            "status"
        ] not in ("SUCCESS", "FAILURE", "REJECTED", "CANCELLED"):
            assert time.monotonic() < deadline, view
        assert view["status"] == "SUCCESS", view
        assert view["result"]["url"].startswith(info["s3_url"] + "/")
        assert requests.get(view["result"]["url"], timeout=10).content == result
        running.s3_gateway.clock = lambda: time.time() + 3600
        assert _error(requests.get(view["result"]["url"], timeout=10))[2] == "Request has expired"
