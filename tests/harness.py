"""Shared by the suites besides fixtures: project paths, a Lambda context, events, the stack harness."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


class FakeLambdaContext:
    """Enough of a Lambda context for Powertools and for code that watches its remaining time."""

    def __init__(self, function_name: str = "test-function", remaining_ms: int = 30_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def load_handler(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` under its own module name (every handler file is app.py)."""
    name = f"functions_{function}_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway proxy event for ApiFunction, from the sample in ``events/``; bytes bodies arrive
    base64-encoded, as binary ones do."""
    event = load_event("api_create_order.json")
    event.update(
        httpMethod=method,
        path=path,
        resource=path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
    )
    if isinstance(body, bytes):
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    else:
        event["body"] = body
    event["headers"].update(headers or {})
    return dict(event)


def intake_event(stack: AwsStack) -> dict[str, Any]:
    """Receive what is on the intake queue (up to 10 messages) and shape it as Lambda's SQS event, the way
    the local stack's event source mapping does."""
    import boto3
    from gateway_local.esm import lambda_sqs_record

    got = boto3.client("sqs").receive_message(
        QueueUrl=stack.ref("IntakeQueue"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    )
    arn = stack.ref("IntakeQueue", "Arn")
    return {"Records": [lambda_sqs_record(m, arn, "us-east-1") for m in got.get("Messages", [])]}


# --- a whole stack under moto: resources from template.yaml, the real handlers, a fake Planet -----------

PLANET_KEY = "PLAK-test-key"


@dataclass
class AwsStack:
    """The template's resources in moto, the real handlers in-process, and the fake Planet behind them."""

    resources: Any
    lambdas: Any
    planet: Any
    completion_queue_url: str
    waits: list[float] = field(default_factory=list)

    def ref(self, logical_id: str, attribute: str = "Ref") -> str:
        return str(self.resources.attributes[logical_id][attribute])

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function as Lambda would; raise if it reported an error."""
        result = self.lambdas.invoke(self.resources.functions[logical_id].name, event)
        payload = json.loads(result.payload)
        if result.errored:
            raise AssertionError(f"{logical_id} failed: {payload}")
        return payload

    def invoke_raw(self, logical_id: str, event: Any) -> Any:
        return self.lambdas.invoke(self.resources.functions[logical_id].name, event)

    def record(self, order_id: str) -> Any:
        from order_core import wiring

        return wiring.orders_repo().get(order_id)

    def completion_events(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        import boto3

        sqs = boto3.client("sqs")
        events = []
        while True:
            got = sqs.receive_message(
                QueueUrl=self.completion_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            messages = got.get("Messages", [])
            if not messages:
                return events
            for message in messages:
                envelope = json.loads(message["Body"])
                events.append(
                    {
                        "message": json.loads(envelope["Message"]),
                        "attributes": envelope.get("MessageAttributes", {}),
                    }
                )
                sqs.delete_message(QueueUrl=self.completion_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def planet_orders(self) -> list[dict[str, Any]]:
        import requests

        body = requests.get(f"{self.planet.url}/_fake/orders", timeout=5).json()
        return body["orders"] if isinstance(body, dict) else body

    def planet_fault(self, **rule: Any) -> None:
        import requests

        requests.post(f"{self.planet.url}/_fake/faults", json=rule, timeout=5).raise_for_status()


def send_through_requests(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Any:
    """dynamodb_http's transport over ``requests``, which moto's in-process ``mock_aws`` intercepts."""
    import requests
    from order_core.adapters.dynamodb_http import HttpResponse

    response = requests.post(url, data=body, headers=headers, timeout=timeout)
    return HttpResponse(
        response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content
    )
