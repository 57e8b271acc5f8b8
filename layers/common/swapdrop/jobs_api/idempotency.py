"""The Idempotency-Key header on every POST, with Powertools' idempotency utility.

The record's key is (caller, route, Idempotency-Key); its payload hash is the body's, so the same
key with another body is refused (422). A duplicate that arrives while the first is still running
waits for the first's answer (short sleeps, at most `wait_seconds`) and returns it: 20 concurrent
POSTs with one key give one job and 20 identical answers. Refusals (4xx raised as ApiError) are
not stored: fixing the request and sending it again with the same key works.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from swapdrop.jobs_api.caller import Caller
from swapdrop.jobs_api.errors import ApiError, invalid_request

KEY_LIFETIME_SECONDS = 48 * 3600
"""How long an Idempotency-Key is remembered: over the 24 h the API promises."""
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.1
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Answer = dict[str, Any]
"""{"status": int, "body": JSON}: what is stored, and replayed, for a key."""


def _as_stored(answer: Answer) -> Answer:
    """The answer as a replay will read it back: Powertools stores it with sorted keys, so without
    this the first answer and its replays differ in the order of nested keys (an upload form's fields)."""
    return json.loads(json.dumps(answer, sort_keys=True))


def _perform(request: dict[str, Any], work: Callable[[], Answer]) -> Answer:
    """The idempotent unit: Powertools hashes `request`; `work` is not part of the key."""
    return work()


class IdempotentPosts:
    def __init__(
        self,
        persistence: BasePersistenceLayer,
        lifetime_seconds: int = KEY_LIFETIME_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="[caller, route, key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=lifetime_seconds,
        )
        self._run = idempotent_function(
            data_keyword_argument="request", persistence_store=persistence, config=self.config
        )(_perform)
        self._wait, self._sleep, self._monotonic = wait_seconds, sleep, monotonic

    def run(self, caller: Caller, route: str, key: str | None, body: Any, work: Callable[[], Answer]) -> Answer:
        if key is None:
            return work()
        if not _KEY.match(key):
            raise invalid_request(
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces",
                [{"loc": ["header", "Idempotency-Key"], "msg": "invalid idempotency key"}],
            )
        request = {"caller": caller.scope, "route": route, "key": key, "body": body}
        deadline = self._monotonic() + self._wait
        while True:
            try:
                return self._run(request=request, work=lambda: _as_stored(work()))
            except IdempotencyValidationError:
                raise ApiError(
                    "idempotency_key_reused",
                    422,
                    "this Idempotency-Key was used with a different body; use a new key for a new request",
                ) from None
            except IdempotencyAlreadyInProgressError:
                if self._monotonic() >= deadline:
                    raise ApiError(
                        "idempotency_in_progress",
                        409,
                        f"a request with this Idempotency-Key is still running after {self._wait:g} s; "
                        "send it again later for its answer",
                    ) from None
                self._sleep(POLL_SECONDS)
