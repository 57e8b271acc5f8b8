"""The built services reach the upstream pool: the reconciler polls through it with the configured queue
wait, and the jobs API cancels a task on the job's member (real builders, a fake pool, no request made)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import FakeMemberPool, FakePoller
from swapdrop import wiring

from .test_wiring_lazy import ENV


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMemberPool]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAX_QUEUE_WAIT_HOURS", "36")
    fake = FakeMemberPool({"relay-a": FakePoller(), "relay-b": FakePoller()})
    monkeypatch.setattr(wiring, "upstream_pool", lambda config: fake)
    wiring.reset()
    yield fake
    wiring.reset()


def test_the_jobs_api_cancels_on_the_jobs_member(pool: FakeMemberPool) -> None:
    cancel = wiring.api_service()._cancel_upstream  # what JobsService.cancel calls with (taskId, upstreamMember)
    assert cancel("T-1", "relay-b") is True
    assert pool.cancelled == [("T-1", "relay-b")]


def test_the_reconciler_uses_the_pool_and_the_queue_wait(pool: FakeMemberPool) -> None:
    built = wiring.reconciler()
    assert built._upstream is pool
    assert built._queue_wait_minutes == 36 * 60


def test_max_queue_wait_hours_is_bounded_by_the_queues_retention() -> None:
    from pydantic import ValidationError
    from swapdrop.config import Settings

    base = {name.lower(): value for name, value in ENV.items() if name.lower() in Settings.model_fields}
    assert Settings.model_validate(base).max_queue_wait_hours == 24
    assert Settings.model_validate(base | {"max_queue_wait_hours": 312}).max_queue_wait_hours == 312
    for bad in (0, 313):
        with pytest.raises(ValidationError, match="max_queue_wait_hours"):
            Settings.model_validate(base | {"max_queue_wait_hours": bad})
