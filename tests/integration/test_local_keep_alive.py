"""The local stack's moto server keeps HTTP/1.1 connections open, as AWS does (moto_routing), and the S3
gateway keeps one connection to moto per client connection: no TCP connect and no new moto thread per
AWS call. What a request left unread is drained first, so the next request on the connection is intact."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.moto_server import werkzeug_app
from moto.server import ThreadedMotoServer
from swapdrop_local import moto_routing
from swapdrop_local.s3_gateway import Keys, S3Gateway

REGION = "us-east-1"
PATCHED = ("make_environ", "run_wsgi", "send_header", "timeout", "disable_nagle_algorithm", "log_request", "log_error")
UNREAD = "/moto-api/data.json"
"""A route whose handler never reads the request body."""
AUTH = "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """A moto server with the local stack's keep-alive and quiet request log (undone after the test)."""
    for name in PATCHED:
        monkeypatch.setattr(werkzeug_app.MotoRequestHandler, name, getattr(werkzeug_app.MotoRequestHandler, name))
    moto_routing.keep_connections_alive()
    moto_routing.quiet_request_log()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server.get_host_and_port()
    server.stop()


def list_tables(connection: http.client.HTTPConnection, **headers: str) -> http.client.HTTPResponse:
    connection.request(
        "POST",
        "/",
        body=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": AUTH.format(service="dynamodb"),
            **headers,
        },
    )
    return connection.getresponse()


def test_requests_share_one_connection_even_after_a_body_moto_did_not_read(moto: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*moto, timeout=10)
    first = list_tables(connection)
    assert first.status == 200 and first.getheader("Connection") is None and b"TableNames" in first.read()
    socket = connection.sock
    # A GET with a body moto never reads: it must not be taken for the next request line.
    connection.request("GET", UNREAD, body=b"x" * 5000)
    unread = connection.getresponse()
    assert unread.status == 200
    unread.read()

    again = list_tables(connection)

    assert again.status == 200 and b"TableNames" in again.read()
    assert connection.sock is socket, "the same connection answered all three"


def test_a_client_that_asks_to_close_gets_its_connection_closed(moto: tuple[str, int]) -> None:
    response = list_tables(http.client.HTTPConnection(*moto, timeout=10), Connection="close")
    assert response.getheader("Connection") == "close" and response.will_close
    response.read()


def test_a_chunked_body_or_one_too_large_to_drain_closes_the_connection(
    moto: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = http.client.HTTPConnection(*moto, timeout=10)
    connection.request(
        "GET",
        "/no-such-bucket/key",
        body=iter([b"abc", b"def"]),
        headers={"Authorization": AUTH.format(service="s3"), "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    chunked = connection.getresponse()
    chunked.read()
    assert chunked.will_close

    monkeypatch.setattr(moto_routing, "DRAIN_LIMIT", 100)
    connection = http.client.HTTPConnection(*moto, timeout=10)
    connection.request("GET", UNREAD, body=b"x" * 1000)
    large = connection.getresponse()
    large.read()
    assert large.will_close


def test_no_log_line_per_request_nor_for_an_idle_connection_closed(
    moto: tuple[str, int], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(werkzeug_app.MotoRequestHandler, "timeout", 0.2)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        connection = http.client.HTTPConnection(*moto, timeout=10)
        list_tables(connection).read()
        assert connection.sock is not None and connection.sock.recv(1) == b"", "closed by moto once idle"
    assert not [r for r in caplog.records if r.name == "werkzeug"]


def test_the_s3_gateway_keeps_one_connection_to_moto_per_client_connection(
    moto: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    connect = http.client.HTTPConnection.connect  # the gateway's; boto3's urllib3 connections have their own

    def counted(self: http.client.HTTPConnection) -> None:
        opened.append(self)
        connect(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", counted)
    host, port = moto
    with S3Gateway(f"http://{host}:{port}", Keys({"local": "local"}, REGION)) as gateway:
        s3 = boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=gateway.url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.create_bucket(Bucket="kept-alive")
        s3.put_object(Bucket="kept-alive", Key="a.png", Body=b"a" * 70_000)
        assert s3.head_object(Bucket="kept-alive", Key="a.png")["ContentLength"] == 70_000
        assert s3.get_object(Bucket="kept-alive", Key="a.png")["Body"].read() == b"a" * 70_000
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="kept-alive")["Contents"]] == ["a.png"]
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket="kept-alive", Key="missing.png")
        s3.delete_object(Bucket="kept-alive", Key="a.png")

    assert len(opened) == 1, "seven requests, one connection to moto"
