"""PollFunction: one GET of the upstream order; returns its state and the next wait."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.models.order import PollRequest
from order_core.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PollRequest.model_validate(event)
    return wiring.poll_service().poll(request.order_id, request.attempt).model_dump()
