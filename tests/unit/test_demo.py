"""The demo's jobs-API swap against a fake API (no sockets): the happy path's requests, and the loud
failures (a refusal, a failed upload, a failed job, a wrong origin) that must end the demo with exit 1."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from swapdrop_local import demo

JOB = "a" * 32
INFO = {"api_url": "http://api.test", "bucket": "bkt"}
FORM = {"url": "http://s3.test/bkt", "fields": {"key": "k", "policy": "p"}, "expiresAt": "x", "maxBytes": 100}


def _response(status: int, body: Any = None, text: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else text.encode()
    return response


def _view(status: str, progress: int = 0, result: dict | None = None) -> dict[str, Any]:
    view = {"jobId": JOB, "status": status, "progress": progress, "target": {"key": f"uploads/{JOB}/target.jpg"}}
    return view | ({"result": result} if result else {})


class FakeTable:
    def __init__(self, origin: str | None = "api") -> None:
        self.origin = origin

    def get_item(self, Key: dict[str, str]) -> dict[str, Any]:
        return {"Item": {"jobId": Key["jobId"], "origin": self.origin}}


class FakeApi:
    """The jobs API as the demo calls it; `views` are the successive GET /jobs/{id} answers."""

    def __init__(self, views: list[dict[str, Any]], refuse: dict[str, requests.Response] | None = None) -> None:
        self.views = list(views)
        self.refuse = refuse or {}
        self.calls: list[tuple[str, str, dict | None, dict | None]] = []
        self.uploads: list[tuple[str, dict, tuple]] = []

    def request(self, info: dict, method: str, path: str, *, params=None, json_body=None, headers=None) -> Any:
        self.calls.append((method, path, params, headers))
        if f"{method} {path}" in self.refuse:
            return self.refuse[f"{method} {path}"]
        if method == "PUT":
            return _response(200, {"face": "hopper", "key": "faces/hopper.jpg", "upload": FORM})
        if method == "POST":
            return _response(202, _view("AWAITING_UPLOAD") | {"upload": FORM})
        return _response(200, self.views.pop(0))

    def post(self, url: str, data: dict, files: dict, timeout: float) -> requests.Response:
        self.uploads.append((url, data, files["file"]))
        return self.refuse.get("upload", _response(204))

    def get(self, url: str, timeout: float) -> requests.Response:
        return _response(200, text="result-bytes") if url == "http://s3.test/result" else _response(403)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    def install(views: list[dict[str, Any]], refuse: dict[str, requests.Response] | None = None) -> FakeApi:
        fake = FakeApi(views, refuse)
        monkeypatch.setattr(demo, "signed_request", fake.request)
        monkeypatch.setattr(requests, "post", fake.post)
        monkeypatch.setattr(requests, "get", fake.get)
        monkeypatch.setattr(demo.time, "sleep", lambda _seconds: None)
        return fake

    return install


RESULT = {"key": f"results/hopper/jobs/{JOB}.png", "url": "http://s3.test/result", "contentType": "image/png"}


def test_the_api_swap_uploads_waits_and_downloads(api, capsys: pytest.CaptureFixture[str]) -> None:
    # SUCCESS comes before the result is copied: the demo asks again rather than fail or hold 20 s.
    fake = api([_view("IN_PROGRESS", 40), _view("SUCCESS", 100), _view("SUCCESS", 100, RESULT)])
    view, result = demo.api_swap(INFO, FakeTable(), b"face", b"target", timeout=60)
    assert result == b"result-bytes"
    assert demo.result_name(view) == "api-result.png"
    posts = [call for call in fake.calls if call[0] == "POST"]
    assert len(posts) == 2 and posts[0][3] == posts[1][3] and "Idempotency-Key" in posts[0][3]
    waits = [call[2]["wait"] for call in fake.calls if call[0] == "GET"]
    assert waits == [20, 20, 0]
    assert [upload[2] for upload in fake.uploads] == [
        ("hopper.jpg", b"face", "image/jpeg"),
        ("target.jpg", b"target", "image/jpeg"),
    ]
    out = capsys.readouterr().out
    assert f"API job {JOB}: SUCCESS (origin api), result {RESULT['key']}" in out
    assert "IN_PROGRESS" in out and "timings: face" in out


@pytest.mark.parametrize(
    ("views", "refuse", "table", "message"),
    [
        ([], {"PUT /faces/hopper": _response(403, {"message": "Forbidden"})}, FakeTable(), "answered 403: Forbidden"),
        (
            [],
            {"POST /jobs": _response(400, {"error": {"code": "invalid_request", "message": "bad face"}})},
            FakeTable(),
            "POST /jobs answered 400: invalid_request: bad face",
        ),
        ([], {"upload": _response(403, text="<Error><Code>AccessDenied</Code></Error>")}, FakeTable(), "AccessDenied"),
        ([_view("FAILURE") | {"failReason": "no face found"}], {}, FakeTable(), "ended FAILURE: no face found"),
        ([_view("SUCCESS", 100, RESULT)], {}, FakeTable(origin=None), "origin None, not 'api'"),
        ([_view("SUCCESS", 100, RESULT | {"url": "http://s3.test/gone"})], {}, FakeTable(), "URL answered 403"),
    ],
)
def test_a_failing_api_path_is_a_clear_error(api, views, refuse, table, message) -> None:
    api(views, refuse)
    with pytest.raises(demo.DemoFailed, match=re.escape(message)):
        demo.api_swap(INFO, table, b"face", b"target", timeout=60)


def test_a_job_that_never_finishes_times_out(api) -> None:
    api([_view("IN_PROGRESS", 10)] * 3)
    with pytest.raises(demo.DemoFailed, match="still IN_PROGRESS after 0 s"):
        demo.api_swap(INFO, FakeTable(), b"face", b"target", timeout=0)


def test_a_file_over_the_form_limit_is_refused_before_sending(api) -> None:
    fake = api([])
    with pytest.raises(demo.DemoFailed, match="101 bytes is over the form's limit of 100"):
        demo.post_form(FORM, "t.jpg", b"x" * 101, "image/jpeg", "the target upload")
    assert fake.uploads == []
