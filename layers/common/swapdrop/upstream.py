"""The client of the Midjourney-proxy-style swap API: submit, fetch, list-by-condition, list, cancel.

Every answer the implementations and relays are seen to give is mapped onto three
outcomes, so callers never read codes themselves:

- Accepted: codes 1 (submitted), 21 (exists), 22 (queued) with a task id;
- Retryable: codes 23 (queue full), 9 (failure / queue full), -1 (relay limits),
  HTTP 429 and 5xx, timeouts and connection errors;
- Rejected: codes 4 (validation), 24 (banned), 3 (not found), HTTP 401, 403, 404,
  other 4xx, and codes we do not know (retrying an unknown answer helps no one).

Answers to polls are parsed tolerantly (lenient_json, task_snapshot.parse_snapshot): one
odd task in a list is skipped and counted, never a reason to drop the others.

The request body is streamed: the two images are base64-encoded chunk by chunk as
the socket takes them, so a submit of two 10 MiB images holds only the images.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from swapdrop import lenient_json
from swapdrop.config import AuthStyle
from swapdrop.observability import logger, metrics
from swapdrop.task_snapshot import SnapshotRefusal, TaskSnapshot, json_kind, parse_snapshot

SWAP_PATH = "/mj/insight-face/swap"
LIST_PATH = "/mj/task/list-by-condition"
FETCH_PATH = "/mj/task/{task_id}/fetch"
RECENT_PATH = "/mj/task/list"
CANCEL_PATH = "/mj/task/{task_id}/cancel"
ANSWER_MAX_DEPTH = 512  # a whole list of snapshots; json.loads itself copes with ~1,000
_NOT_EXPOSED = {404, 405, 501}
CONNECT_TIMEOUT_SECONDS = 5.0
LIST_BATCH_SIZE = 50
_CHUNK = 3 * 16 * 1024  # a multiple of 3, so chunk encodings concatenate to the whole encoding

_ACCEPTED = {1: "SUCCESS", 21: "EXISTED", 22: "IN_QUEUE"}
_RETRYABLE = {23: "QUEUE_REJECTED", 9: "FAILURE", -1: "RELAY_ERROR"}
_REJECTED = {4: "VALIDATION_ERROR", 24: "BANNED_PROMPT", 3: "NOT_FOUND"}
_HTTP_FINAL = {401: "the API key was refused", 403: "access is forbidden for this API key", 404: "not found"}


@dataclass(frozen=True, slots=True)
class Accepted:
    task_id: str
    queue_position: int | None
    code: int
    description: str
    member: str = ""
    """The upstream pool member that accepted it (upstream_pool; "" from a bare client)."""


@dataclass(frozen=True, slots=True)
class Retryable:
    reason: str
    maybe_accepted: bool = False
    """True when the request was sent but no answer came: the upstream may have a task."""
    member: str = ""
    """The pool member that answered so (or may hold the task); "" when no one member did."""
    capacity: bool = False
    """Every pool member answered queue-full or is benched: a capacity wait, not a failed attempt."""
    queue_full: bool = dataclasses.field(default=False, compare=False)
    """The answer was queue-full (codes 23, 9, -1): the pool tries another member at once."""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    key_refused: bool = dataclasses.field(default=False, compare=False)
    """HTTP 401/403: this upstream refused the key, not the job (the pool benches it, tries another)."""


SubmitOutcome = Accepted | Retryable | Rejected


@dataclass(frozen=True, slots=True)
class SwapImage:
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class SwapRequest:
    source: SwapImage
    target: SwapImage
    notify_hook: str
    state: str
    instance_id: str = ""


class UpstreamError(RuntimeError):
    """A poll (fetch / list) that did not work; the reconciler tries again next round."""


class StreamingJsonBody:
    """The swap request's JSON, produced on demand with an exact Content-Length."""

    def __init__(self, request: SwapRequest) -> None:
        head = {"notifyHook": request.notify_hook, "state": request.state}
        if request.instance_id:
            head["accountFilter"] = {"instanceId": request.instance_id}  # type: ignore[assignment]
        fixed = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        self._parts: list[bytes | SwapImage] = [
            b'{"sourceBase64":"',
            request.source,
            b'","targetBase64":"',
            request.target,
            b'",' + fixed[1:].encode(),
        ]
        self._length = sum(_encoded_length(p) if isinstance(p, SwapImage) else len(p) for p in self._parts)
        self._chunks = self._generate()
        self._buffer = b""

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return self._generate()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _generate(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            yield _data_url_prefix(part.mime_type)
            view = memoryview(part.data)
            for start in range(0, len(view), _CHUNK):
                yield base64.b64encode(view[start : start + _CHUNK])


def _data_url_prefix(mime_type: str) -> bytes:
    return f"data:{mime_type};base64,".encode()


def _encoded_length(image: SwapImage) -> int:
    return len(_data_url_prefix(image.mime_type)) + 4 * ((len(image.data) + 2) // 3)


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        auth_style: AuthStyle,
        timeout_seconds: float,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._auth_style = auth_style
        self._timeout = (min(CONNECT_TIMEOUT_SECONDS, timeout_seconds), timeout_seconds)
        self._session = session or requests.Session()

    def _headers(self) -> dict[str, str]:
        key = self._api_key()
        auth = {"Authorization": f"Bearer {key}"} if self._auth_style is AuthStyle.BEARER else {"mj-api-secret": key}
        return {"Content-Type": "application/json", "Accept": "application/json", **auth}

    def submit_swap(self, request: SwapRequest) -> SubmitOutcome:
        try:
            response = self._session.post(
                self._base + SWAP_PATH,
                data=StreamingJsonBody(request),
                headers=self._headers(),
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            return Retryable("the swap API did not accept a connection in time")
        except requests.ReadTimeout:
            return Retryable("the swap API did not answer in time after the request was sent", maybe_accepted=True)
        except requests.ConnectionError as error:
            return Retryable(f"could not reach the swap API ({type(error).__name__})")
        return classify_submit_response(response.status_code, response.content)

    def list_tasks(self, task_ids: list[str], task_of_state: Mapping[str, str] | None = None) -> list[TaskSnapshot]:
        """Snapshots of the given tasks (missing ones are simply absent; unusable ones skipped).

        `task_of_state` maps our job ids (the `state` each task echoes) to the task each job
        follows: an item with no id whose state names a job following one of the asked tasks
        can only be that task's snapshot, so it is read as such rather than lost.
        """
        snapshots: list[TaskSnapshot] = []
        for start in range(0, len(task_ids), LIST_BATCH_SIZE):
            batch = task_ids[start : start + LIST_BATCH_SIZE]
            payload = self._json_answer(self._send("POST", LIST_PATH, {"ids": batch}), "POST", LIST_PATH)
            if isinstance(payload, list) and task_of_state:
                asked = set(batch)
                payload = [_with_id(item, _asked_task_of_state(item, task_of_state, asked)) for item in payload]
            snapshots.extend(_snapshots_of(payload, "POST", LIST_PATH))
        return snapshots

    def recent_tasks(self) -> list[TaskSnapshot] | None:
        """The latest 100 tasks, newest first (GET /mj/task/list), or None where the API does not expose it.

        There is no server-side search by `state`: this is how a task created by a submit
        whose answer was lost can still be found (by the snapshot's `state`, our job id).
        """
        response = self._send("GET", RECENT_PATH, None)
        if response.status_code in _NOT_EXPOSED:
            return None
        return _snapshots_of(self._json_answer(response, "GET", RECENT_PATH), "GET", RECENT_PATH)

    def fetch_task(self, task_id: str) -> TaskSnapshot | None:
        """The task, or None when the upstream does not know it (midjourney-proxy answers an empty body)."""
        path = FETCH_PATH.format(task_id=quote(task_id, safe=""))
        response = self._send("GET", path, None)
        if response.status_code == 200 and not response.content.strip():
            return None
        answer = _with_id(self._json_answer(response, "GET", path), task_id)  # the task asked for
        snapshot = _parse_or_count(answer, "GET", path)
        return snapshot if isinstance(snapshot, TaskSnapshot) else None

    def cancel_task(self, task_id: str) -> bool | None:
        """Ask the upstream to cancel the task: True once asked (2xx), None where the API has no cancel route.

        trueai's midjourney-proxy answers 200 with an empty body whatever happens (an unknown id,
        a task that already finished and stays finished), so True says only that the request was
        taken: what became of the task is learnt as always, from its callback or a poll.
        Anything else (401/403, a guest's 400, 5xx, no answer) raises UpstreamError."""
        path = CANCEL_PATH.format(task_id=quote(task_id, safe=""))
        response = self._send("POST", path, None)
        if response.status_code in _NOT_EXPOSED:
            return None
        if 200 <= response.status_code < 300:
            return True
        description = _description(_json_object(response.content))
        raise UpstreamError(f"POST {path} answered HTTP {response.status_code}{_suffix(description)}")

    def _send(self, method: str, path: str, body: Any) -> requests.Response:
        try:
            return self._session.request(
                method,
                self._base + path,
                json=body,
                headers=self._headers(),
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise UpstreamError(f"{method} {path} failed: {type(error).__name__}") from None

    @staticmethod
    def _json_answer(response: requests.Response, method: str, path: str) -> Any:
        if response.status_code != 200:
            raise UpstreamError(f"{method} {path} answered HTTP {response.status_code}")
        try:
            return lenient_json.loads(response.content, "the answer", max_depth=ANSWER_MAX_DEPTH)
        except lenient_json.JsonRefused as error:
            raise UpstreamError(f"{method} {path} answered non-JSON: {error}") from None


def _asked_task_of_state(item: Any, task_of_state: Mapping[str, str], asked: set[str]) -> str | None:
    """The asked task that the job named by the item's `state` follows, if any."""
    state = item.get("state") if isinstance(item, dict) else None
    task_id = task_of_state.get(state) if isinstance(state, str) else None
    return task_id if task_id in asked else None


def _with_id(item: Any, task_id: str | None) -> Any:
    """An item that lost its id, given the only id it can have (counted); anything else unchanged."""
    if task_id is None or not isinstance(item, dict) or item.get("id") not in (None, ""):
        return item
    metrics.add_metric(name="UpstreamIdsInferred", unit="Count", value=1)
    return {**item, "id": task_id}


def _snapshots_of(payload: Any, method: str, path: str) -> list[TaskSnapshot]:
    """Every usable snapshot of a list answer; each unusable item is skipped, counted and logged."""
    if not isinstance(payload, list):
        raise UpstreamError(f"{method} {path} did not return a list of tasks (it returned {json_kind(payload)})")
    parsed = (_parse_or_count(item, method, path) for item in payload)
    return [snapshot for snapshot in parsed if isinstance(snapshot, TaskSnapshot)]


def _parse_or_count(item: Any, method: str, path: str) -> TaskSnapshot | SnapshotRefusal:
    snapshot = parse_snapshot(item)
    if isinstance(snapshot, SnapshotRefusal):
        metrics.add_metric(name="UpstreamSnapshotsRefused", unit="Count", value=1)
        logger.warning("upstream snapshot skipped", extra={"answer": f"{method} {path}", "why": snapshot.reason[:500]})
    return snapshot


def classify_submit_response(status: int, body: bytes) -> SubmitOutcome:
    payload = _json_object(body)
    description = _description(payload)
    code = payload.get("code") if isinstance(payload.get("code"), int) else None
    if status == 429:
        return Retryable(f"the swap API is rate limiting (HTTP 429){_suffix(description)}")
    if status >= 500:
        return Retryable(f"the swap API had a server error (HTTP {status}){_suffix(description)}")
    if status in _HTTP_FINAL:
        return Rejected(f"HTTP {status}: {description or _HTTP_FINAL[status]}", key_refused=status in (401, 403))
    if status >= 400 and code not in _RETRYABLE:
        return Rejected(f"HTTP {status}{_code_text(code)}: {description or 'request refused'}")
    if code is None:
        return Retryable(f"the swap API answered HTTP {status} without a result code")
    if code in _ACCEPTED:
        task_id = payload.get("result")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id.strip():
            return Retryable(f"code {code} {_ACCEPTED[code]} came without a task id")
        return Accepted(task_id.strip(), _queue_position(payload), code, description)
    if code in _RETRYABLE:
        return Retryable(f"code {code} {_RETRYABLE[code]}{_suffix(description)}", queue_full=True)
    name = _REJECTED.get(code, "unknown code")
    return Rejected(f"the swap API refused the job (code {code} {name}){_suffix(description)}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _description(payload: dict[str, Any]) -> str:
    for field in ("description", "message", "error"):
        value = payload.get(field)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value.strip():
            return value.strip()[:500]
    return ""


def _suffix(description: str) -> str:
    return f": {description}" if description else ""


def _code_text(code: int | None) -> str:
    return f" (code {code})" if code is not None else ""


def _queue_position(payload: dict[str, Any]) -> int | None:
    properties = payload.get("properties")
    if isinstance(properties, dict):
        value = properties.get("numberOfQueues")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None
