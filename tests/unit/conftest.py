"""Unit-test configuration: environment, a network guard, real image bytes, fakes wired up."""

from __future__ import annotations

import os

# Before anything imports swapdrop (its Logger/Metrics/Tracer read these at import time).
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Swapdrop")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "swapdrop")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import (
    Clock,
    FakeDownloader,
    FakeEventPublisher,
    FakeJobStore,
    FakeMediaStore,
    FakeMemberPool,
    FakePoller,
    FakeSwapGateway,
)
from swapdrop.finishing import JobFinisher
from swapdrop.observability import metrics
from swapdrop.reconciler import Reconciler
from swapdrop.snapshots import CallbackReceiver, SnapshotApplier
from swapdrop.submission import SubmitPolicy, Submitter

from .builders import BUCKET, CALLBACK_BASE, CALLBACK_SECRET, HEIC_HEADER, PDF_BYTES, image_bytes, png_claiming


class NetworkForbidden(BaseException):
    """A unit test tried to open a connection or resolve a name."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts: list[str] = []
    test_thread = threading.current_thread()
    originals = {
        "socket.connect": socket.socket.connect,
        "socket.connect_ex": socket.socket.connect_ex,
        "socket.create_connection": socket.create_connection,
        "socket.getaddrinfo": socket.getaddrinfo,
    }

    def refuse(what: str):
        def _refuse(*args: object, **kwargs: object) -> object:
            # Only this test's own thread is watched: servers that other suites left running
            # in background threads (until their fixtures end) are not this test's doing.
            if threading.current_thread() is not test_thread:
                return originals[what](*args, **kwargs)
            attempts.append(f"{what}{args[1:] if what == 'socket.connect' else args}")
            raise NetworkForbidden(f"unit tests must not use the network: {what}")

        return _refuse

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    yield attempts
    assert not attempts, f"network access attempted (and maybe swallowed): {attempts}"


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """Powertools Metrics keeps its buffer in shared state; start every test empty."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture(scope="session")
def images() -> SimpleNamespace:
    """Real, small images made by Pillow, and the bad inputs the checks must refuse."""
    jpeg = image_bytes("JPEG", (32, 24), (200, 30, 40))
    return SimpleNamespace(
        jpeg=jpeg,
        jpeg_other=image_bytes("JPEG", (40, 30), (20, 160, 90)),
        png=image_bytes("PNG", (24, 16), (10, 20, 250)),
        webp=image_bytes("WEBP", (20, 20), (250, 250, 10)),
        gif=image_bytes("GIF", (8, 8)),
        heic=HEIC_HEADER,
        pdf=PDF_BYTES,
        truncated_jpeg=jpeg[:12],
        bomb_png=png_claiming(20_000, 20_000),
        big_png=png_claiming(8_000, 8_000),
    )


@dataclass
class World:
    """The use cases built on fakes, sharing one store, one clock, one bucket."""

    clock: Clock = field(default_factory=Clock)
    jobs: FakeJobStore = field(default_factory=FakeJobStore)
    media: FakeMediaStore = field(default_factory=FakeMediaStore)
    gateway: FakeSwapGateway = field(default_factory=FakeSwapGateway)
    events: FakeEventPublisher = field(default_factory=FakeEventPublisher)
    downloader: FakeDownloader = field(default_factory=FakeDownloader)
    poller: FakePoller = field(default_factory=FakePoller)
    secret: str = CALLBACK_SECRET
    policy: SubmitPolicy = field(
        default_factory=lambda: SubmitPolicy(
            bucket=BUCKET, callback_base_url=CALLBACK_BASE, max_image_bytes=100_000, max_attempts=3
        )
    )
    secret_reads: int = 0

    def read_secret(self) -> str:
        self.secret_reads += 1
        return self.secret

    @property
    def finisher(self) -> JobFinisher:
        return JobFinisher(self.jobs, self.media, self.downloader, self.events, clock=self.clock)

    def submitter(self, **overrides: Any) -> Submitter:
        """On this world's fakes; `overrides` replace any of Submitter's arguments (a pool, `monotonic`, ...)."""
        wired = {
            "jobs": self.jobs,
            "media": self.media,
            "upstream": self.gateway,
            "finisher": self.finisher,
            "callback_secret": self.read_secret,
            "policy": self.policy,
            "clock": self.clock,
        }
        return Submitter(**(wired | overrides))

    def applier(self) -> SnapshotApplier:
        return SnapshotApplier(self.jobs, self.finisher, clock=self.clock)

    def receiver(self) -> CallbackReceiver:
        return CallbackReceiver(self.jobs, self.applier(), token_secret=self.read_secret)

    def reconciler(
        self, job_timeout_minutes: int = 60, quiet_seconds: int = 120, max_queue_wait_hours: int = 1, **overrides: Any
    ) -> Reconciler:
        """On a one-member pool (`poller`); a PENDING job waits an hour by default, as long as the job timeout.
        `overrides` replace any other of Reconciler's arguments (a pool of members, a finisher, ...)."""
        wired = {
            "jobs": self.jobs,
            "upstream": FakeMemberPool({"default": self.poller}),
            "applier": self.applier(),
            "finisher": self.finisher,
            "clock": self.clock,
        }
        limits = {
            "job_timeout_minutes": job_timeout_minutes,
            "quiet_seconds": quiet_seconds,
            "max_queue_wait_hours": max_queue_wait_hours,
        }
        return Reconciler(**(wired | limits | overrides))


@pytest.fixture
def world() -> World:
    return World()


from .api_events import api  # noqa: E402, F401 - the jobs API's fixture (it needs World, above)
