"""PlanetHookFunction: Planet's per-order webhook. The URL's token must be the order's; the body is never
read. A genuine call wakes the order's workflow (it then asks Planet itself); anything else is a 404 with
nothing changed."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.observability import logger, metrics, tracer


def _answer(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message}),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params = event.get("pathParameters") or {}
    order_id, token = str(params.get("order_id") or ""), str(params.get("token") or "")
    outcome = wiring.planet_hooks().received(order_id, token)
    if outcome is None:
        logger.info("Planet webhook refused: wrong token")  # neither the token nor the id is logged
        return _answer(404, "Not found")
    logger.info("Planet webhook", extra={"order_id": order_id, "outcome": outcome.value})
    return _answer(200, "OK")
