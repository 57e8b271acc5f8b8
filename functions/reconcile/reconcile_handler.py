"""ReconcileFunction: on a schedule, finish what callbacks did not (see swapdrop.reconciler)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from swapdrop import wiring
from swapdrop.observability import logger, publish_metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return asdict(wiring.reconciler().run())
