"""What ApiFunction's cold start imports, the lazy tracer, and settings read without pydantic-settings.

Import checks run in a fresh interpreter: in this process other tests have long imported everything.
Timings are not asserted here (benchmarks/cold_start.py measures them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from harness import ROOT
from order_core.config import Settings
from pydantic import ValidationError

# Powertools imports the botocore package itself (1 ms, for its user agent); the client machinery is heavy.
HEAVY = ("boto3", "botocore.client", "s3transfer", "requests", "jwt", "aws_xray_sdk", "pydantic_settings")


def fresh_python(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter (no AWS endpoint, no network) and return the JSON it prints."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "LAMBDA_"))
    }
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_api_handler_import_leaves_out_every_heavy_module() -> None:
    code = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("api_app", {str(ROOT / "functions" / "api" / "app.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    assert fresh_python(code, POWERTOOLS_TRACE_DISABLED="true") == {"loaded": []}


def test_api_handler_first_get_of_an_order_leaves_out_every_heavy_module() -> None:
    """The first GET reads the order with a signed HTTP GetItem (adapters/dynamodb_http.py), not boto3."""
    order_id = "3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10"
    code = f"""
import importlib.util, json, sys
from order_core.adapters import dynamodb_http, orders_repo
from order_core.models.planet import OrderRequest
from order_core.services.orders import new_record

order = json.loads(open({str(ROOT / "events" / "planet" / "create_scenes_direct.json")!r}).read())
item = orders_repo._to_item(new_record(OrderRequest.model_validate(order), "t-1", {order_id!r}))
typed = {{key: dynamodb_http.serialize(value) for key, value in item.items()}}
answer = json.dumps({{"Item": typed}}).encode()
asked = []
dynamodb_http.transport = lambda url, headers, body, timeout: asked.append(headers["X-Amz-Target"]) or (
    dynamodb_http.HttpResponse(200, {{}}, answer)
)
spec = importlib.util.spec_from_file_location("api_app", {str(ROOT / "functions" / "api" / "app.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
event = json.loads(open({str(ROOT / "events" / "api_get_order.json")!r}).read())
event["requestContext"]["authorizer"] = {{"principalId": "t-1", "tenant": "t-1"}}
class Context:
    function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "api", 256, "arn:api", "r-1"
response = module.lambda_handler(event, Context())
print(json.dumps({{"status": response["statusCode"], "id": json.loads(response["body"])["id"], "asked": asked,
                  "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    result = fresh_python(code, POWERTOOLS_TRACE_DISABLED="true", ORDERS_TABLE="orders")

    assert result == {"status": 200, "id": order_id, "asked": ["DynamoDB_20120810.GetItem"], "loaded": []}


def test_lazy_tracer_disabled_hands_back_the_handler_without_the_xray_sdk() -> None:
    code = """
import json, sys
from order_core.observability import tracer
def handler(event, context):
    return "ok"
decorated = tracer.capture_lambda_handler(handler)
print(json.dumps({"same": decorated is handler, "xray": "aws_xray_sdk" in sys.modules}))
"""
    assert fresh_python(code, POWERTOOLS_TRACE_DISABLED="true") == {"same": True, "xray": False}
    assert fresh_python(code) == {"same": True, "xray": False}  # outside Lambda: disabled, as Powertools says


def test_lazy_tracer_in_lambda_decorates_with_the_real_tracer() -> None:
    code = """
import inspect, json, sys
from order_core.observability import tracer
def handler(event, context):
    return "ok"
decorated = tracer.capture_lambda_handler(handler)
print(json.dumps({"same": decorated is handler, "xray": "aws_xray_sdk" in sys.modules,
                  "wraps": inspect.unwrap(decorated) is handler}))
"""
    result = fresh_python(code, LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_SERVICE_NAME="gateway")

    assert result == {"same": False, "xray": True, "wraps": True}


def test_lazy_tracer_forwards_everything_else_to_a_real_tracer() -> None:
    code = """
import copy, json
from order_core.observability import tracer
tracer.put_annotation(key="order_id", value="o-1")  # a no-op while tracing is disabled, as with Tracer
print(json.dumps({"real": type(tracer.tracer).__name__, "copy": type(copy.copy(tracer)).__name__}))
"""
    assert fresh_python(code, POWERTOOLS_TRACE_DISABLED="true") == {"real": "Tracer", "copy": "LazyTracer"}


def test_settings_read_each_field_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_TABLE", "orders-from-env")
    monkeypatch.setenv("poll_first_wait_seconds", "7")  # any case, as pydantic-settings
    monkeypatch.setenv("ALLOW_HTTP_DOWNLOADS", "true")
    monkeypatch.setenv("UNRELATED_VARIABLE", "ignored")

    settings = Settings()

    assert settings.orders_table == "orders-from-env"
    assert settings.poll_first_wait_seconds == 7
    assert settings.allow_http_downloads is True
    assert Settings(orders_table="given").orders_table == "given"  # arguments win over the environment


def test_settings_invalid_environment_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_FIRST_WAIT_SECONDS", "0")

    with pytest.raises(ValidationError, match="poll_first_wait_seconds"):
        Settings()
