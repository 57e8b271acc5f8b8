"""The jobs API's client: every request SigV4-signed (service execute-api) with the target's
credentials, every failure an ApiError (a CliError with the exit code its status means)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from swapdrop_cli.errors import CliError, ExitCode
from swapdrop_cli.target import CREDENTIALS_HINT, Target
from swapdrop_cli.targets import MAX_BATCH, batch_idempotency_key

SERVICE = "execute-api"
"""POST /jobs takes at most this many targets; larger batches are split."""
PAGE = 100
"""GET /jobs returns at most this many per page."""
CONNECT_SECONDS = 10
READ_SECONDS = 40
"""Above GET /jobs/{id}?wait='s 25 s ceiling."""
TRANSFER_SECONDS = 300
RETRIED_STATUSES = (429, 502, 503, 504)


class ApiError(CliError):
    """The API refused a request: its status, its stable code and its message for a person."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None, details: Any = None) -> None:
        super().__init__(message, exit_code_for(status), hint)
        self.status = status
        self.code = code
        self.details = details


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (408, 429):  # throttled or timed out: the stack is busy, the request was fine
        return ExitCode.UNREACHABLE
    if 400 <= status < 500:
        return ExitCode.USAGE
    return ExitCode.UNREACHABLE


class JobsApi:
    def __init__(self, target: Target, http: requests.Session | None = None) -> None:
        self.target = target
        url = target.api_url
        if not url:
            raise CliError(
                f"{target.description} has no jobs API (no ApiUrl output)",
                ExitCode.UNREACHABLE,
                hint="deploy the current template (sam build && sam deploy)",
            )
        self.base_url = url.rstrip("/")
        self.http = http or _session()

    # --- health and faces -------------------------------------------------------------

    def health(self) -> dict:
        return self._call("GET", "/health")

    def put_face(self, name: str, content_type: str) -> dict:
        """{face, key, upload: {url, fields, expiresAt, maxBytes}}: the presigned POST for faces/<name>.<ext>."""
        return self._call("PUT", f"/faces/{_segment(name)}", body={"contentType": content_type})

    def list_faces(self) -> Iterator[dict]:
        cursor = None
        while True:
            page = self._call("GET", "/faces", params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
            yield from page.get("faces") or []
            cursor = page.get("cursor")
            if not cursor:
                return

    def delete_face(self, name: str) -> None:
        try:
            self._call("DELETE", f"/faces/{_segment(name)}")
        except ApiError as error:
            if error.status == 404:
                raise ApiError(
                    404,
                    error.code,
                    f"no face '{name}' in {self.target.description}",
                    hint="swapdrop face list shows the faces",
                ) from None
            raise

    # --- jobs -------------------------------------------------------------------------

    def create_jobs(
        self, face: str, targets: list[dict], idempotency_key: str | None = None, metadata: dict | None = None
    ) -> list[dict]:
        """One BatchEntry ({index, job} or {index, error}) per target, in order; batches of 100.

        With an idempotency key, each batch is sent with its own (`targets.batch_idempotency_key`: K, K-2, K-3…)."""
        entries: list[dict] = []
        for start in range(0, len(targets), MAX_BATCH):
            body: dict[str, Any] = {"face": face, "targets": targets[start : start + MAX_BATCH]}
            if metadata:
                body["metadata"] = metadata
            headers = {}
            key = batch_idempotency_key(idempotency_key, start // MAX_BATCH)
            if key:
                headers["Idempotency-Key"] = key
            answer = self._call("POST", "/jobs", body=body, headers=headers)
            for entry in answer.get("jobs") or []:
                entries.append({**entry, "index": start + int(entry.get("index", 0))})
        return entries

    def get_job(self, job_id: str, wait: int = 0) -> dict:
        params = {"wait": wait} if wait else None
        try:
            return self._call("GET", f"/jobs/{_segment(job_id)}", params=params)
        except ApiError as error:
            raise self._no_job(error, job_id) from None

    def list_jobs(
        self,
        status: str | None = None,
        face: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict]:
        """Newest first, following cursors; at most `limit` jobs (None: all)."""
        cursor, given = None, 0
        filters = {k: v for k, v in {"status": status, "face": face, "since": since, "until": until}.items() if v}
        while limit is None or given < limit:
            page_size = PAGE if limit is None else min(PAGE, limit - given)
            params = {**filters, "limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", "/jobs", params=params)
            for job in page.get("jobs") or []:
                if limit is not None and given >= limit:
                    return
                given += 1
                yield job
            cursor = page.get("cursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> dict:
        try:
            return self._call("POST", f"/jobs/{_segment(job_id)}/cancel")
        except ApiError as error:
            raise self._no_job(error, job_id) from None

    def retry(self, job_id: str) -> dict:
        try:
            return self._call("POST", f"/jobs/{_segment(job_id)}/retry")
        except ApiError as error:
            raise self._no_job(error, job_id) from None

    # --- transfers (presigned: no SigV4 of ours) ---------------------------------------

    def upload(self, form: dict, path: Path, content_type: str | None = None) -> None:
        """POST `path` to a presigned form: its fields first, then the file as `file`."""
        fields = dict(form.get("fields") or {})
        content_type = content_type or fields.get("Content-Type") or "application/octet-stream"
        try:
            with path.open("rb") as handle:
                answer = self.http.post(
                    form["url"],
                    data=fields,
                    files={"file": (path.name, handle, content_type)},
                    timeout=(CONNECT_SECONDS, TRANSFER_SECONDS),
                )
        except requests.RequestException as error:
            raise CliError(f"uploading {path} failed: {_reason(error)}", ExitCode.UNREACHABLE) from None
        if answer.status_code not in (200, 201, 204):
            code, message = _s3_error(answer.text)
            exit_code = ExitCode.USAGE if code == "EntityTooLarge" else exit_code_for(answer.status_code)
            raise CliError(f"the bucket refused {path}: {code or answer.status_code}: {message}", exit_code)

    def download(self, url: str, dest: Path) -> int:
        """GET a presigned URL into `dest` (written whole or not at all); the bytes written."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.http.get(url, stream=True, timeout=(CONNECT_SECONDS, TRANSFER_SECONDS)) as answer:
                if answer.status_code != 200:
                    code, message = _s3_error(answer.text)
                    hint = "the link expired: run the command again for a fresh one" if code == "AccessDenied" else None
                    raise CliError(
                        f"downloading the result failed: {code or answer.status_code}: {message}",
                        exit_code_for(answer.status_code),
                        hint=hint,
                    )
                descriptor, temporary = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
                size = 0
                try:
                    with os.fdopen(descriptor, "wb") as handle:
                        for chunk in answer.iter_content(64 * 1024):
                            handle.write(chunk)
                            size += len(chunk)
                    os.replace(temporary, dest)
                except BaseException:
                    Path(temporary).unlink(missing_ok=True)
                    raise
                return size
        except requests.RequestException as error:
            raise CliError(f"downloading the result failed: {_reason(error)}", ExitCode.UNREACHABLE) from None

    # --- internals --------------------------------------------------------------------

    def _no_job(self, error: ApiError, job_id: str) -> ApiError:
        if error.status == 404:
            return ApiError(
                404, error.code, f"no job {job_id} in {self.target.description}", hint="swapdrop jobs lists the jobs"
            )
        return error

    def _call(
        self, method: str, path: str, params: dict | None = None, body: Any = None, headers: dict | None = None
    ) -> Any:
        url = self.base_url + path
        if params:
            url += "?" + urlencode(list(params.items()), quote_via=quote, safe="-_.~")
        data = json.dumps(body).encode() if body is not None else b""
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        signed = self._sign(method, url, all_headers, data)
        try:
            answer = self.http.request(
                method, url, data=data or None, headers=signed, timeout=(CONNECT_SECONDS, READ_SECONDS)
            )
        except requests.RequestException as error:
            raise CliError(
                f"the jobs API of {self.target.description} did not answer ({method} {path}): {_reason(error)}",
                ExitCode.UNREACHABLE,
                hint="check the stack is up (swapdrop doctor)",
            ) from None
        if answer.status_code == 204:
            return None
        try:
            payload = answer.json() if answer.content else None
        except ValueError:
            payload = None
        if 200 <= answer.status_code < 300:
            return payload
        raise self._error(answer.status_code, payload, method, path)

    def _sign(self, method: str, url: str, headers: dict, data: bytes) -> dict:
        credentials = self.target.session.get_credentials()
        if credentials is None:
            raise CliError("no AWS credentials to sign the jobs API's requests", ExitCode.AUTH, hint=CREDENTIALS_HINT)
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, self.target.region).add_auth(request)
        return dict(request.headers.items())

    def _error(self, status: int, payload: Any, method: str, path: str) -> ApiError:
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = payload["error"]
            code, message, details = str(error.get("code", "")), str(error.get("message", "")), error.get("details")
        elif isinstance(payload, dict) and "message" in payload:  # API Gateway's own refusals
            code, message, details = "", str(payload["message"]), None
        else:
            code, message, details = "", f"HTTP {status}", None
        hint = None
        if status in (401, 403) and not code.startswith("forbidden"):
            message = f"the jobs API refused the request ({status} {message})"
            hint = (
                "check your AWS credentials (--profile) and that your IAM identity has the stack's ClientPolicyArn"
                if self.target.kind == "stack"
                else "the credentials do not match the running local stack: use its current info file"
            )
        elif status >= 500:
            message = f"the jobs API failed ({method} {path}: {status} {message})"
            hint = "swapdrop logs api --since 15m shows why"
        return ApiError(status, code, message, hint=hint, details=details)


def _session() -> requests.Session:
    """Reads (GET) are retried on throttling and gateway errors, honouring Retry-After; writes are not
    (a POST that timed out may have created its jobs: the caller decides, with an Idempotency-Key)."""
    retry = Retry(
        total=3,
        connect=2,
        read=0,
        status=3,
        backoff_factor=0.5,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _segment(value: str) -> str:
    """One path segment, percent-encoded (a '/' in it stays inside it)."""
    return quote(value, safe="")


def _reason(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 200 else text[:200] + "…"


def _s3_error(text: str) -> tuple[str, str]:
    code = re.search(r"<Code>([^<]*)</Code>", text or "")
    message = re.search(r"<Message>([^<]*)</Message>", text or "")
    return (code.group(1) if code else "", message.group(1) if message else (text or "")[:200])
