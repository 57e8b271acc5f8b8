"""HTTP(S) connections to an address checked beforehand, never to a fresh lookup of the URL's host.

url_rules.checked_address resolves a host once and checks every address; a pool from pinned_pool
connects to the address it returned, so a name that answers differently the next time (DNS
rebinding) cannot move the connection. HTTPS keeps the host name for SNI and the certificate
check; callers send `Host` themselves. urllib3 directly (not requests) because requests has no
way to hand its transport an address: it always resolves the URL's host again.
Shared by the result downloader and the webhook sender.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import certifi
import urllib3


class Pool(Protocol):
    def urlopen(self, method: str, url: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


PoolFactory = Callable[[str, str, int, str, float], Pool]
"""(scheme, address to connect to, port, host name for TLS, timeout) → a connection pool."""


def pinned_pool(scheme: str, address: str, port: int, host: str, timeout: float) -> Pool:
    options: dict[str, Any] = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    return urllib3.HTTPConnectionPool(address, port, **options)
