"""One Logger, Tracer and Metrics for every module, configured by POWERTOOLS_* variables."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def publish_metrics[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Powertools' `metrics.log_metrics`, minus its "No application metrics to publish" warning.

    Many invocations record no metric (a duplicate callback, a GET, a quiet reconciler run): the
    metrics are flushed only when there are some, and cleared either way (no state leaks into the
    next invocation of a warm container).
    """

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(event, context, *args, **kwargs)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()

    return wrapper  # type: ignore[return-value]
