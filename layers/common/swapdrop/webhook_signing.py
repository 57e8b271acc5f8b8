"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with the `standardwebhooks` package.

The key lives in the stack's WebhookSecret as JSON {"current": "...", "previous": "..."}: Secrets Manager
generates `current` as a random string (it cannot add a prefix), and a receiver's key is
`whsec_` + base64(current as UTF-8) — see `receiver_keys`. A value that already starts with `whsec_`
is used as it is. Rotation: move the old value to `previous` and put a new `current`; while both are
set every message carries both signatures (space-separated `v1,...`), so receivers can switch keys
at their own pace; then empty `previous`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"


def receiver_keys(secret_string: str) -> list[str]:
    """The whsec_ keys the secret holds, current first (a plain string is one key)."""
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        parsed = {"current": secret_string}
    if not isinstance(parsed, dict):
        parsed = {"current": secret_string}
    values = [parsed.get("current"), parsed.get("previous")]
    keys = [_as_key(value.strip()) for value in values if isinstance(value, str) and value.strip()]
    if not keys:
        raise ValueError("the webhook secret holds no key (expected JSON with a non-empty 'current')")
    return keys


def _as_key(value: str) -> str:
    return value if value.startswith(PREFIX) else PREFIX + base64.b64encode(value.encode()).decode()


class WebhookSigner:
    """The three Standard Webhooks headers of one message, signed with every active key."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret

    def headers(self, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
        signatures = [Webhook(key).sign(message_id, timestamp, body) for key in receiver_keys(self._secret())]
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(signatures),
        }


if __name__ == "__main__":  # python -m swapdrop.webhook_signing < secret.json: a receiver's whsec_ keys
    import sys

    print("\n".join(receiver_keys(sys.stdin.read())))
