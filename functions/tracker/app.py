"""TrackerFunction: on a schedule, one fleet sweep (a list of Planet's orders changed since the last one)
records what changed and wakes the orders that ended (services/wake.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = wiring.fleet_sweep().sweep()
    return {
        "completed": report.completed,
        "listed": report.listed,
        "woken": len(report.woken),
        "recorded": len(report.recorded),
    }
