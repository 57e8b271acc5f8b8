"""The guard every unit test runs under: no connections, no name lookups."""

from __future__ import annotations

import socket

import pytest
import requests

from .conftest import NetworkForbidden


def test_socket_connect_is_refused(no_network: list[str]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkForbidden):
            sock.connect(("127.0.0.1", 9))
    finally:
        sock.close()
    assert len(no_network) == 1
    assert no_network[0].startswith("socket.connect")
    no_network.clear()


def test_a_real_requests_call_cannot_get_out(no_network: list[str]) -> None:
    with pytest.raises(NetworkForbidden):
        requests.get("http://127.0.0.1:9/", timeout=1)
    assert no_network, "the attempt was recorded"
    no_network.clear()


def test_only_the_test_thread_is_watched(no_network: list[str]) -> None:
    """Background threads of servers other suites run are not refused (and not blamed)."""
    import socket
    import threading

    outcome: list[object] = []

    def resolve() -> None:
        try:
            outcome.append(socket.getaddrinfo("127.0.0.1", 9, proto=socket.IPPROTO_TCP)[0][4][0])
        except BaseException as error:  # the guard raises a BaseException
            outcome.append(error)

    thread = threading.Thread(target=resolve)
    thread.start()
    thread.join()
    assert outcome == ["127.0.0.1"]
    assert no_network == []
