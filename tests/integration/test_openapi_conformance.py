"""api/openapi.yaml is true of the running API: real requests over HTTP to the local stack (IAM API with
SigV4, JWT API with tokens from the local issuer, the callback route), happy and error paths, and every
request/response pair validated with openapi-core. The last test fails if a route, or a status the spec
documents for it, was never seen, so the spec cannot promise what nothing here checks."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from swapdrop_local.auth import mint_jwt, sign_headers
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg

pytestmark = pytest.mark.integration

SPEC_FILE = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_FILE.read_text())
OPENAPI = OpenAPI.from_dict(SPEC)
RESULT = jpeg((30, 160, 90), size=(64, 48))
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    ("POST", "/jobs", "409"): "idempotency_in_progress needs a first request that runs over 10 s; no real request "
    "to POST /jobs does (tests/unit/test_jobs_api_idempotency.py holds one open on purpose)",
}
"""(METHOD, path, status) the spec documents that no request here can provoke, and why."""


def _route_patterns() -> list[tuple[re.Pattern[str], str]]:
    patterns = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in SPEC["paths"]]
    return sorted(patterns, key=lambda item: item[1].count("{"))  # /jobs before /jobs/{jobId}


ROUTES = _route_patterns()


def documented() -> dict[tuple[str, str], set[str]]:
    return {
        (method.upper(), path): set(operation["responses"])
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
    }


@dataclass
class Api:
    """A client of the running stack that checks every exchange against the spec and records it."""

    info: dict[str, Any]
    seen: dict[tuple[str, str], set[str]]

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: str = "sigv4",
        url: str | None = None,
    ) -> requests.Response:
        """`auth`: "sigv4" (IAM API), "none" (IAM API, unsigned), "jwt:<sub>" or "jwt" (no token) on the JWT API.
        `url`: a full URL instead (the callback hook)."""
        base = self.info["jwt_api_url"] if auth.startswith("jwt") else self.info["api_url"]
        if url is None:
            url = base.rstrip("/") + path + ("?" + urlencode(params, quote_via=quote, safe="-_.~") if params else "")
        all_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        data = data or b""
        if auth == "sigv4":
            all_headers = sign_headers(self.info["api_credentials"], method, url, all_headers, data)
        elif auth.startswith("jwt:"):
            all_headers["Authorization"] = "Bearer " + mint_jwt(self.info, auth.removeprefix("jwt:"))
        prepared = requests.Request(method, url, data=data or None, headers=all_headers).prepare()
        with requests.Session() as session:
            response = session.send(prepared, timeout=60)
        self._check(prepared, response)
        return response

    def _check(self, prepared: requests.PreparedRequest, response: requests.Response) -> None:
        raw_path = urlsplit(prepared.url).path
        route = next((path for pattern, path in ROUTES if pattern.match(raw_path)), None)
        assert route is not None, f"{raw_path} is no path of the spec"
        exchange = f"{prepared.method} {raw_path} -> {response.status_code} {response.text[:300]}"
        try:
            OPENAPI.validate_response(RequestsOpenAPIRequest(prepared), RequestsOpenAPIResponse(response))
        except OpenAPIError as error:
            raise AssertionError(f"the answer breaks api/openapi.yaml: {exchange}: {_why(error)}") from None
        if 200 <= response.status_code < 300:
            try:
                OPENAPI.validate_request(RequestsOpenAPIRequest(prepared))
            except OpenAPIError as error:
                raise AssertionError(f"accepted a request the spec refuses: {exchange}: {_why(error)}") from None
        self.seen[(prepared.method or "", route)].add(str(response.status_code))

    def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None


def _why(error: BaseException) -> str:
    causes = [str(error)]
    while error.__cause__ is not None or getattr(error, "schema_errors", None):
        for inner in getattr(error, "schema_errors", None) or []:
            causes.append(f"{list(inner.absolute_path)}: {inner.message}")
        if error.__cause__ is None:
            break
        error = error.__cause__
        causes.append(str(error))
    return " / ".join(causes)[:1500]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="conformance-secret-key",
        reconcile_interval=0,
        emulator={"auto_run": False, "engine": lambda _source, _target: RESULT},
        stack_name="swapdrop-conformance",
    )
    with RunningStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def seen() -> dict[tuple[str, str], set[str]]:
    return defaultdict(set)


@pytest.fixture(scope="module")
def api(stack: RunningStack, seen: dict[tuple[str, str], set[str]]) -> Api:
    return Api(stack.info(), seen)


def _until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)
    return value


def _record(stack: RunningStack, job_id: str) -> dict[str, Any]:
    info = stack.info()
    dynamodb = local_client("dynamodb", info["region"], info["endpoint_url"])
    item = dynamodb.get_item(TableName=info["jobs_table"], Key={"jobId": {"S": job_id}}, ConsistentRead=True)
    return {name: next(iter(value.values())) for name, value in item.get("Item", {}).items()}


def _upload(form: dict[str, Any], data: bytes) -> None:
    response = requests.post(form["url"], data=form["fields"], files={"file": ("x", data)}, timeout=30)
    assert response.status_code in (200, 201, 204), response.text[:500]


def _task_of(stack: RunningStack, job_id: str) -> str:
    return _until(lambda: _record(stack, job_id).get("taskId"), f"job {job_id} submitted upstream")


@pytest.fixture(scope="module")
def face(api: Api) -> str:
    answer = api.expect(200, "PUT", "/faces/ada", body={"contentType": "image/jpeg"})
    assert answer["key"] == "faces/ada.jpg"
    _upload(answer["upload"], jpeg((200, 170, 150)))
    return "ada"


@pytest.fixture(scope="module")
def target(stack: RunningStack) -> str:
    info = stack.info()
    key = "library/beach.jpg"
    local_client("s3", info["region"], info["endpoint_url"]).put_object(Bucket=info["bucket"], Key=key, Body=RESULT)
    return key


def _running_job(api: Api, stack: RunningStack, face: str, target: str, auth: str = "sigv4") -> tuple[str, str]:
    job = api.expect(202, "POST", "/jobs", body={"face": face, "target": {"s3Key": target}}, auth=auth)
    return job["jobId"], _task_of(stack, job["jobId"])


# --------------------------------------------------------------------------- faces


def test_faces(api: Api, face: str, stack: RunningStack) -> None:
    api.expect(200, "PUT", f"/faces/{face}", body={"contentType": "image/jpeg"})  # same type: a new form
    conflict = api.expect(409, "PUT", f"/faces/{face}", body={"contentType": "image/png"})
    assert conflict["error"]["code"] == "face_conflict"
    assert api.expect(400, "PUT", "/faces/a%2Fb", body={"contentType": "image/jpeg"})["error"]["code"] == (
        "invalid_request"
    )
    api.expect(400, "PUT", "/faces/bob", body={"contentType": "image/gif"})
    api.expect(400, "PUT", "/faces/bob", body={"contentType": "image/jpeg", "extra": 1})
    text = {"Content-Type": "text/plain"}
    assert api.expect(415, "PUT", "/faces/bob", data=b"image/jpeg", headers=text)["error"]["code"] == (
        "unsupported_media_type"
    )

    info = stack.info()
    s3 = local_client("s3", info["region"], info["endpoint_url"])
    for name in ("bob", "cy"):
        s3.put_object(Bucket=info["bucket"], Key=f"faces/{name}.png", Body=RESULT)
    first = api.expect(200, "GET", "/faces", params={"limit": 1})
    assert len(first["faces"]) == 1 and first["cursor"]
    second = api.expect(200, "GET", "/faces", params={"limit": 1, "cursor": first["cursor"]})
    assert second["faces"][0]["face"] != first["faces"][0]["face"]
    everything = api.expect(200, "GET", "/faces")
    assert {f["face"] for f in everything["faces"]} >= {"ada", "bob", "cy"}
    api.expect(400, "GET", "/faces", params={"cursor": "not-a-cursor"})
    api.expect(400, "GET", "/faces", params={"limit": 0})

    assert api.expect(204, "DELETE", "/faces/cy") is None
    assert api.expect(404, "DELETE", "/faces/cy")["error"]["code"] == "not_found"
    api.expect(400, "DELETE", "/faces/a%2Fb")


# --------------------------------------------------------------------------- creating jobs


def test_create_jobs_of_every_target_kind_and_batch(api: Api, stack: RunningStack, face: str, target: str) -> None:
    upload = api.expect(202, "POST", "/jobs", body={"face": face, "target": {"upload": {"contentType": "image/jpeg"}}})
    assert upload["status"] == "AWAITING_UPLOAD" and upload["upload"]["fields"]
    _upload(upload["upload"], jpeg((10, 20, 30)))
    _task_of(stack, upload["jobId"])  # the uploads/ notification bound it and the submitter sent it
    pending = api.expect(202, "POST", "/jobs", body={"face": face, "target": {"s3Key": target}, "metadata": {"a": "1"}})
    assert pending["status"] == "PENDING" and pending["metadata"] == {"a": "1"}
    by_url = api.expect(202, "POST", "/jobs", body={"face": face, "target": {"url": "https://images.invalid/x.jpg"}})
    assert by_url["target"]["url"] == "https://images.invalid/x.jpg"
    batch = api.expect(
        202,
        "POST",
        "/jobs",
        body={
            "face": face,
            "targets": [{"s3Key": target}, {"s3Key": "library/none.jpg"}, {"url": "ftp://h.invalid/x"}],
        },
    )
    assert [bool(entry.get("job")) for entry in batch["jobs"]] == [True, False, False]


def test_create_job_refusals(api: Api, face: str, target: str) -> None:
    refusals = [
        {"face": face, "target": {"s3Key": target, "url": "https://images.invalid/x.jpg"}},  # both kinds
        {"face": face, "target": {"url": "http://169.254.169.254/x.jpg"}},  # link-local (loopback is allowed locally)
        {"face": face, "target": {"url": "ftp://images.invalid/x.jpg"}},
        {"face": face, "target": {"s3Key": "library/missing.jpg"}},
        {"face": face, "target": {"s3Key": "library/notes.txt"}},
        {"face": "a/b", "target": {"s3Key": target}},
        {"face": face, "target": {"s3Key": target}, "metadata": {"k": "v" * 501}},
        {"face": face, "targets": []},
        {"face": face},
    ]
    for body in refusals:
        error = api.expect(400, "POST", "/jobs", body=body)["error"]
        assert error["code"] == "invalid_request" and error["details"], body
    api.expect(400, "POST", "/jobs", data=b"{not json", headers={"Content-Type": "application/json"})
    api.expect(415, "POST", "/jobs", data=json.dumps({"face": face}).encode(), headers={"Content-Type": "text/plain"})
    huge = {"face": face, "target": {"s3Key": target}, "metadata": {"k": "x" * 300_000}}
    assert api.expect(413, "POST", "/jobs", body=huge)["error"]["code"] == "payload_too_large"


def test_idempotency_key(api: Api, face: str, target: str) -> None:
    key = {"Idempotency-Key": f"conformance-{uuid.uuid4().hex}"}
    body = {"face": face, "target": {"s3Key": target}}
    first = api.expect(202, "POST", "/jobs", body=body, headers=key)
    assert api.expect(202, "POST", "/jobs", body=body, headers=key) == first
    reused = api.expect(422, "POST", "/jobs", body={**body, "metadata": {"b": "2"}}, headers=key)
    assert reused["error"]["code"] == "idempotency_key_reused"
    api.expect(400, "POST", "/jobs", body=body, headers={"Idempotency-Key": "has space"})


# --------------------------------------------------------------------------- reading jobs


def test_get_and_list_jobs(api: Api, stack: RunningStack, face: str, target: str) -> None:
    job_id, _ = _running_job(api, stack, face, target)
    job = api.expect(200, "GET", f"/jobs/{job_id}")
    assert job["status"] == "SUBMITTED" and job["links"]["self"] == f"/jobs/{job_id}"
    assert api.expect(200, "GET", f"/jobs/{job_id}", params={"wait": 1})["jobId"] == job_id
    assert api.expect(404, "GET", f"/jobs/{uuid.uuid4().hex}")["error"]["code"] == "not_found"
    api.expect(400, "GET", f"/jobs/{job_id}", params={"wait": 26})

    page = api.expect(200, "GET", "/jobs", params={"limit": 2})
    assert len(page["jobs"]) == 2 and page["cursor"]
    following = api.expect(200, "GET", "/jobs", params={"limit": 2, "cursor": page["cursor"]})
    assert not {j["jobId"] for j in page["jobs"]} & {j["jobId"] for j in following["jobs"]}
    filtered = api.expect(
        200, "GET", "/jobs", params={"face": face, "status": "SUBMITTED", "since": "2000-01-01T00:00:00Z"}
    )
    assert job_id in {j["jobId"] for j in filtered["jobs"]}
    api.expect(400, "GET", "/jobs", params={"limit": 2, "cursor": page["cursor"], "face": face})  # other filters
    api.expect(400, "GET", "/jobs", params={"limit": 101})
    api.expect(400, "GET", "/jobs", params={"status": "NOT_A_STATUS"})
    api.expect(400, "GET", "/jobs", params={"since": "yesterday"})


# --------------------------------------------------------------------------- cancel, retry, callbacks


def test_cancel_and_retry(api: Api, stack: RunningStack, face: str, target: str) -> None:
    job_id, _ = _running_job(api, stack, face, target)
    running = api.expect(409, "POST", f"/jobs/{job_id}/retry")
    assert running["error"]["code"] == "not_retryable"
    key = {"Idempotency-Key": f"cancel-{uuid.uuid4().hex}"}
    cancelled = api.expect(200, "POST", f"/jobs/{job_id}/cancel", headers=key)
    assert cancelled["status"] == "CANCELLED"
    assert api.expect(200, "POST", f"/jobs/{job_id}/cancel", headers=key) == cancelled  # replayed
    api.expect(422, "POST", f"/jobs/{job_id}/cancel", headers=key, body={"changed": True})
    finished = api.expect(409, "POST", f"/jobs/{job_id}/cancel")
    assert finished["error"] == {
        "code": "job_finished",
        "message": finished["error"]["message"],
        "details": {"status": "CANCELLED"},
    }
    api.expect(404, "POST", f"/jobs/{uuid.uuid4().hex}/cancel")
    api.expect(400, "POST", f"/jobs/{job_id}/cancel", headers={"Idempotency-Key": "has space"})
    api.expect(415, "POST", f"/jobs/{job_id}/cancel", data=b"now", headers={"Content-Type": "text/plain"})

    key = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    retried = api.expect(202, "POST", f"/jobs/{job_id}/retry", headers=key)
    assert retried["retryOf"] == job_id and retried["status"] == "PENDING"
    assert api.expect(202, "POST", f"/jobs/{job_id}/retry", headers=key) == retried
    api.expect(422, "POST", f"/jobs/{job_id}/retry", headers=key, body={"changed": True})
    assert api.expect(409, "POST", f"/jobs/{job_id}/retry")["error"]["code"] == "already_retried"
    api.expect(404, "POST", f"/jobs/{uuid.uuid4().hex}/retry")
    api.expect(400, "POST", f"/jobs/{job_id}/retry", headers={"Idempotency-Key": "has space"})
    api.expect(415, "POST", f"/jobs/{job_id}/retry", data=b"now", headers={"Content-Type": "text/plain"})


def test_callbacks_and_a_finished_job(api: Api, stack: RunningStack, face: str, target: str) -> None:
    job_id, task_id = _running_job(api, stack, face, target)
    hook = stack.emulator.task(task_id).notify_hook
    assert urlsplit(hook).path == f"/callbacks/{job_id}"
    forged = hook.replace("token=", "token=x")
    api.expect(403, "POST", "", url=forged, body=stack.emulator.snapshot(task_id), auth="none")
    api.expect(400, "POST", "", url=hook, data=b"[1, 2", auth="none", headers={"Content-Type": "application/json"})
    api.expect(413, "POST", "", url=hook, data=b"{" + b" " * 300_000 + b"}", auth="none")
    other = {**stack.emulator.snapshot(task_id), "id": "another-task"}
    api.expect(409, "POST", "", url=hook, body=other, auth="none")
    stack.emulator.succeed(task_id)
    api.expect(200, "POST", "", url=hook, body=stack.emulator.snapshot(task_id), auth="none")

    done = api.expect(200, "GET", f"/jobs/{job_id}", params={"wait": 20})
    assert done["status"] == "SUCCESS" and done["result"]["url"], done
    assert api.expect(409, "POST", f"/jobs/{job_id}/cancel")["error"]["details"] == {"status": "SUCCESS"}
    assert api.expect(409, "POST", f"/jobs/{job_id}/retry")["error"]["code"] == "not_retryable"
    listed = api.expect(200, "GET", "/jobs", params={"status": "SUCCESS"})
    assert [j["resultKey"] for j in listed["jobs"] if j["jobId"] == job_id] == [done["result"]["key"]]


# --------------------------------------------------------------------------- auth and health


def test_health_is_open(api: Api) -> None:
    health = api.expect(200, "GET", "/health", auth="none")
    assert health["apiKeySet"] is True


def test_the_gateways_refuse_unauthenticated_callers_on_every_signed_route(api: Api) -> None:
    signed = [key for key, operation in _operations() if {"sigv4": []} in (operation.get("security") or [])]
    assert len(signed) == 8
    for method, path in signed:
        concrete = path.replace("{face}", "ada").replace("{jobId}", uuid.uuid4().hex)
        unsigned = api.call(method, concrete, auth="none", body={})
        assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"}), (method, path)
        tampered = sign_headers(api.info["api_credentials"], method, api.info["api_url"] + concrete + "x")
        wrong = api.call(method, concrete, auth="none", headers=tampered)
        assert wrong.status_code == 403 and "signature" in wrong.json()["message"], (method, path)
        no_token = api.call(method, concrete, auth="jwt", body={})
        assert (no_token.status_code, no_token.json()) == (401, {"message": "Unauthorized"}), (method, path)


def _operations() -> list[tuple[tuple[str, str], dict[str, Any]]]:
    return [
        ((method.upper(), path), operation)
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
    ]


def test_a_jwt_caller_sees_only_its_own_jobs(api: Api, stack: RunningStack, face: str, target: str) -> None:
    operators, _ = _running_job(api, stack, face, target)
    mine = api.expect(202, "POST", "/jobs", body={"face": face, "target": {"s3Key": target}}, auth="jwt:alice")
    assert api.expect(200, "GET", f"/jobs/{mine['jobId']}", auth="jwt:alice")["jobId"] == mine["jobId"]
    api.expect(404, "GET", f"/jobs/{operators}", auth="jwt:alice")
    api.expect(404, "POST", f"/jobs/{operators}/cancel", auth="jwt:alice")
    listed = api.expect(200, "GET", "/jobs", auth="jwt:alice")
    assert {j["jobId"] for j in listed["jobs"]} == {mine["jobId"]}
    api.expect(200, "GET", "/faces", auth="jwt:bob")


# --------------------------------------------------------------------------- coverage (keep last)


def test_every_route_and_documented_status_was_exercised(seen: dict[tuple[str, str], set[str]]) -> None:
    missing = {
        f"{method} {path} {status}"
        for (method, path), statuses in documented().items()
        for status in statuses
        if status not in seen.get((method, path), set()) and (method, path, status) not in NOT_EXERCISED
    }
    never = sorted(f"{method} {path}" for method, path in documented() if not seen.get((method, path)))
    assert not never, f"routes never exercised: {never}"
    assert not missing, f"documented answers never seen: {sorted(missing)}"
