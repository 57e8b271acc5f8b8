"""One Logger, Tracer and Metrics for every module, configured by POWERTOOLS_* variables.

The Tracer is Powertools' only where it would trace: constructing it imports the X-Ray SDK even
when disabled (tens of ms of every cold start), so with tracing off (POWERTOOLS_TRACE_DISABLED, the
stack's EnableTracing=false, tests, the local stack) it is a stand-in whose decorators return the
function as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()


class UntracedTracer:
    """What the handlers use of Powertools' Tracer, doing nothing (tracing is off)."""

    disabled = True

    def capture_lambda_handler[Function: Callable[..., Any]](self, handler: Function) -> Function:
        return handler

    def capture_method[Function: Callable[..., Any]](self, method: Function) -> Function:
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def make_tracer() -> Tracer | UntracedTracer:
    """Powertools' Tracer where it would trace, else the stand-in (Powertools' own rule decides)."""
    return UntracedTracer() if Tracer._is_tracer_disabled() else Tracer()


tracer = make_tracer()


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
