"""Bulk cancel does a bounded amount of work per request (docs/decisions.md, "Lists that stay O(page)")."""

from __future__ import annotations

import json
import uuid

from harness import AwsStack, api_event
from order_core.services.orders import BULK_CANCEL_MAX


def _bulk_cancel(stack: AwsStack, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    event = api_event("POST", "/compute/ops/bulk/orders/v2/cancel", body=json.dumps(body))
    event["requestContext"]["authorizer"] = {"principalId": "default", "tenant": "default"}
    response = stack.invoke("ApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


def test_bulk_cancel_more_order_ids_than_the_cap_answers_400_naming_order_ids(aws_stack: AwsStack) -> None:
    ids = [str(uuid.uuid4()) for _ in range(BULK_CANCEL_MAX + 1)]

    status, body = _bulk_cancel(aws_stack, {"order_ids": ids})

    assert status == 400
    assert "order_ids" in body["field"]  # type: ignore[operator]


def test_bulk_cancel_order_ids_at_the_cap_are_each_answered(aws_stack: AwsStack) -> None:
    ids = [str(uuid.uuid4()) for _ in range(BULK_CANCEL_MAX)]

    status, body = _bulk_cancel(aws_stack, {"order_ids": ids})

    assert status == 200
    assert body["result"]["failed"]["count"] == BULK_CANCEL_MAX  # type: ignore[index]
