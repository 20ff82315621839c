"""Every answer that shows an order hides its delivery credentials: create, its idempotent replay, get,
list, cancel and bulk cancel (ApiFunction under moto)."""

from __future__ import annotations

import json
from typing import Any

from harness import AwsStack, api_event, load_event

ORDERS = "/compute/ops/orders/v2"
SECRET = "c2VjcmV0LXNlcnZpY2UtYWNjb3VudA"


def api(stack: AwsStack, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, str]:
    event = api_event(method, path, body=None if body is None else json.dumps(body), headers=headers)
    event["requestContext"]["authorizer"] = {"tenant": "redaction"}
    response = stack.invoke("ApiFunction", event)
    return response["statusCode"], response["body"]


def test_api_every_view_of_an_order_hides_its_delivery_credentials(aws_stack: AwsStack) -> None:
    request = load_event("planet/create_scenes_gcs_clip.json")
    request["delivery"]["google_cloud_storage"]["credentials"] = SECRET
    answers = {"create": api(aws_stack, "POST", ORDERS, request, **{"Idempotency-Key": "redact-1"})}
    order_id = json.loads(answers["create"][1])["id"]

    answers["replay"] = api(aws_stack, "POST", ORDERS, request, **{"Idempotency-Key": "redact-1"})
    answers["get"] = api(aws_stack, "GET", f"{ORDERS}/{order_id}")
    answers["list"] = api(aws_stack, "GET", ORDERS)
    answers["cancel"] = api(aws_stack, "PUT", f"{ORDERS}/{order_id}")
    answers["bulk cancel"] = api(
        aws_stack, "POST", "/compute/ops/bulk/orders/v2/cancel", {"order_ids": [order_id]}
    )

    assert {name: status for name, (status, _) in answers.items()} == {
        "create": 202,
        "replay": 202,
        "get": 200,
        "list": 200,
        "cancel": 200,
        "bulk cancel": 200,
    }
    assert [name for name, (_, body) in answers.items() if SECRET in body] == []
    shown = [json.loads(answers[name][1]) for name in ("create", "replay", "get", "cancel")]
    shown.append(json.loads(answers["list"][1])["orders"][0])
    assert {view["delivery"]["google_cloud_storage"]["credentials"] for view in shown} == {"<redacted>"}
