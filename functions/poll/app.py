"""PollFunction: the workflow's wait for a change (``watch``: store its task token) and one ``poll`` (a GET
of the upstream order, or none when a fresh fleet sweep vouches for it) returning what to do next."""

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
    if request.action == "watch":
        if not request.task_token:
            raise ValueError("a watch needs the workflow's task_token")
        wiring.wake_service().watch(request.order_id, request.task_token)
        return {"watching": True}
    return wiring.poll_service().poll(request.order_id, request.attempt, woken=request.woken).model_dump()
