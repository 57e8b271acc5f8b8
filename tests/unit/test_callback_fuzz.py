"""Hostile callbacks: every body, and every framing of it in the API Gateway event, gets a 4xx
or a real answer, never a 500 and never an exception; refused bodies write nothing.

Hypothesis generates bodies (bytes, JSON text with odd numbers and deep nesting, snapshot-like
objects); fixed cases cover what a run against the route found: 10,000-deep JSON, 1e400 and
Infinity, a body flagged base64 that is not, text that is not valid Unicode, huge bodies.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import callback_handler
import pytest
from fakes import FakeLambdaContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swapdrop import wiring
from swapdrop.callback_token import token_for
from swapdrop.jobs import JobStatus
from swapdrop.result_download import DownloadedImage, DownloadRefused
from swapdrop.snapshots import MAX_CALLBACK_BYTES

from .builders import CALLBACK_SECRET, TASK_ID, make_job
from .conftest import World
from .test_snapshot_fuzz import json_text, snapshot_like, snapshot_text

JOB_ID = "5d41402abc4b2a76b9719d911017c592"
TOKEN = token_for(CALLBACK_SECRET, JOB_ID)
EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "callback-success.json").read_text())


class RefusingDownloader:
    """A result URL from a fuzzed body is never fetched for real: every copy fails (and is recorded)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def download(self, url: str) -> DownloadedImage:
        self.calls.append(url)
        raise DownloadRefused("the result URL answered HTTP 403")


def fresh_world() -> World:
    world = World(downloader=RefusingDownloader())  # type: ignore[arg-type]
    world.jobs.put(make_job(jobId=JOB_ID, status=JobStatus.SUBMITTED, taskId=TASK_ID, attempts=1))
    return world


def event_with(body: Any, base64_flag: Any = False, token: str = TOKEN) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["rawQueryString"] = f"token={token}"
    event["queryStringParameters"] = {"token": token}
    event["body"] = body
    event["isBase64Encoded"] = base64_flag
    return event


def invoke(world: World, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    receiver = world.receiver()
    monkeypatch.setattr(wiring, "callback_receiver", lambda: receiver)
    return callback_handler.lambda_handler(event, FakeLambdaContext())


DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE = [
    pytest.param(
        event_with("not base64 at all!", True), "body is marked base64-encoded but is not valid base64", id="b64"
    ),
    pytest.param(
        event_with("é" * 10, True), "body is marked base64-encoded but is not valid base64", id="b64-non-ascii"
    ),
    pytest.param(event_with('{"id": "\udcff\ud800"}'), "body is not valid JSON (not UTF-8 text", id="surrogates"),
    pytest.param(event_with(base64.b64encode(b"\xff\xfe{}").decode(), True), "not UTF-8 text", id="b64-bad-utf8"),
    pytest.param(event_with(DEEP), "body nests deeper than 64 levels", id="deep-list"),
    pytest.param(event_with('{"a":' * 10_000 + "1" + "}" * 10_000), "nests deeper", id="deep-object"),
    pytest.param(event_with(base64.b64encode(DEEP.encode()).decode(), True), "nests deeper", id="deep-b64"),
    pytest.param(
        event_with("x" * (MAX_CALLBACK_BYTES + 1)), f"callback body over {MAX_CALLBACK_BYTES} bytes", id="huge"
    ),
    pytest.param(event_with(" " * (10 * 1024 * 1024)), "callback body over", id="10MiB"),
    pytest.param(event_with(12345), "body is not text", id="number-body"),
    pytest.param(event_with({"id": TASK_ID}), "body is not text", id="object-body"),
    pytest.param(event_with(""), "body is not valid JSON (Expecting value", id="empty"),
    pytest.param(event_with(None), "body is not valid JSON (Expecting value", id="no-body"),
    pytest.param(event_with("1e400"), "a task snapshot is a JSON object, not a number", id="1e400"),
    pytest.param(event_with('{"id": 1e400, "status": "SUCCESS"}'), "id must be text", id="id-inf"),
    pytest.param(event_with('{"id": "1", "status": NaN}'), "status: Input should be", id="status-nan"),
    pytest.param(event_with("[" * 64 + "]" * 64), "a task snapshot is a JSON object, not a list", id="64-deep"),
]


@pytest.mark.parametrize(("event", "message"), HOSTILE)
def test_hostile_events_get_a_specific_4xx_and_write_nothing(
    event: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh_world()
    writes = len(world.jobs.writes)
    response = invoke(world, event, monkeypatch)
    assert 400 <= response["statusCode"] < 500, response
    assert message in json.loads(response["body"])["message"]
    assert len(world.jobs.writes) == writes
    assert world.downloader.calls == []


@pytest.mark.parametrize("progress", ["1e400", "Infinity", "-Infinity", "NaN"])
def test_odd_numbers_through_the_handler_still_apply(progress: str, monkeypatch: pytest.MonkeyPatch) -> None:
    world = fresh_world()
    body = f'{{"id": "{TASK_ID}", "status": "IN_PROGRESS", "state": "{JOB_ID}", "progress": {progress}}}'
    response = invoke(world, event_with(body), monkeypatch)
    assert response["statusCode"] == 200
    job = world.jobs.get(JOB_ID)
    assert job is not None and job.status is JobStatus.IN_PROGRESS and job.progress == 0


bodies = st.one_of(
    st.binary(max_size=300),
    json_text,
    snapshot_text,
    snapshot_like.map(lambda d: json.dumps(d | {"id": TASK_ID, "state": JOB_ID}, default=str)),
    st.integers(min_value=60, max_value=3000).map(lambda n: "[" * n + "]" * n),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, flag=st.booleans())
def test_any_body_gets_an_answer_and_only_a_200_writes(body: str | bytes, flag: bool) -> None:
    world = fresh_world()
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    if flag:
        framed = event_with(base64.b64encode(raw).decode(), True)
    else:
        framed = event_with(raw.decode("utf-8", "surrogateescape"))
    writes = len(world.jobs.writes)
    receiver = world.receiver()
    original = wiring.callback_receiver
    wiring.callback_receiver = lambda: receiver  # type: ignore[assignment]  # monkeypatch is function-scoped
    try:
        response = callback_handler.lambda_handler(framed, FakeLambdaContext())
    finally:
        wiring.callback_receiver = original  # type: ignore[assignment]
    assert response["statusCode"] in (200, 400, 409), response
    assert json.loads(response["body"])["message" if response["statusCode"] != 200 else "jobId"]
    if response["statusCode"] != 200:
        assert len(world.jobs.writes) == writes
