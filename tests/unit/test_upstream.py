"""upstream: the streamed request body, the HTTP client (via a recording adapter), and the
mapping of every answer the implementations give onto Accepted / Retryable / Rejected."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
import requests
from fakes import RecordingAdapter, Reply, session_with
from swapdrop.config import AuthStyle
from swapdrop.observability import metrics
from swapdrop.task_snapshot import UpstreamStatus
from swapdrop.upstream import (
    LIST_BATCH_SIZE,
    Accepted,
    Rejected,
    Retryable,
    StreamingJsonBody,
    SwapImage,
    SwapRequest,
    UpstreamClient,
    UpstreamError,
    classify_submit_response,
)

BASE = "https://relay.example/v1"


def swap_request(source: bytes, target: bytes, instance_id: str = "", state: str = "job-1") -> SwapRequest:
    return SwapRequest(
        source=SwapImage(source, "image/png"),
        target=SwapImage(target, "image/jpeg"),
        notify_hook="https://api.example/callbacks/job-1?token=abc_-",
        state=state,
        instance_id=instance_id,
    )


def read_all(body: StreamingJsonBody, size: int) -> bytes:
    chunks = []
    while True:
        chunk = body.read(size)
        if not chunk:
            return b"".join(chunks)
        assert len(chunk) <= size
        chunks.append(chunk)


def decode_data_url(value: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert value.startswith(prefix)
    return base64.b64decode(value[len(prefix) :], validate=True)


# --- StreamingJsonBody --------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(8))
@pytest.mark.parametrize("read_size", [1, 7, 8192, -1])
def test_streamed_body_small_images(n: int, read_size: int) -> None:
    source, target = os.urandom(n), os.urandom((n * 5 + 3) % 8)
    body = StreamingJsonBody(swap_request(source, target))
    data = read_all(body, read_size) if read_size > 0 else body.read()
    assert len(data) == len(body)
    payload = json.loads(data)
    assert decode_data_url(payload["sourceBase64"], "image/png") == source
    assert decode_data_url(payload["targetBase64"], "image/jpeg") == target


@pytest.mark.parametrize("n", [49_151, 49_152, 49_153, 98_305, 200_000, 200_002])
@pytest.mark.parametrize("read_size", [7, 8192, 65_537])
def test_streamed_body_large_images_across_chunk_boundaries(n: int, read_size: int) -> None:
    source, target = os.urandom(n), os.urandom(n // 2 + 1)
    body = StreamingJsonBody(swap_request(source, target))
    data = read_all(body, read_size)
    assert len(data) == len(body)
    payload = json.loads(data)
    assert decode_data_url(payload["sourceBase64"], "image/png") == source
    assert decode_data_url(payload["targetBase64"], "image/jpeg") == target


def test_iterating_the_body_gives_the_same_bytes_as_reading_it() -> None:
    request = swap_request(os.urandom(100_001), os.urandom(3))
    iterated = b"".join(StreamingJsonBody(request))
    assert iterated == StreamingJsonBody(request).read()
    assert len(iterated) == len(StreamingJsonBody(request))


def test_body_has_hook_and_state_and_no_account_filter_by_default() -> None:
    payload = json.loads(StreamingJsonBody(swap_request(b"a", b"b")).read())
    assert payload["notifyHook"] == "https://api.example/callbacks/job-1?token=abc_-"
    assert payload["state"] == "job-1"
    assert "accountFilter" not in payload
    assert set(payload) == {"sourceBase64", "targetBase64", "notifyHook", "state"}


def test_body_has_account_filter_when_an_instance_is_configured() -> None:
    payload = json.loads(StreamingJsonBody(swap_request(b"a", b"b", instance_id="1286541563528380416")).read())
    assert payload["accountFilter"] == {"instanceId": "1286541563528380416"}


def test_non_ascii_and_quotes_in_state_keep_the_length_exact() -> None:
    body = StreamingJsonBody(swap_request(b"abc", b"de", state='café "日本"\\'))
    data = body.read()
    assert len(data) == len(body)
    assert json.loads(data)["state"] == 'café "日本"\\'


# --- UpstreamClient: submit ------------------------------------------------------------------------


def client(adapter: RecordingAdapter, style: AuthStyle = AuthStyle.BEARER, key: str = "K") -> UpstreamClient:
    return UpstreamClient(
        base_url=BASE + "/", api_key=lambda: key, auth_style=style, timeout_seconds=30, session=session_with(adapter)
    )


ACCEPTED = Reply.json({"code": 1, "description": "提交成功", "result": "1729072764329123", "properties": {}})


def test_submit_posts_the_streamed_body_with_bearer_auth() -> None:
    adapter = RecordingAdapter([ACCEPTED])
    source, target = os.urandom(70_000), os.urandom(1234)
    outcome = client(adapter).submit_swap(swap_request(source, target, instance_id="inst-1"))
    assert outcome == Accepted("1729072764329123", None, 1, "提交成功")
    (sent,) = adapter.requests
    assert sent.method == "POST"
    assert sent.url == BASE + "/mj/insight-face/swap"
    assert sent.headers["Authorization"] == "Bearer K"
    assert "mj-api-secret" not in sent.headers
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Content-Length"] == str(len(sent.body))
    assert "Transfer-Encoding" not in sent.headers
    assert sent.body_kind == "file-like"  # streamed, not materialised by requests
    assert sent.timeout == (5.0, 30)
    payload = sent.json()
    assert decode_data_url(payload["sourceBase64"], "image/png") == source
    assert decode_data_url(payload["targetBase64"], "image/jpeg") == target
    assert payload["accountFilter"] == {"instanceId": "inst-1"}
    assert payload["state"] == "job-1"


def test_submit_with_mj_api_secret_auth() -> None:
    adapter = RecordingAdapter([ACCEPTED])
    client(adapter, AuthStyle.MJ_API_SECRET).submit_swap(swap_request(b"s", b"t"))
    (sent,) = adapter.requests
    assert sent.headers["mj-api-secret"] == "K"
    assert "Authorization" not in sent.headers


def test_the_key_is_read_for_every_request() -> None:
    keys = iter(["old-key", "rotated-key"])
    adapter = RecordingAdapter([ACCEPTED, ACCEPTED])
    upstream = UpstreamClient(BASE, lambda: next(keys), AuthStyle.BEARER, 30, session=session_with(adapter))
    upstream.submit_swap(swap_request(b"s", b"t"))
    upstream.submit_swap(swap_request(b"s", b"t"))
    assert [r.headers["Authorization"] for r in adapter.requests] == ["Bearer old-key", "Bearer rotated-key"]


def test_submit_does_not_follow_redirects() -> None:
    adapter = RecordingAdapter([Reply(302, b"", {"Location": "https://elsewhere.example/steal"})])
    outcome = client(adapter).submit_swap(swap_request(b"s", b"t"))
    assert isinstance(outcome, Retryable)
    assert len(adapter.requests) == 1


@pytest.mark.parametrize(
    ("error", "maybe_accepted", "fragment"),
    [
        (requests.ReadTimeout("read timed out"), True, "did not answer in time after the request was sent"),
        (requests.ConnectTimeout("connect timed out"), False, "did not accept a connection in time"),
        (requests.ConnectionError("connection refused"), False, "could not reach the swap API (ConnectionError)"),
        (requests.exceptions.SSLError("bad cert"), False, "could not reach the swap API (SSLError)"),
    ],
)
def test_transport_failures_are_retryable(error: Exception, maybe_accepted: bool, fragment: str) -> None:
    outcome = client(RecordingAdapter([error])).submit_swap(swap_request(b"s", b"t"))
    assert isinstance(outcome, Retryable)
    assert outcome.maybe_accepted is maybe_accepted
    assert fragment in outcome.reason


def test_http_answers_go_through_the_classifier() -> None:
    adapter = RecordingAdapter([Reply(429, b"Too Many Requests"), Reply(401, b"")])
    upstream = client(adapter)
    assert isinstance(upstream.submit_swap(swap_request(b"s", b"t")), Retryable)
    assert upstream.submit_swap(swap_request(b"s", b"t")) == Rejected("HTTP 401: the API key was refused")


# --- classify_submit_response --------------------------------------------------------------------


def body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (
            200,
            {"code": 1, "description": "提交成功", "result": "1729072764329123"},
            Accepted("1729072764329123", None, 1, "提交成功"),
        ),
        (
            200,
            {"code": 21, "description": "任务已存在", "result": "1729072764329123"},
            Accepted("1729072764329123", None, 21, "任务已存在"),
        ),
        (
            200,
            {
                "code": 22,
                "description": "排队中，前面还有2个任务",
                "result": "1729072764329123",
                "properties": {"numberOfQueues": 2},
            },
            Accepted("1729072764329123", 2, 22, "排队中，前面还有2个任务"),
        ),
        (201, {"code": 1, "result": 1729072764329123}, Accepted("1729072764329123", None, 1, "")),
        (200, {"code": 1, "result": " 42 "}, Accepted("42", None, 1, "")),
        (200, {"code": 22, "result": "7", "properties": {"numberOfQueues": -3}}, Accepted("7", None, 22, "")),
    ],
)
def test_accepted_codes(status: int, payload: dict, expected: Accepted) -> None:
    assert classify_submit_response(status, body(payload)) == expected


@pytest.mark.parametrize(
    ("status", "raw", "fragments"),
    [
        (200, body({"code": 1, "result": None}), ["code 1 SUCCESS came without a task id"]),
        (200, body({"code": 1}), ["without a task id"]),
        (200, body({"code": 22, "result": ""}), ["code 22 IN_QUEUE came without a task id"]),
        (
            200,
            body({"code": 23, "description": "队列已满，请稍后尝试"}),
            ["code 23 QUEUE_REJECTED", "队列已满，请稍后尝试"],
        ),
        (200, body({"code": 9, "description": "系统错误"}), ["code 9 FAILURE", "系统错误"]),
        (200, body({"success": False, "code": -1, "message": "daily limit"}), ["code -1", "daily limit"]),
        (429, b"", ["rate limiting (HTTP 429)"]),
        (429, body({"error": {"message": "slow down", "type": "rate_limit"}}), ["HTTP 429", "slow down"]),
        (500, b"<html>oops</html>", ["server error (HTTP 500)"]),
        (502, b"Bad Gateway", ["HTTP 502"]),
        (503, b"", ["HTTP 503"]),
        (500, body({"success": False, "code": -1, "message": "daily limit"}), ["HTTP 500", "daily limit"]),
        (200, b"<html>not json</html>", ["answered HTTP 200 without a result code"]),
        (200, b"", ["without a result code"]),
        (200, body(["not", "an", "object"]), ["without a result code"]),
        (400, body({"code": 23, "description": "queue full"}), ["code 23", "queue full"]),
    ],
)
def test_retryable_answers(status: int, raw: bytes, fragments: list[str]) -> None:
    outcome = classify_submit_response(status, raw)
    assert isinstance(outcome, Retryable)
    assert outcome.maybe_accepted is False
    for fragment in fragments:
        assert fragment in outcome.reason


@pytest.mark.parametrize(
    ("status", "raw", "reason"),
    [
        (
            200,
            body({"code": 4, "description": "base64 decode error"}),
            "the swap API refused the job (code 4 VALIDATION_ERROR): base64 decode error",
        ),
        (
            200,
            body({"code": 24, "description": "可能包含敏感词"}),
            "the swap API refused the job (code 24 BANNED_PROMPT): 可能包含敏感词",
        ),
        (
            200,
            body({"code": 3, "description": "账号不存在"}),
            "the swap API refused the job (code 3 NOT_FOUND): 账号不存在",
        ),
        (
            200,
            body({"code": 77, "description": "brand new"}),
            "the swap API refused the job (code 77 unknown code): brand new",
        ),
        (401, b"", "HTTP 401: the API key was refused"),
        (403, b"", "HTTP 403: access is forbidden for this API key"),
        (403, body({"message": "该令牌无权访问此模型"}), "HTTP 403: 该令牌无权访问此模型"),
        (404, b"Not Found", "HTTP 404: not found"),
        (
            400,
            body({"description": "sourceBase64 is required", "type": "upstream_error", "code": 4}),
            "HTTP 400 (code 4): sourceBase64 is required",
        ),
        (413, b"", "HTTP 413: request refused"),
    ],
)
def test_rejected_answers_keep_the_upstream_description(status: int, raw: bytes, reason: str) -> None:
    assert classify_submit_response(status, raw) == Rejected(reason)


def test_descriptions_are_capped() -> None:
    outcome = classify_submit_response(200, body({"code": 4, "description": "x" * 5000}))
    assert isinstance(outcome, Rejected)
    assert len(outcome.reason) < 600


# --- UpstreamClient: polling ----------------------------------------------------------------------


def task(task_id: str, status: str = "IN_PROGRESS", **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "SWAP_FACE", "status": status, "progress": "50%", "botType": "X", **extra}


def test_list_tasks_asks_in_batches_of_fifty() -> None:
    ids = [f"17290727643{i:05d}" for i in range(120)]
    adapter = RecordingAdapter(lambda req: Reply.json([task(i) for i in req.json()["ids"]]))
    snapshots = client(adapter, key="poll-key").list_tasks(ids)
    assert [s.id for s in snapshots] == ids
    assert [len(r.json()["ids"]) for r in adapter.requests] == [LIST_BATCH_SIZE, LIST_BATCH_SIZE, 20]
    assert [i for r in adapter.requests for i in r.json()["ids"]] == ids
    for sent in adapter.requests:
        assert sent.method == "POST"
        assert sent.url == BASE + "/mj/task/list-by-condition"
        assert sent.headers["Authorization"] == "Bearer poll-key"


def test_list_tasks_with_no_ids_asks_nothing() -> None:
    adapter = RecordingAdapter([])
    assert client(adapter).list_tasks([]) == []
    assert adapter.requests == []


def test_list_tasks_skips_malformed_items_and_counts_them() -> None:
    items = [
        task("1", "SUCCESS", imageUrl="https://cdn/r.png", progress="100%"),
        task("2", "WHATEVER"),
        "not an object",
        {"status": "SUCCESS"},
        task("3", progress="150%"),  # clamped, not refused
        task(4, "FAILURE", failReason="执行超时 10 分钟", progress=""),
        None,
        [task("5")],
    ]
    snapshots = client(RecordingAdapter([Reply.json(items)])).list_tasks(["1", "2", "3", "4", "5"])
    assert [(s.id, s.status) for s in snapshots] == [
        ("1", UpstreamStatus.SUCCESS),
        ("3", UpstreamStatus.IN_PROGRESS),
        ("4", UpstreamStatus.FAILURE),
    ]
    assert snapshots[1].progress == 100
    assert snapshots[2].failReason == "执行超时 10 分钟"
    assert metrics.metric_set["UpstreamSnapshotsRefused"]["Value"] == [1.0] * 5


def test_one_infinite_progress_does_not_hide_the_other_four_tasks() -> None:
    """The reported failure: one `"progress": 1e400` in list-by-condition failed every poll."""
    healthy = [json.dumps(task(f"17290727643{i:05d}", "SUCCESS", imageUrl=f"https://cdn/{i}.png")) for i in range(4)]
    odd = '{"id": "1729072764300099", "status": "IN_PROGRESS", "progress": 1e400}'
    raw = ("[" + ", ".join([healthy[0], odd, *healthy[1:]]) + "]").encode()
    snapshots = client(RecordingAdapter([Reply(200, raw)])).list_tasks(["x"])
    assert len(snapshots) == 5
    assert snapshots[1].id == "1729072764300099" and snapshots[1].progress == 0
    assert all(s.status is UpstreamStatus.SUCCESS for i, s in enumerate(snapshots) if i != 1)


@pytest.mark.parametrize(
    "raw",
    [
        b'[{"id": "1", "status": "SUCCESS", "imageUrl": "https://c/r", "progress": Infinity, "startTime": NaN}]',
        b'[{"id": "1", "status": "SUCCESS", "imageUrl": "https://c/r", "progress": -Infinity}]',
        b'[{"id": "1", "status": "SUCCESS", "imageUrl": "https://c/r", "submitTime": ' + b"9" * 5000 + b"}]",
        b'[{"id": "1", "status": "SUCCESS", "imageUrl": "https://c/r", "properties": '
        + b"[" * 300
        + b"]" * 300
        + b"}]",
    ],
)
def test_odd_numbers_and_nesting_in_an_answer_are_tolerated(raw: bytes) -> None:
    (snapshot,) = client(RecordingAdapter([Reply(200, raw)])).list_tasks(["1"])
    assert snapshot.status is UpstreamStatus.SUCCESS


def test_an_answer_nested_absurdly_deep_is_an_upstream_error_not_a_recursion_error() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(UpstreamError, match="nests deeper than"):
        client(RecordingAdapter([Reply(200, raw)])).list_tasks(["1"])


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (Reply.json({"error": "nope"}, status=500), "answered HTTP 500"),
        (Reply(401, b""), "answered HTTP 401"),
        (Reply.json({"code": 1, "result": []}), "did not return a list of tasks (it returned an object)"),
        (Reply.json("tasks"), "did not return a list of tasks (it returned text)"),
        (Reply(200, b"1e400"), "did not return a list of tasks (it returned a number)"),
        (Reply(200, b"<html>"), "answered non-JSON"),
        (requests.ConnectionError("refused"), "failed: ConnectionError"),
        (requests.ReadTimeout("slow"), "failed: ReadTimeout"),
    ],
)
def test_list_tasks_failures_raise_upstream_error(answer: Reply | Exception, fragment: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        client(RecordingAdapter([answer])).list_tasks(["1"])
    assert fragment in str(raised.value)
    assert "list-by-condition" in str(raised.value)
    assert BASE not in str(raised.value)


def test_fetch_task() -> None:
    adapter = RecordingAdapter([Reply.json(task("1729072764329123", "SUCCESS", imageUrl="https://cdn/r.png"))])
    snapshot = client(adapter, AuthStyle.MJ_API_SECRET).fetch_task("1729072764329123")
    assert snapshot is not None
    assert snapshot.status is UpstreamStatus.SUCCESS
    assert snapshot.imageUrl == "https://cdn/r.png"
    (sent,) = adapter.requests
    assert sent.method == "GET"
    assert sent.url == BASE + "/mj/task/1729072764329123/fetch"
    assert sent.headers["mj-api-secret"] == "K"
    assert sent.body == b""


def test_fetch_task_of_a_malformed_or_missing_answer_is_none() -> None:
    adapter = RecordingAdapter([Reply.json(None), Reply.json({"id": "1"})])
    upstream = client(adapter)
    assert upstream.fetch_task("1") is None
    assert upstream.fetch_task("1") is None


def test_fetch_task_of_an_unknown_id_is_none_when_the_body_is_empty() -> None:
    """midjourney-proxy returns null from its controller, which arrives as HTTP 200 and no body."""
    assert client(RecordingAdapter([Reply(200, b"")])).fetch_task("404404") is None
    with pytest.raises(UpstreamError, match="non-JSON"):
        client(RecordingAdapter([Reply(200, b"<html>")])).fetch_task("1")


def test_fetch_task_http_error_raises() -> None:
    with pytest.raises(UpstreamError, match="answered HTTP 404"):
        client(RecordingAdapter([Reply(404, b"")])).fetch_task("1")


# --- UpstreamClient: the latest tasks (GET /mj/task/list) ------------------------------------------


def test_recent_tasks_lists_the_latest_tasks_with_their_state() -> None:
    answer = [
        task("1729072764329125", "SUCCESS", state="job-b", imageUrl="https://cdn/b.png"),
        task("1729072764329124", "IN_PROGRESS", state="job-a", progress=1e400),
        task("1729072764329123", "MYSTERY", state="job-z"),
        "junk",
    ]
    adapter = RecordingAdapter([Reply.json(answer)])
    snapshots = client(adapter, AuthStyle.MJ_API_SECRET, key="list-key").recent_tasks()
    assert snapshots is not None
    assert [(s.id, s.state) for s in snapshots] == [("1729072764329125", "job-b"), ("1729072764329124", "job-a")]
    (sent,) = adapter.requests
    assert sent.method == "GET"
    assert sent.url == BASE + "/mj/task/list"
    assert sent.headers["mj-api-secret"] == "list-key"
    assert sent.body == b""
    assert metrics.metric_set["UpstreamSnapshotsRefused"]["Value"] == [1.0, 1.0]


def test_recent_tasks_of_an_empty_list_is_empty() -> None:
    assert client(RecordingAdapter([Reply.json([])])).recent_tasks() == []


@pytest.mark.parametrize("status", [404, 405, 501])
def test_recent_tasks_is_none_where_the_api_does_not_expose_it(status: int) -> None:
    assert client(RecordingAdapter([Reply(status, b"<html>Not Found</html>")])).recent_tasks() is None


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (Reply(500, b""), "GET /mj/task/list answered HTTP 500"),
        (Reply(401, b""), "GET /mj/task/list answered HTTP 401"),
        (Reply(403, b""), "GET /mj/task/list answered HTTP 403"),
        (Reply(200, b"<html>"), "GET /mj/task/list answered non-JSON"),
        (Reply.json({"content": []}), "GET /mj/task/list did not return a list of tasks (it returned an object)"),
        (requests.ReadTimeout("slow"), "GET /mj/task/list failed: ReadTimeout"),
    ],
)
def test_recent_tasks_failures_raise_upstream_error(answer: Reply | Exception, fragment: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        client(RecordingAdapter([answer])).recent_tasks()
    assert fragment in str(raised.value)
    assert BASE not in str(raised.value)


def test_a_listed_task_without_an_id_is_read_by_the_state_of_the_job_asking_for_it() -> None:
    """An odd relay drops `id`; the answer is to a query by ids, so the state (our job id) tells which."""
    items = [
        {"status": "FAILURE", "state": "job-a", "failReason": "no id here"},
        {"status": "SUCCESS", "state": "job-elsewhere", "imageUrl": "https://cdn/x.png"},  # no asked task
        {"status": "SUCCESS", "state": "job-b", "imageUrl": "https://cdn/b.png"},  # job-b's task was not asked
        task("2", "IN_PROGRESS", progress="40%"),
    ]
    answer = client(RecordingAdapter([Reply.json(items)])).list_tasks(
        ["1", "2"], task_of_state={"job-a": "1", "job-c": "2", "job-b": "3"}
    )
    assert [(s.id, s.status, s.state) for s in answer] == [
        ("1", UpstreamStatus.FAILURE, "job-a"),
        ("2", UpstreamStatus.IN_PROGRESS, None),
    ]
    assert metrics.metric_set["UpstreamIdsInferred"]["Value"] == [1.0]


def test_without_states_a_listed_task_without_an_id_is_still_skipped() -> None:
    items = [{"status": "FAILURE", "state": "job-a"}]
    assert client(RecordingAdapter([Reply.json(items)])).list_tasks(["1"]) == []


def test_a_fetched_task_without_an_id_is_the_task_asked_for() -> None:
    adapter = RecordingAdapter([Reply.json({"status": "SUCCESS", "imageUrl": "https://cdn/r.png"})])
    snapshot = client(adapter).fetch_task("1729072764329123")
    assert snapshot is not None and snapshot.id == "1729072764329123"


# --- UpstreamClient: cancel (POST /mj/task/{id}/cancel) ------------------------------------------


@pytest.mark.parametrize("status", [200, 204])
def test_cancel_task_posts_to_the_tasks_cancel_route_with_the_key(status: int) -> None:
    """trueai answers 200 and an empty body whatever happens: True only says the request was taken."""
    adapter = RecordingAdapter([Reply(status, b"")])
    assert client(adapter, AuthStyle.MJ_API_SECRET, key="cancel-key").cancel_task("1729072764329123") is True
    (sent,) = adapter.requests
    assert sent.method == "POST"
    assert sent.url == BASE + "/mj/task/1729072764329123/cancel"
    assert sent.headers["mj-api-secret"] == "cancel-key"
    assert sent.body == b""


def test_cancel_task_quotes_the_task_id_into_one_path_segment() -> None:
    adapter = RecordingAdapter([Reply(200, b"")])
    assert client(adapter).cancel_task("../list?x=1 y/#") is True
    assert adapter.requests[0].url == BASE + "/mj/task/..%2Flist%3Fx%3D1%20y%2F%23/cancel"
    assert adapter.requests[0].headers["Authorization"] == "Bearer K"


@pytest.mark.parametrize("status", [404, 405, 501])
def test_cancel_task_is_none_where_the_api_does_not_expose_it(status: int) -> None:
    assert client(RecordingAdapter([Reply(status, b"<html>Not Found</html>")])).cancel_task("1") is None


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (Reply(500, b""), "POST /mj/task/1/cancel answered HTTP 500"),
        (Reply(502, b"<html>Bad Gateway</html>"), "POST /mj/task/1/cancel answered HTTP 502"),
        (Reply(401, b""), "POST /mj/task/1/cancel answered HTTP 401"),
        (Reply(403, b""), "POST /mj/task/1/cancel answered HTTP 403"),
        (Reply.json({"description": "演示模式，禁止操作"}, status=400), "answered HTTP 400: 演示模式，禁止操作"),
        (Reply(302, b"", {"Location": "https://elsewhere.example/"}), "POST /mj/task/1/cancel answered HTTP 302"),
        (requests.ConnectionError("refused"), "POST /mj/task/1/cancel failed: ConnectionError"),
        (requests.ReadTimeout("slow"), "POST /mj/task/1/cancel failed: ReadTimeout"),
    ],
)
def test_cancel_task_failures_raise_upstream_error_without_the_key_or_base(
    answer: Reply | Exception, fragment: str, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = RecordingAdapter([answer])
    with pytest.raises(UpstreamError) as raised:
        client(adapter, key="sk-secret-cancel-key").cancel_task("1")
    assert fragment in str(raised.value)
    assert BASE not in str(raised.value) and "sk-secret-cancel-key" not in str(raised.value)
    assert "sk-secret-cancel-key" not in caplog.text
    assert len(adapter.requests) == 1  # not followed, not retried here
