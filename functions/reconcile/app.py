"""ReconcileFunction: on a schedule, restart every non-terminal order no workflow is moving along."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = wiring.reconcile_service().run()
    return {"examined": report.examined, "reconciled": report.by_phase}
