"""The jobs API over real HTTP on the local stack (moto, the emulator, the functions in workers,
the SQS event source, the IAM and JWT adapters): every route's happy path and error paths, auth
refusals, pagination across pages, idempotency under concurrency, cancel (before and after the
submit), retry, the upload that never comes, and one code path for drop-folder and API jobs.

One stack for the module. The emulator's engine answers a fixed image (no real face swap) and its
callbacks go out one at a time, so every job takes the same steps. Every answer is checked for its
documented shape: the job view's keys, `{"error": {code, message, details}}`, API Gateway's
`{"message"}` for what the gateway itself refuses.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import http.server
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from e2e.conftest import Client
from swapdrop.jobs import iso
from swapdrop.jobs_api.models import BatchResponse, FaceList, FaceUploadResponse, JobList, JobView
from swapdrop_local.auth import api_url, mint_jwt, sign_headers, signed_request
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg, png

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MAX_BYTES = 200_000
RESULT = jpeg((20, 120, 200), size=(64, 48))
FACE = jpeg((200, 40, 40))
JOB_VIEW_KEYS = set(JobView.model_fields)
SUMMARY_KEYS = {
    "jobId",
    "status",
    "face",
    "createdAt",
    "finishedAt",
    "failReason",
    "origin",
    "target",
    "resultKey",
    "links",
}
TERMINAL = {"SUCCESS", "FAILURE", "REJECTED", "CANCELLED"}
_colors = itertools.count(1)


def unique_image() -> bytes:
    """A target no other test uses (the submitter refuses a target equal to its face)."""
    n = next(_colors)
    return jpeg(((n * 37) % 256, (n * 91) % 256, (n * 53 + 7) % 256))


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- the stack and its clients ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="http-api-secret-key",
        reconcile_interval=5.0,
        parameters={"ReconcileQuietSeconds": "2", "MaxImageBytes": str(MAX_BYTES)},
        emulator={"step_delay": 0.1, "engine": lambda _source, _target: RESULT, "callback_workers": 1},
        submit_concurrency=1,
    )
    with RunningStack(options) as running:
        yield running


class Http:
    """A client of the running stack: SigV4 to the IAM API, bearer tokens to the JWT API, boto3 beside."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.info = stack.info()
        self.aws = Client(self.info)

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return signed_request(self.info, method, path, json_body=body, **kwargs)

    def raw(self, method: str, path: str, body: Any = None) -> requests.Response:
        """Signed, and sent byte for byte: requests would decode '%2E' to '.' after the signing."""
        url = api_url(self.info, path)
        data = json.dumps(body).encode() if body is not None else b""
        headers = sign_headers(self.info["api_credentials"], method, url, {"Content-Type": "application/json"}, data)
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request(method, parts.path, body=data or None, headers=headers)
            reply = connection.getresponse()
            answer = requests.Response()
            answer.status_code, answer._content = reply.status, reply.read()
            answer.headers.update(reply.getheaders())
            return answer
        finally:
            connection.close()

    def jwt(self, token: str, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        url = self.info["jwt_api_url"].rstrip("/") + path
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, url, json=body, headers=headers, timeout=35, **kwargs)

    def token(self, sub: str, ttl: int = 600) -> str:
        return mint_jwt(self.info, sub, ttl_seconds=ttl)

    # --- helpers on top of the routes

    def face(self, face: str, data: bytes = FACE, content_type: str = "image/jpeg") -> dict[str, Any]:
        answer = self("PUT", f"/faces/{face}", {"contentType": content_type})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"face", "key", "upload"} and FaceUploadResponse.model_validate(body)
        assert upload(body["upload"], data, content_type).status_code in (200, 201, 204)
        return body

    def create(self, face: str, target: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        answer = self("POST", "/jobs", {"face": face, "target": target}, **kwargs)
        assert answer.status_code == 202, answer.text
        return job_view(answer.json())

    def s3_target(self, data: bytes | None = None, ext: str = "jpg") -> str:
        key = f"incoming/{uuid.uuid4().hex}.{ext}"
        self.aws.put(key, data if data is not None else unique_image())
        return key

    def finished(self, job_id: str, wait: int = 20) -> dict[str, Any]:
        """GET ?wait= until terminal (one call should do; a few at most on a slow machine)."""
        deadline = time.monotonic() + 60
        while True:
            answer = self("GET", f"/jobs/{job_id}", params={"wait": wait})
            assert answer.status_code == 200, answer.text
            view = job_view(answer.json())
            if view["status"] in TERMINAL or time.monotonic() > deadline:
                return view

    def record(self, job_id: str) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.aws.dynamodb.get_item(
            TableName=self.info["jobs_table"], Key={"jobId": {"S": job_id}}, ConsistentRead=True
        )["Item"]
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}

    def list_all(self, **params: Any) -> list[dict[str, Any]]:
        found, cursor = [], None
        while True:
            answer = self("GET", "/jobs", params={**params, **({"cursor": cursor} if cursor else {})})
            assert answer.status_code == 200, answer.text
            page = job_list(answer.json())
            found += page["jobs"]
            cursor = page["cursor"]
            if not cursor:
                return found


@pytest.fixture(scope="module")
def api(stack: RunningStack) -> Http:
    return Http(stack)


@pytest.fixture(scope="module")
def face(api: Http) -> str:
    """A face every swap that should succeed uses."""
    face = name("ada")
    api.face(face)
    return face


@pytest.fixture(scope="module")
def image_server() -> Iterator[dict[str, Any]]:
    """A loopback HTTP server for URL targets: path -> (status, content type, bytes); it records requests."""
    served: dict[str, tuple[int, str, bytes]] = {}
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            status, content_type, data = served.get(self.path.split("?")[0], (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "served": served, "requested": requested}
    server.shutdown()
    server.server_close()


# --- shapes -----------------------------------------------------------------------------------


def upload(form: dict[str, Any], data: bytes, content_type: str) -> requests.Response:
    """The presigned POST as a browser or requests sends it: the form's fields, then the file."""
    return requests.post(form["url"], data=form["fields"], files={"file": ("x", data, content_type)}, timeout=30)


def job_view(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == JOB_VIEW_KEYS, body
    JobView.model_validate(body)
    job_id = body["jobId"]
    links = {"self": f"/jobs/{job_id}", "cancel": f"/jobs/{job_id}/cancel", "retry": f"/jobs/{job_id}/retry"}
    assert body["links"] == links
    assert set(body["target"]) == {"key", "url"}
    return body


def job_list(body: Any) -> dict[str, Any]:
    assert set(body) == {"jobs", "cursor"}, body
    JobList.model_validate(body)
    for summary in body["jobs"]:
        assert set(summary) == SUMMARY_KEYS, summary
    return body


def error(answer: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if code == "invalid_request":
        details = body["error"]["details"]
        assert isinstance(details, list) and details and all(set(d) == {"loc", "msg"} for d in details), body
    return body["error"]


def gateway_refusal(answer: requests.Response, status: int) -> str:
    """What API Gateway itself answers (no function involved): {"message": ...}."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert set(body) == {"message"}, body
    return body["message"]


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


# --- health and auth ------------------------------------------------------------------------


def test_health_is_open_and_shows_only_version_and_key_state(api: Http) -> None:
    answer = requests.get(api.info["api_url"] + "/health", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"version", "apiKeySet"} and body["apiKeySet"] is True and body["version"]


def test_unsigned_wrongly_signed_and_expired_requests_are_refused(api: Http) -> None:
    url = api_url(api.info, "/jobs")
    gateway_refusal(requests.get(url, timeout=10), 403)
    wrong = {**api.info["api_credentials"], "secret_access_key": "not-the-secret-key"}
    gateway_refusal(requests.get(url, headers=sign_headers(wrong, "GET", url), timeout=10), 403)
    stale = datetime.now(UTC) - timedelta(minutes=20)
    expired = sign_headers(api.info["api_credentials"], "GET", url, at=stale)
    gateway_refusal(requests.get(url, headers=expired, timeout=10), 403)
    assert api("GET", "/jobs").status_code == 200  # the same request, signed now


def test_an_expired_jwt_is_401_and_a_valid_one_passes(api: Http) -> None:
    assert gateway_refusal(api.jwt(api.token(name("user"), ttl=-120), "GET", "/jobs"), 401) == "Unauthorized"
    gateway_refusal(requests.get(api.info["jwt_api_url"] + "/jobs", timeout=10), 401)
    assert job_list(api.jwt(api.token(name("user")), "GET", "/jobs").json())["jobs"] == []


# --- faces ----------------------------------------------------------------------------------


def test_a_face_is_uploaded_listed_and_deleted(api: Http) -> None:
    face = name("grace")
    put = api.face(face)
    assert put["key"] == f"faces/{face}.jpg" and put["upload"]["maxBytes"] == MAX_BYTES
    assert put["upload"]["fields"]["key"] == put["key"]
    listed = FaceList.model_validate(api("GET", "/faces").json())
    (entry,) = [f for f in listed.faces if f.face == face]
    assert (entry.key, entry.bytes) == (f"faces/{face}.jpg", len(FACE))
    assert abs(datetime.fromisoformat(entry.lastModified) - datetime.now(UTC)) < timedelta(minutes=5)
    user = api.token(name("user"))
    error(api.jwt(user, "DELETE", f"/faces/{face}"), 403, "forbidden")  # app users use faces, never change them
    error(api.jwt(user, "PUT", f"/faces/{face}", {"contentType": "image/png"}), 403, "forbidden")
    assert face in {f["face"] for f in api.jwt(user, "GET", "/faces").json()["faces"]}
    deleted = api("DELETE", f"/faces/{face}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    error(api("DELETE", f"/faces/{face}"), 404, "not_found")
    assert face not in {f["face"] for f in api("GET", "/faces").json()["faces"]}


@pytest.mark.parametrize(
    "segment",
    ["%2E%2E", "a%2Fb", "bad%01name", "rtl%E2%80%AEgpj", "x" * 300],
    ids=["dot-dot", "encoded-slash", "control-char", "text-direction", "300-chars"],
)
def test_bad_face_names_are_400(api: Http, segment: str) -> None:
    refused = error(api.raw("PUT", f"/faces/{segment}", {"contentType": "image/jpeg"}), 400, "invalid_request")
    assert len(refused["message"]) < 400  # never the whole input echoed back
    error(api.raw("DELETE", f"/faces/{segment}"), 400, "invalid_request")


def test_a_face_upload_form_needs_an_image_type(api: Http) -> None:
    for body in ({"contentType": "image/gif"}, {"contentType": "text/html"}, {}, {"contentType": "image/jpeg", "x": 1}):
        refused = error(api("PUT", "/faces/typed", body), 400, "invalid_request")
        assert refused["details"][0]["loc"][0] == "body", refused


def test_a_face_under_another_extension_is_409(api: Http) -> None:
    face = name("dup")
    api.aws.put(f"faces/{face}.png", png((1, 2, 3)))
    conflict = error(api("PUT", f"/faces/{face}", {"contentType": "image/jpeg"}), 409, "face_conflict")
    assert conflict["details"] == {"existing": [f"faces/{face}.png"]}
    assert api("PUT", f"/faces/{face}", {"contentType": "image/png"}).status_code == 200  # the same type: fine


# --- creating jobs: each target kind to SUCCESS -----------------------------------------------


def _downloaded_result(view: dict[str, Any]) -> bytes:
    result = view["result"]
    assert result is not None, f"SUCCESS without its result: {view}"
    fetched = requests.get(result["url"], timeout=10)
    assert fetched.status_code == 200
    assert (result["bytes"], result["contentType"]) == (len(fetched.content), "image/jpeg")
    return fetched.content


def test_an_upload_target_goes_from_awaiting_upload_to_success(api: Http, face: str) -> None:
    created = api.create(face, {"upload": {"contentType": "image/jpeg"}}, headers={})
    job_id, form = created["jobId"], created["upload"]
    assert len(job_id) == 32 and created["status"] == "AWAITING_UPLOAD"
    assert created["target"] == {"key": f"uploads/{job_id}/target.jpg", "url": None}
    assert form["fields"]["key"] == created["target"]["key"] and form["maxBytes"] == MAX_BYTES
    assert job_view(api("GET", f"/jobs/{job_id}").json())["status"] == "AWAITING_UPLOAD"
    assert upload(form, unique_image(), "image/jpeg").status_code == 204
    waited = api("GET", f"/jobs/{job_id}", params={"wait": 20})  # one call: it answers once the job is done
    done = job_view(waited.json())
    assert (done["status"], done["progress"], done["face"]) == ("SUCCESS", 100, face)
    assert done["upload"] is None and done["finishedAt"]
    assert done["result"]["key"] == f"results/{face}/jobs/{job_id}.jpg"
    assert _downloaded_result(done) == RESULT
    steps = [(t["from"], t["to"]) for t in api.record(job_id)["history"]]
    assert steps[0] == ("AWAITING_UPLOAD", "PENDING") and steps[-1][1] == "SUCCESS", steps


def test_an_s3_key_target_reaches_success(api: Http, face: str) -> None:
    key = api.s3_target()
    created = api.create(face, {"s3Key": key}, headers={})
    assert (created["status"], created["target"], created["upload"]) == ("PENDING", {"key": key, "url": None}, None)
    done = api.finished(created["jobId"])
    assert done["status"] == "SUCCESS" and _downloaded_result(done) == RESULT
    record = api.record(created["jobId"])
    assert record["targetVersionId"] and (record["origin"], record["requesterKind"]) == ("api", "iam")


def test_a_url_target_on_loopback_is_fetched_kept_and_swapped(
    api: Http, face: str, image_server: dict[str, Any]
) -> None:
    """The local stack allows private result URLs (ALLOW_PRIVATE_RESULT_URLS) and so private targets too."""
    data = unique_image()
    image_server["served"]["/t.jpg"] = (200, "image/jpeg", data)
    url = f"{image_server['url']}/t.jpg?sig=secret"
    created = api.create(face, {"url": url}, headers={})
    job_id = created["jobId"]
    assert created["target"] == {"key": f"jobs/{job_id}/target", "url": url}
    done = api.finished(job_id)
    assert done["status"] == "SUCCESS", done["failReason"]
    assert _downloaded_result(done) == RESULT
    assert api.aws.read(f"jobs/{job_id}/target") == data  # kept as the job's input
    assert "/t.jpg?sig=secret" in image_server["requested"]


def test_a_url_target_that_cannot_be_fetched_ends_rejected_with_why(
    api: Http, face: str, image_server: dict[str, Any]
) -> None:
    url = f"{image_server['url']}/missing.jpg?token=abc"
    done = api.finished(api.create(face, {"url": url})["jobId"])
    assert done["status"] == "REJECTED" and done["result"] is None
    assert "could not fetch the target" in done["failReason"] and "/missing.jpg" in done["failReason"]
    assert "token=abc" not in done["failReason"]


def test_an_unknown_face_ends_rejected(api: Http) -> None:
    missing = name("nobody")
    done = api.finished(api.create(missing, {"s3Key": api.s3_target()})["jobId"])
    assert done["status"] == "REJECTED" and f"no face named '{missing}'" in done["failReason"]


# --- creating jobs: refusals ----------------------------------------------------------------


@pytest.fixture(scope="module")
def oversize_key(api: Http) -> str:
    return api.s3_target(b"\xff\xd8" + b"0" * MAX_BYTES)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ({"s3Key": "incoming/a.jpg", "url": "http://127.0.0.1/a.jpg"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"ftp": "x"}, "exactly one of"),
        ("incoming/a.jpg", "exactly one of"),
        ({"upload": {"contentType": "image/gif"}}, "image/jpeg"),
        ({"s3Key": "incoming/never-uploaded.jpg"}, "is not in the bucket"),
        ({"s3Key": "incoming/notes.txt"}, "is not an image the API takes"),
        ({"s3Key": "OVERSIZE"}, "over the 200,000-byte limit"),
        ({"s3Key": "incoming/../faces/x.jpg"}, ".."),
        ({"url": "ftp://127.0.0.1/a.jpg"}, "is not http or https"),
        ({"url": "http://user:pass@127.0.0.1/a.jpg"}, "credentials"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "private, loopback or reserved"),
        ({"url": "http://[::ffff:169.254.169.254]/x"}, "private, loopback or reserved"),
        ({"url": "not a url"}, "http"),
    ],
    ids=[
        "two-kinds",
        "no-kind",
        "unknown-kind",
        "not-an-object",
        "upload-gif",
        "s3key-missing",
        "s3key-not-image",
        "s3key-oversize",
        "s3key-dot-dot",
        "url-ftp",
        "url-credentials",
        "url-metadata-address",
        "url-mapped-metadata-address",
        "url-garbage",
    ],
)
def test_bad_targets_are_400_and_create_nothing(
    api: Http, face: str, oversize_key: str, target: Any, words: str
) -> None:
    if target == {"s3Key": "OVERSIZE"}:
        target = {"s3Key": oversize_key}
    before = len(api.list_all(face=face))
    refused = error(api("POST", "/jobs", {"face": face, "target": target}), 400, "invalid_request")
    assert words in refused["message"], refused
    assert refused["details"][0]["loc"][:2] == ["body", "target"], refused
    assert len(api.list_all(face=face)) == before


@pytest.mark.parametrize("bad", ["a/b", "..", "x" * 129, "", "tab\there"])
def test_bad_face_names_on_post_jobs_are_400(api: Http, bad: str) -> None:
    refused = error(api("POST", "/jobs", {"face": bad, "target": {"s3Key": "incoming/a.jpg"}}), 400, "invalid_request")
    assert refused["details"][0]["loc"] == ["body", "face"], refused


def test_unknown_jobs_and_routes_bad_json_and_huge_bodies(api: Http) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    error(api("GET", f"/jobs/{unknown}"), 404, "not_found")
    error(api("POST", f"/jobs/{unknown}/cancel"), 404, "not_found")
    error(api("POST", f"/jobs/{unknown}/retry"), 404, "not_found")
    error(api("GET", f"/jobs/{'f' * 3000}"), 404, "not_found")
    error(
        api("POST", "/jobs", data=b'{"face": "ada", "target": ', headers={"Content-Type": "application/json"}),
        400,
        "invalid_request",
    )
    error(api("POST", "/jobs", [1, 2]), 400, "invalid_request")
    huge = {"face": "ada", "target": {"s3Key": "incoming/a.jpg"}, "metadata": {"k": "v" * 300_000}}
    too_large = error(api("POST", "/jobs", huge), 413, "payload_too_large")
    assert len(too_large["message"]) < 200
    assert gateway_refusal(api("GET", "/nothing-here"), 404) == "Not Found"
    error(api("GET", "/jobs", params={"limit": 101}), 400, "invalid_request")
    error(api("GET", f"/jobs/{unknown}", params={"wait": 26}), 400, "invalid_request")


# --- batch ----------------------------------------------------------------------------------


def test_a_batch_answers_one_entry_per_target_in_order(api: Http) -> None:
    batch_face = name("batch")  # no such face: the jobs end REJECTED without reaching the emulator
    good = [api.s3_target() for _ in range(3)]
    targets = [{"s3Key": good[0]}, {"s3Key": "incoming/none.jpg"}, {"s3Key": good[1]}, {"bogus": 1}, {"s3Key": good[2]}]
    answer = api("POST", "/jobs", {"face": batch_face, "targets": targets, "metadata": {"order": "B-7"}})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"jobs"} and BatchResponse.model_validate(body)
    assert [entry["index"] for entry in body["jobs"]] == [0, 1, 2, 3, 4]
    for index in (0, 2, 4):
        entry = body["jobs"][index]
        assert set(entry) == {"index", "job", "error"} and entry["error"] is None
        view = job_view(entry["job"])
        assert (view["target"]["key"], view["metadata"], view["status"]) == (
            targets[index]["s3Key"],
            {"order": "B-7"},
            "PENDING",
        )
    for index, words in ((1, "is not in the bucket"), (3, "exactly one of")):
        entry = body["jobs"][index]
        assert entry["job"] is None and set(entry["error"]) == {"code", "message", "details"}
        assert entry["error"]["code"] == "invalid_request" and words in entry["error"]["message"]
        assert entry["error"]["details"][0]["loc"][:3] == ["body", "targets", index]
    listed = api.list_all(face=batch_face)
    assert sorted(j["jobId"] for j in listed) == sorted(body["jobs"][i]["job"]["jobId"] for i in (0, 2, 4))


# --- listing --------------------------------------------------------------------------------


def test_lists_page_newest_first_with_filters_and_signed_cursors(api: Http) -> None:
    pager = name("pager")  # no such face: the jobs end REJECTED quickly; only the listing matters
    key = api.s3_target()
    made = [api.create(pager, {"s3Key": key}) for _ in range(25)]
    expected = [j["jobId"] for j in sorted(made, key=lambda j: (j["createdAt"], j["jobId"]), reverse=True)]
    pages, cursor = [], None
    while True:
        params = {"face": pager, "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = job_list(api("GET", "/jobs", params=params).json())
        pages.append([j["jobId"] for j in page["jobs"]])
        cursor = page["cursor"]
        if cursor is None:
            break
        last_cursor = cursor
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [job_id for p in pages for job_id in p] == expected  # newest first, no duplicates, no gaps
    # the cursor is the API's own: tampered, or reused with other filters, it is refused
    tampered = last_cursor[:-3] + ("AAA" if not last_cursor.endswith("AAA") else "BBB")
    error(api("GET", "/jobs", params={"face": pager, "limit": 10, "cursor": tampered}), 400, "invalid_request")
    error(api("GET", "/jobs", params={"face": "other", "limit": 10, "cursor": last_cursor}), 400, "invalid_request")
    error(api("GET", "/jobs", params={"limit": 10, "cursor": "not-a-cursor"}), 400, "invalid_request")
    # filters: status (once they have all ended), face + status, since / until
    until(lambda: len(api.list_all(face=pager, status="REJECTED")) == 25, 60, "the pager's jobs end REJECTED")
    assert api.list_all(face=pager, status="PENDING") == []
    rejected = api.list_all(status="REJECTED", limit=7)
    assert {j["status"] for j in rejected} == {"REJECTED"} and set(expected) <= {j["jobId"] for j in rejected}
    assert [j["createdAt"] for j in rejected] == sorted((j["createdAt"] for j in rejected), reverse=True)
    by_time = sorted(made, key=lambda j: (j["createdAt"], j["jobId"]))
    since = by_time[15]["createdAt"]
    newer = api.list_all(face=pager, since=since, limit=4)
    assert [j["jobId"] for j in newer] == [j for j in expected if _created(made, j) >= since]
    older = api.list_all(face=pager, until=since, limit=4)
    assert [j["jobId"] for j in older] == [j for j in expected if _created(made, j) < since]
    everything = api.list_all(limit=100)
    assert set(expected) <= {j["jobId"] for j in everything}
    assert len({j["jobId"] for j in everything}) == len(everything)
    error(api("GET", "/jobs", params={"status": "DONE"}), 400, "invalid_request")
    error(api("GET", "/jobs", params={"since": "yesterday"}), 400, "invalid_request")


def _created(made: list[dict[str, Any]], job_id: str) -> str:
    return next(j["createdAt"] for j in made if j["jobId"] == job_id)


# --- idempotency ----------------------------------------------------------------------------


def test_twenty_concurrent_posts_with_one_key_make_one_job_and_twenty_equal_answers(api: Http) -> None:
    once = name("once")
    body = {"face": once, "target": {"upload": {"contentType": "image/png"}}, "metadata": {"n": "1"}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api("POST", "/jobs", body, headers=key), range(20)))
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers if a.status_code != 202]
    distinct = sorted({a.content for a in answers})
    assert len(distinct) == 1, [d.decode() for d in distinct]  # byte for byte: the upload form too
    job_view(answers[0].json())
    assert len(api.list_all(face=once)) == 1
    again = api("POST", "/jobs", body, headers=key)
    assert (again.status_code, again.content) == (202, answers[0].content)
    other = {**body, "metadata": {"n": "2"}}
    error(api("POST", "/jobs", other, headers=key), 422, "idempotency_key_reused")
    assert len(api.list_all(face=once)) == 1
    fresh = api("POST", "/jobs", other, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 202 and len(api.list_all(face=once)) == 2


# --- cancel and retry -------------------------------------------------------------------------


def _queue_drained(api: Http) -> bool:
    sqs = api.stack.stack.client("sqs")
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=api.info["queue_url"], AttributeNames=names)["Attributes"]
    return all(attributes[n] == "0" for n in names)


def test_a_pending_job_cancelled_is_never_sent(api: Http, face: str) -> None:
    emulator = api.stack.emulator
    # The one submit worker is held by a swap the emulator sits on (and then refuses): jobs queued
    # behind it stay PENDING, not yet taken.
    emulator.faults.add("timeout=8", once=True)
    blocker = api.create(face, {"s3Key": api.s3_target()})
    until(lambda: not emulator.faults.next_submits, 20, "the blocker's submit reaches the emulator")
    queued = api.create(face, {"s3Key": api.s3_target()})
    cancelled = api("POST", f"/jobs/{queued['jobId']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    view = job_view(cancelled.json())
    assert (view["status"], view["finishedAt"] is not None) == ("CANCELLED", True)
    assert api("POST", f"/jobs/{blocker['jobId']}/cancel").status_code == 200  # its retry would only be noise
    until(lambda: _queue_drained(api), 40, "the queued job's message is taken and dropped")
    states = {task.state for task in list(emulator.tasks.values())}
    assert queued["jobId"] not in states and blocker["jobId"] not in states
    record = api.record(queued["jobId"])
    assert (record["status"], record.get("taskId"), record.get("attempts", 0)) == ("CANCELLED", None, 0)
    assert [(t["from"], t["to"], t["via"]) for t in record["history"]] == [("PENDING", "CANCELLED", "api")]
    finished = error(api("POST", f"/jobs/{queued['jobId']}/cancel"), 409, "job_finished")
    assert finished["details"] == {"status": "CANCELLED"}


def test_a_submitted_job_is_cancelled_upstream_and_a_late_success_changes_nothing(api: Http, face: str) -> None:
    emulator = api.stack.emulator
    emulator.faults.add("stall", once=True)  # the task stops at IN_PROGRESS 45% until driven
    created = api.create(face, {"s3Key": api.s3_target()})
    job_id = created["jobId"]

    def running() -> dict[str, Any] | None:
        view = job_view(api("GET", f"/jobs/{job_id}").json())
        return view if view["status"] == "IN_PROGRESS" else None

    assert until(running, 30, "the stalled swap reports IN_PROGRESS")["progress"] == 45
    task_id = api.record(job_id)["taskId"]
    busy = error(api("POST", f"/jobs/{job_id}/retry"), 409, "not_retryable")
    assert busy["details"] == {"status": "IN_PROGRESS"}
    cancelled = job_view(api("POST", f"/jobs/{job_id}/cancel").json())
    assert cancelled["status"] == "CANCELLED"
    assert emulator.cancel_requests.count(task_id) == 1
    until(lambda: emulator.task(task_id).status == "FAILURE", 10, "the emulator's task ends")
    assert emulator.task(task_id).fail_reason == "取消任务"
    # a late SUCCESS for it (the race a cancel can lose upstream) is ignored
    late = {**emulator.snapshot(task_id), "status": "SUCCESS", "progress": "100%", "failReason": None}
    late["imageUrl"] = f"{emulator.url}/nothing.png"
    assert emulator.callback(task_id, snapshot=late).status_code < 500
    after = job_view(api("GET", f"/jobs/{job_id}").json())
    assert (after["status"], after["result"], after["failReason"]) == ("CANCELLED", None, cancelled["failReason"])
    assert not api.aws.s3.list_objects_v2(Bucket=api.info["bucket"], Prefix=f"results/{face}/jobs/{job_id}").get(
        "Contents"
    )
    finished = error(api("POST", f"/jobs/{job_id}/cancel"), 409, "job_finished")
    assert finished["details"] == {"status": "CANCELLED"}
    # a cancelled job can be retried, once: the new job has the same inputs and runs
    retried = api("POST", f"/jobs/{job_id}/retry")
    assert retried.status_code == 202, retried.text
    new = job_view(retried.json())
    assert (new["retryOf"], new["target"], new["face"]) == (job_id, created["target"], face)
    assert job_view(api("GET", f"/jobs/{job_id}").json())["retriedBy"] == new["jobId"]
    again = error(api("POST", f"/jobs/{job_id}/retry"), 409, "already_retried")
    assert again["details"] == {"retriedBy": new["jobId"]}
    done = api.finished(new["jobId"])
    assert done["status"] == "SUCCESS" and _downloaded_result(done) == RESULT


def test_a_rejected_job_is_retried_once_and_linked_both_ways(api: Http, image_server: dict[str, Any]) -> None:
    missing = name("later")
    rejected = api.finished(api.create(missing, {"s3Key": api.s3_target()})["jobId"])
    assert rejected["status"] == "REJECTED"
    api.face(missing)  # the face arrives: the retry now succeeds
    new = job_view(api("POST", f"/jobs/{rejected['jobId']}/retry").json())
    assert (new["status"], new["retryOf"], new["retriedBy"]) == ("PENDING", rejected["jobId"], None)
    assert job_view(api("GET", f"/jobs/{rejected['jobId']}").json())["retriedBy"] == new["jobId"]
    error(api("POST", f"/jobs/{rejected['jobId']}/retry"), 409, "already_retried")
    done = api.finished(new["jobId"])
    assert done["status"] == "SUCCESS", done["failReason"]
    error(api("POST", f"/jobs/{new['jobId']}/retry"), 409, "not_retryable")  # SUCCESS is not retried
    error(api("POST", f"/jobs/{new['jobId']}/cancel"), 409, "job_finished")


# --- who sees what --------------------------------------------------------------------------


def test_a_jwt_caller_sees_only_its_own_jobs(api: Http) -> None:
    alice, bob = api.token(name("alice")), api.token(name("bob"))
    created = api.jwt(alice, "POST", "/jobs", {"face": "ada", "target": {"upload": {"contentType": "image/jpeg"}}})
    assert created.status_code == 202, created.text
    job_id = job_view(created.json())["jobId"]
    operator_job = api.create(name("ops"), {"upload": {"contentType": "image/jpeg"}})["jobId"]
    for method, path in (
        ("GET", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("POST", f"/jobs/{job_id}/retry"),
    ):
        refused = error(api.jwt(bob, method, path), 404, "not_found")
        assert job_id in refused["message"]
    error(api.jwt(alice, "GET", f"/jobs/{operator_job}"), 404, "not_found")
    assert job_list(api.jwt(bob, "GET", "/jobs").json())["jobs"] == []
    mine = job_list(api.jwt(alice, "GET", "/jobs").json())["jobs"]
    assert [j["jobId"] for j in mine] == [job_id]
    assert job_list(api.jwt(alice, "GET", "/jobs", params={"face": "ada"}).json())["jobs"][0]["jobId"] == job_id
    assert job_id in {j["jobId"] for j in api.list_all(limit=100)}  # operators see every job
    record = api.record(job_id)
    assert (record["requesterKind"], record["origin"]) == ("jwt", "api")
    assert job_view(api.jwt(alice, "POST", f"/jobs/{job_id}/cancel").json())["status"] == "CANCELLED"
    assert job_view(api("GET", f"/jobs/{job_id}").json())["status"] == "CANCELLED"


# --- one code path --------------------------------------------------------------------------

BY_DESIGN = {
    # what each entrance sets: the API's own fields, the target's key and the event that named it
    "jobId",
    "targetKey",
    "targetVersionId",
    "targetSequencer",
    "targetEventTime",
    "origin",
    "resultBase",
    "requestedBy",
    "requesterKind",
    "metadata",
    "uploadExpiresAt",
    # what follows from those: the task the upstream gave each, the result's key and version
    "taskId",
    "imageUrl",
    "resultKey",
    "resultVersionId",
    # when: each job has its own moments, and the list-index keys derive from its id and time
    "createdAt",
    "updatedAt",
    "submittedAt",
    "finishedAt",
    "listSort",
    "listAll",
    "listStatus",
    "listFace",
    "history",
    "version",
}


def test_a_drop_folder_job_and_an_api_job_take_the_same_path(api: Http, face: str) -> None:
    target = unique_image()
    inbox_key = f"inbox/{face}/same.jpg"
    api.aws.put(inbox_key, target)
    created = api.create(face, {"upload": {"contentType": "image/jpeg"}})
    assert upload(created["upload"], target, "image/jpeg").status_code == 204
    from_api = api.finished(created["jobId"])
    inbox_job = api.aws.wait_for(inbox_key)
    from_inbox = api.finished(inbox_job.jobId)
    assert from_api["status"] == from_inbox["status"] == "SUCCESS"
    assert _downloaded_result(from_api) == _downloaded_result(from_inbox) == RESULT
    api_record, inbox_record = api.record(created["jobId"]), api.record(inbox_job.jobId)
    same = {k: v for k, v in inbox_record.items() if k not in BY_DESIGN}
    assert {k: v for k, v in api_record.items() if k not in BY_DESIGN} == same
    assert same["sourceKey"] == f"faces/{face}.jpg" and same["attempts"] == 1
    # Who records SUBMITTED first, the submit's answer or the task's own SUBMITTED callback, is a race
    # either job may run either way; the callback first costs one write more (the submit's answer then
    # only adds the lease's end and the member).
    submitted_via = lambda record: next(  # noqa: E731
        t["via"] for t in record["history"] if (t["from"], t["to"]) == ("PENDING", "SUBMITTED")
    )
    steps = lambda record: [  # noqa: E731
        (t["from"], t["to"], "submit|callback" if (t["from"], t["to"]) == ("PENDING", "SUBMITTED") else t["via"])
        for t in record["history"]
    ]
    assert {submitted_via(api_record), submitted_via(inbox_record)} <= {"submit", "callback"}
    assert steps(api_record) == [("AWAITING_UPLOAD", "PENDING", "upload"), *steps(inbox_record)]
    assert steps(inbox_record)[0] == ("PENDING", "SUBMITTED", "submit|callback")
    raced = lambda record: int(submitted_via(record) == "callback")  # noqa: E731
    # the API job's two more writes: the upload's binding, and its lease (a drop-folder job is created taken)
    assert api_record["version"] - raced(api_record) == inbox_record["version"] - raced(inbox_record) + 2
    assert (inbox_record.get("origin"), api_record["origin"]) == (None, "api")
    assert (inbox_record["resultKey"], api_record["resultKey"]) == (
        f"results/{face}/same.jpg",
        f"results/{face}/jobs/{created['jobId']}.jpg",
    )
    # the public views differ only where the records do
    public = {"jobId", "createdAt", "updatedAt", "finishedAt", "target", "result", "links", "origin"}
    assert {k: v for k, v in from_api.items() if k not in public} == {
        k: v for k, v in from_inbox.items() if k not in public
    }
    assert (from_inbox["origin"], from_api["origin"]) == ("inbox", "api")


# --- the upload that never comes ------------------------------------------------------------


def test_an_upload_that_never_arrives_ends_failure_after_the_form_expires(api: Http, face: str) -> None:
    created = api.create(face, {"upload": {"contentType": "image/png"}})
    job_id = created["jobId"]
    api.stack.reconcile_now()
    assert job_view(api("GET", f"/jobs/{job_id}").json())["status"] == "AWAITING_UPLOAD"  # not yet
    # as if the form had been handed out an hour and a quarter ago and nothing had happened since
    expired = iso(datetime.now(UTC) - timedelta(hours=1))
    api.aws.dynamodb.update_item(
        TableName=api.info["jobs_table"],
        Key={"jobId": {"S": job_id}},
        UpdateExpression="SET uploadExpiresAt = :t, updatedAt = :u",
        ExpressionAttributeValues={":t": {"S": expired}, ":u": {"S": iso(datetime.now(UTC) - timedelta(minutes=75))}},
    )
    api.stack.reconcile_now()
    view = job_view(api("GET", f"/jobs/{job_id}").json())
    assert view["status"] == "FAILURE", view
    assert view["failReason"] == f"target never uploaded: the upload form expired at {expired}"
    error(api("POST", f"/jobs/{job_id}/retry"), 409, "not_retryable")
    assert upload(created["upload"], png((9, 9, 9)), "image/png").status_code == 204  # too late: starts nothing
    until(lambda: _queue_drained(api), 30, "the late upload's notification is taken")
    assert job_view(api("GET", f"/jobs/{job_id}").json())["status"] == "FAILURE"


# --- more retries, races and pages -----------------------------------------------------------


def test_a_url_job_whose_fetch_failed_fetches_again_on_retry(
    api: Http, face: str, image_server: dict[str, Any]
) -> None:
    path = f"/{uuid.uuid4().hex}.jpg"
    url = image_server["url"] + path
    failed = api.finished(api.create(face, {"url": url})["jobId"])
    assert failed["status"] == "REJECTED" and "HTTP 404" in failed["failReason"]
    image_server["served"][path] = (200, "image/jpeg", unique_image())
    new = job_view(api("POST", f"/jobs/{failed['jobId']}/retry").json())
    assert new["target"] == {"key": failed["target"]["key"], "url": url}
    done = api.finished(new["jobId"])
    assert done["status"] == "SUCCESS", done["failReason"]
    assert image_server["requested"].count(path) == 2


def test_a_retried_drop_folder_job_gets_an_api_result_key(api: Http) -> None:
    late_face = name("late")
    key = f"inbox/{late_face}/shot.jpg"
    api.aws.put(key, unique_image())
    inbox_job = api.aws.wait_for(key)
    assert inbox_job.status.value == "REJECTED"
    api.face(late_face)
    new = job_view(api("POST", f"/jobs/{inbox_job.jobId}/retry").json())
    assert (new["target"]["key"], new["retryOf"]) == (key, inbox_job.jobId)
    done = api.finished(new["jobId"])
    assert done["status"] == "SUCCESS", done["failReason"]
    assert done["result"]["key"] == f"results/{late_face}/jobs/{new['jobId']}.jpg"
    assert api.record(new["jobId"])["origin"] == "api"


def test_concurrent_retries_of_one_job_make_one_new_job(api: Http) -> None:
    doomed = name("doomed")
    rejected = api.finished(api.create(doomed, {"s3Key": api.s3_target()})["jobId"])
    assert rejected["status"] == "REJECTED"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: api("POST", f"/jobs/{rejected['jobId']}/retry"), range(6)))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 5, [a.text for a in answers]
    winner = next(job_view(a.json()) for a in answers if a.status_code == 202)
    for answer in answers:
        if answer.status_code == 409:
            assert error(answer, 409, "already_retried")["details"] == {"retriedBy": winner["jobId"]}
    assert sorted(j["jobId"] for j in api.list_all(face=doomed)) == sorted([rejected["jobId"], winner["jobId"]])


def test_a_retry_with_an_idempotency_key_is_replayed_not_refused(api: Http) -> None:
    rejected = api.finished(api.create(name("twice"), {"s3Key": api.s3_target()})["jobId"])
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api("POST", f"/jobs/{rejected['jobId']}/retry", headers=key)
    again = api("POST", f"/jobs/{rejected['jobId']}/retry", headers=key)
    assert (first.status_code, again.status_code, again.content) == (202, 202, first.content)


def test_a_cancelled_upload_job_ignores_its_upload(api: Http, face: str) -> None:
    created = api.create(face, {"upload": {"contentType": "image/jpeg"}})
    assert job_view(api("POST", f"/jobs/{created['jobId']}/cancel").json())["status"] == "CANCELLED"
    assert upload(created["upload"], unique_image(), "image/jpeg").status_code == 204
    until(lambda: _queue_drained(api), 30, "the upload's notification is taken")
    record = api.record(created["jobId"])
    assert (record["status"], record.get("taskId"), record.get("attempts", 0)) == ("CANCELLED", None, 0)


def test_faces_page_with_a_cursor(api: Http) -> None:
    for _ in range(3):
        api.face(name("paged"))
    everything = FaceList.model_validate(api("GET", "/faces", params={"limit": 1000}).json()).faces
    seen, cursor = [], None
    while True:
        page = api("GET", "/faces", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert set(page) == {"faces", "cursor"}
        seen += [f["face"] for f in page["faces"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == [f.face for f in everything] and len(seen) >= 3
    error(api("GET", "/faces", params={"cursor": "forged"}), 400, "invalid_request")


def test_a_full_batch_of_a_hundred_from_a_jwt_caller(api: Http) -> None:
    sub, batch_face = name("app-user"), name("hundred")
    token = api.token(sub)
    keys = [api.s3_target(b"\xff\xd8not-really-a-jpeg") for _ in range(3)]
    targets = [{"s3Key": keys[i % 3]} for i in range(98)] + [
        {"upload": {"contentType": "image/webp"}},
        {"url": "ftp://x"},
    ]
    answer = api.jwt(token, "POST", "/jobs", {"face": batch_face, "targets": targets})
    assert answer.status_code == 202, answer.text[:500]
    entries = BatchResponse.model_validate(answer.json()).jobs
    assert [e.index for e in entries] == list(range(100))
    assert [e.job is not None for e in entries] == [True] * 99 + [False]
    assert entries[98].job.upload is not None and entries[98].job.status.value == "AWAITING_UPLOAD"
    mine = [j["jobId"] for j in job_list(api.jwt(token, "GET", "/jobs", params={"limit": 100}).json())["jobs"]]
    assert sorted(mine) == sorted(e.job.jobId for e in entries[:99])
    too_many = api.jwt(token, "POST", "/jobs", {"face": batch_face, "targets": [*targets, {"s3Key": keys[0]}]})
    assert error(too_many, 400, "invalid_request")["details"][0]["loc"][:2] == ["body", "targets"]
    # no such face: the s3Key jobs all end REJECTED; the owner finds them by status (JobsByOwner + filter)
    until(
        lambda: (
            len(job_list(api.jwt(token, "GET", "/jobs", params={"status": "REJECTED", "limit": 100}).json())["jobs"])
            == 98
        ),
        90,
        "the batch's s3Key jobs end REJECTED",
    )


def test_a_face_name_beyond_ascii_works_end_to_end(api: Http) -> None:
    face = f"zoë-{uuid.uuid4().hex[:6]}"
    answer = api.raw("PUT", f"/faces/{quote(face, safe='')}", {"contentType": "image/jpeg"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["face"], body["key"]) == (face, f"faces/{face}.jpg")
    assert upload(body["upload"], FACE, "image/jpeg").status_code == 204
    assert face in {f["face"] for f in api("GET", "/faces", params={"limit": 1000}).json()["faces"]}
    done = api.finished(api.create(face, {"s3Key": api.s3_target()})["jobId"])
    assert done["status"] == "SUCCESS", done["failReason"]
    assert done["result"]["key"] == f"results/{face}/jobs/{done['jobId']}.jpg"
    assert [j["jobId"] for j in api.list_all(face=face)] == [done["jobId"]]
    assert api.raw("DELETE", f"/faces/{quote(face, safe='')}").status_code == 204


def test_a_cancel_with_an_idempotency_key_is_replayed(api: Http) -> None:
    created = api.create(name("keyed"), {"upload": {"contentType": "image/jpeg"}})
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api("POST", f"/jobs/{created['jobId']}/cancel", headers=key)
    again = api("POST", f"/jobs/{created['jobId']}/cancel", headers=key)
    assert (first.status_code, again.status_code, again.content) == (200, 200, first.content)
    error(api("POST", f"/jobs/{created['jobId']}/cancel"), 409, "job_finished")  # without the key: it has ended
