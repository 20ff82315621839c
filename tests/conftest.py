"""Fixtures every suite shares: a clean AWS-less environment, a Lambda context, handlers and events."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

# Before anything can create a boto3 client: no real credentials, one region, UTC (moto's Wait states use
# local time), no X-Ray.
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "TZ": "UTC",
    "POWERTOOLS_SERVICE_NAME": "planet-orders-gateway",
    "POWERTOOLS_METRICS_NAMESPACE": "PlanetOrdersGateway",
    "POWERTOOLS_TRACE_DISABLED": "true",
})
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import moto  # noqa: E402,F401 - imported before boto3 clients exist, so mock_aws intercepts them
import pytest  # noqa: E402

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


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
