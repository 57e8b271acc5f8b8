"""Settings every test needs before the package is imported (as Lambda sets them)."""

import io
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# Property tests judge behaviour, never speed: no per-example deadline on a shared 2-core
# machine. In CI the examples are derived from each test's name, so a red run reproduces.
settings.register_profile("swapdrop", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("swapdrop")

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "swapdrop")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Swapdrop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the shared Powertools logger writes, formatted exactly as in CloudWatch."""
    from swapdrop.observability import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        yield buffer
    finally:
        logger.registered_handler.setStream(previous)
