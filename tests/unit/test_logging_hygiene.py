"""No API key, callback secret, token or image bytes in any log line (DESIGN.md)."""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import callback_handler
import pytest
from fakes import FakeLambdaContext, RecordingAdapter, Reply, session_with
from swapdrop import wiring
from swapdrop.callback_token import token_for
from swapdrop.config import AuthStyle
from swapdrop.observability import logger
from swapdrop.result_download import DownloadedImage
from swapdrop.submission import Submitter
from swapdrop.upstream_pool import UpstreamPool, member_clients

from .builders import API_KEY, CALLBACK_SECRET, TASK_ID, snapshot_body, upload
from .conftest import World

TARGET = "inbox/alice/trip/beach.png"
IMAGE_URL = "https://cdn.example/r/1.png"


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[SimpleNamespace]:
    """Everything Swapdrop's Powertools logger writes (its JSON lines, normally on stdout), at
    DEBUG; whatever else is printed to stdout (EMF metrics); and whatever other libraries log
    through the standard logging tree."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    lines = io.StringIO()
    previous_stream = handler.setStream(lines)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)

    def text() -> str:
        return "\n".join((lines.getvalue(), capsys.readouterr().out, caplog.text))

    try:
        yield SimpleNamespace(text=text, lines=lines)
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)


def forbidden(job_id: str, images: SimpleNamespace) -> dict[str, str]:
    token = token_for(CALLBACK_SECRET, job_id)
    return {
        "API key": API_KEY,
        "callback secret": CALLBACK_SECRET,
        "callback token": token,
        "source image base64": base64.b64encode(images.jpeg).decode()[:32],
        "target image base64": base64.b64encode(images.png).decode()[:32],
    }


def submitter_with_real_client(world: World, adapter: RecordingAdapter) -> Submitter:
    """Real UpstreamClients behind an upstream pool whose secret holds the key (so the pool's logs are checked too)."""
    pool = UpstreamPool(
        lambda: json.dumps({"apiKey": API_KEY, "members": [{"name": "relay-1", "instanceId": "42"}]}),
        default_base_url="https://relay.example",
        default_auth_style=AuthStyle.BEARER,
        client_factory=member_clients(30, session=session_with(adapter)),
        monotonic=itertools.count(0.0, 60.0).__next__,  # a minute between looks: past any queue-full cooldown
    )
    return world.submitter(upstream=pool)


def test_a_whole_job_logs_no_secrets_and_no_image_bytes(
    world: World, images: SimpleNamespace, captured: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(TARGET, images.png)
    world.downloader.results[IMAGE_URL] = DownloadedImage(images.webp, "webp", "image/webp")
    adapter = RecordingAdapter(
        [
            Reply.json({"code": 23, "description": "队列已满"}),  # wait for capacity first
            Reply.json({"code": 1, "description": "提交成功", "result": TASK_ID}),
        ]
    )
    submitter = submitter_with_real_client(world, adapter)
    item = upload(TARGET)
    job_id = item.job_id

    assert submitter.submit(item, 60).outcome.value == "RETRY_LATER"
    assert submitter.submit(item, 60).outcome.value == "SUBMITTED"
    sent = adapter.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"  # the key really was used

    receiver = world.receiver()
    monkeypatch.setattr(wiring, "callback_receiver", lambda: receiver)
    token = token_for(CALLBACK_SECRET, job_id)
    for status, progress, extra in (("IN_PROGRESS", "40%", {}), ("SUCCESS", "100%", {"imageUrl": IMAGE_URL})):
        event = {
            "version": "2.0",
            "routeKey": "POST /callbacks/{jobId}",
            "rawPath": f"/callbacks/{job_id}",
            "rawQueryString": f"token={token}",
            "queryStringParameters": {"token": token},
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "http": {"method": "POST", "path": f"/callbacks/{job_id}", "sourceIp": "198.51.100.23"},
                "stage": "$default",
                "routeKey": "POST /callbacks/{jobId}",
                "requestId": "r1",
            },
            "pathParameters": {"jobId": job_id},
            "body": json.dumps(snapshot_body(status, job_id, progress, **extra)),
            "isBase64Encoded": False,
        }
        assert callback_handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 200
    # a forged callback is logged too, and must not echo what it was given
    forged = dict(event, rawQueryString=f"token={token[:-2]}xx", queryStringParameters={"token": token[:-2] + "xx"})
    assert callback_handler.lambda_handler(forged, FakeLambdaContext())["statusCode"] == 403

    output = captured.text()
    records = [json.loads(line) for line in captured.lines.getvalue().splitlines()]
    assert all(r["service"] == "swapdrop" for r in records)
    for message in (
        "upstream pool read",
        "job waits for upstream capacity",  # code 23 from the pool's only member
        "job submitted",
        "job updated",
        "result copied",
        "callback with an invalid",
    ):
        assert message in output, f"the capture works: {message!r} was logged"
    assert job_id in output
    for what, secret in forbidden(job_id, images).items():
        assert secret not in output, f"{what} leaked into the logs"
    assert token[:-2] not in output


def test_an_internal_error_logs_no_secrets(world: World, images: SimpleNamespace, captured: SimpleNamespace) -> None:
    world.media.put("faces/alice.jpg", images.jpeg)
    world.media.put(TARGET, images.png)
    adapter = RecordingAdapter([RuntimeError(f"adapter blew up holding {API_KEY[:4]}")])
    submitter = submitter_with_real_client(world, adapter)
    item = upload(TARGET)
    with pytest.raises(RuntimeError):
        submitter.submit(item, 60)
    output = captured.text()
    for what, secret in forbidden(item.job_id, images).items():
        assert secret not in output, f"{what} leaked into the logs"
