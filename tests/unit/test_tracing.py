"""X-Ray never records a handler's response or exception text: ours carry download tokens and presigned URLs.

The handlers are traced through ``order_core.observability.tracer`` (checked below); this runs that tracer
for real, with the X-Ray SDK recording into memory instead of sending to a daemon, and reads what it kept.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ROOT

TOKEN = "tok-5ecret-d0wnload"
PRESIGNED = f"https://bucket.s3.amazonaws.com/orders/o/file.tif?X-Amz-Signature={TOKEN}"


class _Collected:
    """An X-Ray emitter that keeps every entity it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(entity.serialize())

    def set_daemon_address(self, address: str) -> None:  # pragma: no cover - the SDK's interface
        pass

    @property
    def ip(self) -> str:  # pragma: no cover
        return "127.0.0.1"

    @property
    def port(self) -> int:  # pragma: no cover
        return 2000


@pytest.fixture
def xray(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, _Collected]]:
    """Tracing switched on as in Lambda, recording into memory; everything restored afterwards."""
    import aws_xray_sdk
    from aws_lambda_powertools.tracing.tracer import Tracer
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.context import Context

    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    for name in ("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "POWERTOOLS_TRACER_CAPTURE_ERROR"):
        monkeypatch.delenv(name, raising=False)
    emitter = _Collected()
    saved_context, saved_emitter = xray_recorder.context, xray_recorder.emitter
    xray_recorder.configure(context=Context(), emitter=emitter, sampling=False, streaming_threshold=1)
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    Tracer._reset_config()
    Tracer(auto_patch=False, disabled=False)  # shared config: later Tracer()s patch nothing either
    try:
        yield xray_recorder, emitter
    finally:
        Tracer._reset_config()
        xray_recorder.configure(context=saved_context, emitter=saved_emitter)
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)


def _recorded(recorder: Any, emitter: _Collected, call: Any) -> str:
    segment = recorder.begin_segment("test")
    try:
        call()
    except RuntimeError:
        pass
    finally:
        text = segment.serialize()
        recorder.end_segment()
    return "\n".join([text, *emitter.sent])


def _handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("raise"):
        raise RuntimeError(f"GET {PRESIGNED} failed")
    return {"statusCode": 200, "body": json.dumps({"location": f"/download?token={TOKEN}", "url": PRESIGNED})}


def test_tracer_plain_powertools_records_responses_so_test_can_fail(xray: tuple[Any, _Collected]) -> None:
    from aws_lambda_powertools.tracing.tracer import Tracer

    recorder, emitter = xray
    traced = Tracer().capture_lambda_handler(_handler)

    assert TOKEN in _recorded(recorder, emitter, lambda: traced({}, None))


def test_tracer_handler_response_is_never_recorded(xray: tuple[Any, _Collected]) -> None:
    from order_core.observability import LazyTracer

    recorder, emitter = xray
    tracer = LazyTracer()
    assert tracer.enabled
    traced = tracer.capture_lambda_handler(_handler)

    recorded = _recorded(recorder, emitter, lambda: traced({}, None))

    assert "## _handler" in recorded  # it did trace
    assert TOKEN not in recorded


def test_tracer_handler_exception_text_is_never_recorded(xray: tuple[Any, _Collected]) -> None:
    from order_core.observability import LazyTracer

    recorder, emitter = xray
    traced = LazyTracer().capture_lambda_handler(_handler)

    recorded = _recorded(recorder, emitter, lambda: traced({"raise": True}, None))

    assert "## _handler" in recorded
    assert TOKEN not in recorded


def test_tracer_method_response_is_never_recorded(xray: tuple[Any, _Collected]) -> None:
    from order_core.observability import LazyTracer

    recorder, emitter = xray
    traced = LazyTracer().capture_method(lambda: {"url": PRESIGNED})

    recorded = _recorded(recorder, emitter, traced)

    assert TOKEN not in recorded


def test_tracer_every_handler_is_traced_only_through_order_core_tracer() -> None:
    """A function building its own Powertools Tracer would record responses again."""
    for app in sorted(ROOT.glob("functions/*/app.py")):
        tree = ast.parse(app.read_text(encoding="utf-8"))
        imported = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert "Tracer" not in imported, f"{app} builds its own Tracer"
        handler = next(
            node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler"
        )
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        traced_by = [d for d in decorators if "capture_lambda_handler" in d]
        assert traced_by in ([], ["tracer.capture_lambda_handler"]), f"{app}: {traced_by}"
        if traced_by:
            assert imported.get("tracer") == "order_core.observability", app


def test_tracer_dynamodb_read_over_http_is_recorded_as_an_aws_subsegment(
    xray: tuple[Any, _Collected], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GetItem that skips boto3 (adapters/dynamodb_http.py) shows in traces as botocore's calls do."""
    from order_core.adapters import dynamodb_http

    recorder, emitter = xray
    answer = dynamodb_http.HttpResponse(200, {}, b'{"Item": {"order_id": {"S": "o-1"}}}')
    monkeypatch.setattr(dynamodb_http, "transport", lambda *_args: answer)
    table = dynamodb_http.DynamoDBTable("orders-table")

    recorded = _recorded(recorder, emitter, lambda: table.get_item(Key={"order_id": "o-1"}))

    entities = [json.loads(line) for line in recorded.splitlines()]
    subsegments = [e for entity in entities for e in [entity, *entity.get("subsegments", [])]]
    subsegment = next(s for s in subsegments if s["name"] == "DynamoDB")
    assert subsegment["namespace"] == "aws"
    assert subsegment["aws"] == {"operation": "GetItem", "table_name": "orders-table", "region": "us-east-1"}
