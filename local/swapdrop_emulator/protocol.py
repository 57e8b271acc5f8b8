"""The submit request's validation and the answers' shapes, as the implementations give them.

Descriptions are trueai's (novicezk has no face swap; its codes and queue texts are the same).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

SUCCESS = 1
EXISTED = 21
IN_QUEUE = 22
QUEUE_REJECTED = 23
BANNED_PROMPT = 24
VALIDATION_ERROR = 4
NOT_FOUND = 3
FAILURE = 9
ACCEPTING_CODES = frozenset({SUCCESS, EXISTED, IN_QUEUE})

DESCRIPTIONS = {
    SUCCESS: "提交成功",
    EXISTED: "任务已存在",
    IN_QUEUE: "排队中，前面还有{n}个任务",
    QUEUE_REJECTED: "队列已满，请稍后尝试",
    BANNED_PROMPT: "可能包含敏感词",
    VALIDATION_ERROR: "参数错误",
    NOT_FOUND: "关联任务不存在或已失效",
    FAILURE: "提交失败，系统异常",
}
CANCEL_REASON = "取消任务"
"""trueai's failReason for a task cancelled through POST /mj/task/{id}/cancel ("task cancelled")."""
QUEUE_FULL_DESCRIPTIONS = {QUEUE_REJECTED: "队列已满，请稍后尝试", FAILURE: "提交失败，队列已满，请稍后重试"}

_ROLES = {"source": "人脸图片", "target": "目标图片"}
_DATA_URL = re.compile(
    r"^data:(?P<mime>[a-z0-9.+-]+/[a-z0-9.+-]+)?(?:;[a-z0-9.+-]+=[^;,]*)*(?P<base64>;base64)?,",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


class InvalidRequest(ValueError):
    """Answered HTTP 200 with code 4 and this description."""


@dataclass(frozen=True)
class Image:
    data: bytes
    mime: str


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def decode_image(value: Any, role: str, max_bytes: int) -> Image:
    """A bare base64 string (PNG assumed) or a ``data:<mime>;base64,`` URL, within the size limit."""
    label = _ROLES[role]
    if not isinstance(value, str):
        raise InvalidRequest(f"{label}格式错误")
    mime, payload = "image/png", value.strip()
    if payload[:5].lower() == "data:":
        matched = _DATA_URL.match(payload)
        if not matched or not matched.group("base64"):
            raise InvalidRequest(f"{label}格式错误")
        mime = (matched.group("mime") or "image/png").lower()
        payload = payload[matched.end() :]
    try:
        data = base64.b64decode(_WHITESPACE.sub("", payload), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{label}格式错误") from None
    if not data or len(data) > max_bytes:
        raise InvalidRequest(f"{label}大小超过最大限制")
    return Image(data, mime)


def lenient_image(value: Any) -> Image:
    """For the record of what was sent: whatever decodes, else empty."""
    try:
        return decode_image(value, "source", 1 << 62)
    except InvalidRequest:
        return Image(b"", "")


def validate_submit(body: dict[str, Any], max_bytes: int) -> tuple[Image, Image]:
    """The checks in the order trueai makes them; raises InvalidRequest."""
    source_text, target_text = body.get("sourceBase64"), body.get("targetBase64")
    if missing(source_text):
        raise InvalidRequest("人脸图片不能为空")
    if missing(target_text):
        raise InvalidRequest("目标图片不能为空")
    if source_text == target_text:
        raise InvalidRequest("人脸图片和目标图片不能相同")
    source = decode_image(source_text, "source", max_bytes)
    target = decode_image(target_text, "target", max_bytes)
    if source.data == target.data:  # the same image sent in two forms
        raise InvalidRequest("人脸图片和目标图片不能相同")
    hook = body.get("notifyHook")
    if hook is not None and not isinstance(hook, str):
        raise InvalidRequest("notifyHook格式错误")
    account_filter = body.get("accountFilter")
    if account_filter is not None and not isinstance(account_filter, dict):
        raise InvalidRequest("accountFilter格式错误")
    return source, target


def submit_answer(
    code: int, description: str | None = None, result: str | None = None, **properties: Any
) -> dict[str, Any]:
    text = description if description is not None else DESCRIPTIONS.get(code, "")
    return {"code": code, "description": text, "result": result, "properties": properties}


def queued_answer(task_id: str, ahead: int) -> dict[str, Any]:
    return submit_answer(IN_QUEUE, DESCRIPTIONS[IN_QUEUE].format(n=ahead), task_id, numberOfQueues=ahead)


def code_answer(code: int) -> dict[str, Any]:
    """A submit refused with this code (a `code=N` fault)."""
    if code == -1:  # relays: daily limits, internal errors
        return {"success": False, "code": -1, "message": "当前分组上游负载已饱和，请稍后再试"}
    return submit_answer(code, QUEUE_FULL_DESCRIPTIONS.get(code, DESCRIPTIONS.get(code, f"错误码 {code}")))


def spring_error(status: int, error: str, path: str, timestamp: str) -> dict[str, Any]:
    """Spring Boot's default error body (novicezk), e.g. for a body that is not JSON."""
    return {"timestamp": timestamp, "status": status, "error": error, "path": path}


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def status_answer(status: int) -> tuple[bytes, str]:
    """(body, content type) of a `status=N` fault, shaped like what sends it in the wild."""
    if status == 401:
        return b"", ""
    reason = _REASONS.get(status, "Error")
    if status >= 500 or status == 413:
        html = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return html.encode(), "text/html"
    if status == 429:
        body: dict[str, Any] = {"error": {"message": "当前分组上游负载已饱和，请稍后再试", "type": "new_api_error"}}
    elif status >= 400:
        body = {"description": f"emulated HTTP {status} {reason}", "type": "upstream_error", "code": 4}
    else:
        body = {"code": -1, "description": f"emulated HTTP {status}", "result": None, "properties": {}}
    return json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8"


EXPIRED_BODIES = {
    404: (b"This content is no longer available.", "text/plain; charset=utf-8"),
    410: (b"Gone", "text/plain; charset=utf-8"),
    403: (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        b"<Message>Request has expired</Message></Error>",
        "application/xml",
    ),
}
