"""The per-job token in the notifyHook URL: the upstream signs nothing, so the URL must."""

from __future__ import annotations

import base64
import hashlib
import hmac

_CONTEXT = b"swapdrop/callback/v1\x00"


def token_for(secret: str, job_id: str) -> str:
    mac = hmac.new(secret.encode(), _CONTEXT + job_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def is_valid(secret: str, job_id: str, token: str | None) -> bool:
    """Constant-time comparison; a missing token is simply invalid."""
    if not token:
        return False
    return hmac.compare_digest(token_for(secret, job_id).encode(), token.encode())
