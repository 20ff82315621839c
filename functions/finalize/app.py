"""FinalizeFunction: lands results (resumable), then records the outcome and publishes one event."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.config import get_settings
from order_core.models.order import FinalizeRequest
from order_core.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = FinalizeRequest.model_validate(event)
    if request.action == "land":
        reserve = get_settings().landing_reserve_seconds

        def seconds_left() -> float:
            return context.get_remaining_time_in_millis() / 1000 - reserve

        return wiring.landing_service().land(request.order_id, seconds_left).model_dump()
    state = wiring.finalize_service().finalize(
        request.order_id,
        upstream_state=request.upstream_state,
        deadline_passed=bool(request.deadline_passed),
        error=request.error,
    )
    return {"state": state.value}
