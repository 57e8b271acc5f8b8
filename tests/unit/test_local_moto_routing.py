"""The local stack's moto dispatcher remembers each host's backend: the same answers as moto's own
lookup, without listing moto's package (under moto's global lock) on every request."""

from __future__ import annotations

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from swapdrop_local import moto_routing

HOSTS = [
    "dynamodb.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "s3.amazonaws.com",
    "events.us-east-1.amazonaws.com",
    "secretsmanager.us-east-1.amazonaws.com",
    "logs.us-east-1.amazonaws.com",
    "cloudformation.us-east-1.amazonaws.com",
    "moto_api",
    "s3",
]


@pytest.fixture
def remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", moto_routing._original)
    moto_routing.remember_backends()


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = backends.list_of_moto_modules

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    return calls


def test_the_same_backend_as_moto_for_every_service_the_stack_uses(remembered: None) -> None:
    plain, cached = DomainDispatcherApplication(create_backend_app), DomainDispatcherApplication(create_backend_app)
    expected = [moto_routing._original(plain, host) for host in HOSTS]
    assert [cached.get_backend_for_host(host) for host in HOSTS] == expected
    assert [cached.get_backend_for_host(host) for host in HOSTS] == expected  # and again, remembered
    assert cached.get_backend_for_host(None) is None


def test_a_host_is_looked_up_once(remembered: None, listings: list[int]) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for _ in range(5):
        assert dispatcher.get_backend_for_host("dynamodb.us-east-1.amazonaws.com") == "dynamodb"
    assert len(listings) == 1


def test_an_unknown_host_is_not_remembered(remembered: None, listings: list[int]) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    assert dispatcher.get_backend_for_host("nothing.example") is None
    assert dispatcher.get_backend_for_host("nothing.example") is None
    assert len(listings) == 2
