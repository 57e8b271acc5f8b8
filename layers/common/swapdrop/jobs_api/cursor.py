"""Opaque, signed page cursors: a caller can neither forge one nor reuse it with other filters."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable

from swapdrop.jobs_api.errors import invalid_request

_CONTEXT = b"swapdrop/cursor/v1"
MAX_CURSOR_CHARS = 2048


class CursorSigner:
    """HMAC-SHA256 over {position, scope}; the key is derived from the callback-token secret."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def _key(self) -> bytes:
        return hmac.new(self._secret().encode(), _CONTEXT, hashlib.sha256).digest()

    def encode(self, position: str, scope: str) -> str:
        payload = json.dumps({"p": position, "s": _digest(scope)}, separators=(",", ":")).encode()
        mac = hmac.new(self._key(), payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(mac)}"

    def decode(self, cursor: str, scope: str) -> str:
        """The position `cursor` holds, if it was made by this API for the same caller and filters."""
        refused = invalid_request(
            "the cursor is not valid for this request: pass the cursor of the previous page unchanged, "
            "with the same filters",
            [{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        )
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise refused
        encoded_payload, encoded_mac = cursor.split(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise refused from None
        if not hmac.compare_digest(hmac.new(self._key(), payload, hashlib.sha256).digest(), mac):
            raise refused
        try:
            fields = json.loads(payload)
        except ValueError:
            raise refused from None
        if not isinstance(fields, dict) or fields.get("s") != _digest(scope) or not isinstance(fields.get("p"), str):
            raise refused
        return fields["p"]


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
