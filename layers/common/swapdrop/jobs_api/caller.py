"""Who is calling, from what API Gateway's authorizer put in the event (never from the request itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swapdrop.jobs import Job
from swapdrop.jobs_api.errors import ApiError

IAM = "iam"
JWT = "jwt"
EVENT = "event"
"""A Swap Requested event: its `source` is the caller; only IAM operators see its jobs through the API."""


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str
    """"iam": an operator (sees every job); "jwt": an app's user (sees only the jobs it created)."""
    id: str
    """The IAM caller's ARN, or the JWT's `sub`."""

    @property
    def is_operator(self) -> bool:
        return self.kind == IAM

    def may_see(self, job: Job) -> bool:
        return self.is_operator or (job.requesterKind == JWT and job.requestedBy == self.id)

    @property
    def scope(self) -> str:
        """A stable, opaque name for the caller (idempotency keys, cursors): never the ARN in clear."""
        return hashlib.sha256(f"{self.kind}\x00{self.id}".encode()).hexdigest()[:32]

    @classmethod
    def from_request_context(cls, context: Mapping[str, Any] | None) -> Caller:
        """The caller API Gateway authenticated; 401 when the event carries none (a route left open by mistake)."""
        authorizer = (context or {}).get("authorizer") or {}
        jwt = authorizer.get("jwt") or {}
        sub = (jwt.get("claims") or {}).get("sub")
        if isinstance(sub, str) and sub:
            return cls(JWT, sub)
        iam = authorizer.get("iam") or {}
        arn = iam.get("userArn") or iam.get("callerId")
        if isinstance(arn, str) and arn:
            return cls(IAM, arn)
        raise ApiError("unauthenticated", 401, "this route needs an IAM (SigV4) signature or a JWT")
