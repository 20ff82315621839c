"""The completion event's published contract, generated from the models that build it.

    make event-schema                                       # writes docs/events/
    .venv/bin/python -m gateway_local.event_schema --check  # exit 1 when docs/events/ is stale

Writes, from ``CompletionEvent`` and ``CompletionEventAttributes`` (``order_core.models.order``), nothing by
hand:

* ``docs/events/completion-event.v<N>.schema.json``: JSON Schema 2020-12 of the message body;
* ``docs/events/completion-event-attributes.v<N>.schema.json``: its SNS message attributes (what a
  subscription's filter policy matches), each a string;
* ``docs/events/asyncapi.yaml``: an AsyncAPI 3.0 document of the topic: the message, its attributes as
  headers, and an example per terminal state;
* ``docs/events/examples/<state>.json``: one message body per terminal state, as the finalize service
  builds it (``order_core.services.finalize.completion_event``) for a sample order.

``tests/unit/test_event_schema.py`` fails when the committed files differ from a fresh generation.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from order_core.models.order import (
    COMPLETION_EVENT_SCHEMA_VERSION,
    TERMINAL_STATES,
    CompletionEvent,
    CompletionEventAttributes,
    LandedFile,
    OrderRecord,
)
from order_core.models.planet import OrderState
from order_core.services.finalize import completion_event

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = PROJECT_ROOT / "docs" / "events"
VERSION = COMPLETION_EVENT_SCHEMA_VERSION
SCHEMA_NAME = f"completion-event.v{VERSION}.schema.json"
ATTRIBUTES_NAME = f"completion-event-attributes.v{VERSION}.schema.json"
ID_BASE = "urn:planet-orders-gateway:events:"
SAMPLE_BUCKET = "planet-orders-results-123456789012"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"


def _schema(model: type[Any], name: str, title: str) -> dict[str, Any]:
    generated = model.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA, "$id": ID_BASE + name, **generated, "title": title}


def message_schema() -> dict[str, Any]:
    schema = _schema(CompletionEvent, SCHEMA_NAME, f"Planet order completion event, v{VERSION}")
    schema["description"] = (
        "The one message the gateway publishes per accepted order, when it reaches a terminal state. "
        "Optional fields may be added within a version; a field removed or changed makes a new version."
    )
    return schema


def attributes_schema() -> dict[str, Any]:
    schema = _schema(
        CompletionEventAttributes, ATTRIBUTES_NAME, f"Completion event message attributes, v{VERSION}"
    )
    schema["description"] = (
        "SNS message attributes of a completion event, all of DataType String. A subscription's filter "
        'policy matches them, e.g. {"tenant": ["acme"], "state": ["success"]}.'
    )
    return schema


def _sample_record(state: str) -> OrderRecord:
    """A sample order as the gateway records it when it ends in ``state``."""
    created = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
    files = {"success": 4, "partial": 2, "failed": 0, "cancelled": 0}[state]
    results = [
        LandedFile(
            path=f"20261129_101112_00_24a3/20261129_101112_00_24a3_3B_AnalyticMS_{n}.tif",
            key=f"orders/acme/4b9d2a1e-0c7f-4f4e-9a43-5d8f3c2b1a00/file_{n}.tif",
            size=52_428_800 + n,
            md5="0" * 32,
            sha256="0" * 64,
        )
        for n in range(files)
    ]
    return OrderRecord.model_validate(
        {
            "order_id": "4b9d2a1e-0c7f-4f4e-9a43-5d8f3c2b1a00",
            "tenant": "acme",
            "name": "fields-north-2026-11",
            "request": {"name": "fields-north-2026-11", "products": []},
            "upstream_order_id": None if state == "cancelled" else "a0c5e2b4-7f3d-4e61-b8a9-1d2c3e4f5a6b",
            "created_on": created,
            "last_modified": created + timedelta(hours=1),
            "results": results,
            "delivery_key": "orders/acme/4b9d2a1e-0c7f-4f4e-9a43-5d8f3c2b1a00/delivery.json"
            if files
            else None,
        }
    )


_HINTS = {
    "success": [],
    "partial": ["Planet could not deliver 2 of 4 items: 20261129_101112_00_24a3: asset not available"],
    "failed": [
        "Planet failed the order: no access to assets: PSScene/20261129_101112_00_24a3/ortho_analytic_4b"
    ],
    "cancelled": [],
}


def example(state: str) -> dict[str, Any]:
    """The message the finalize service publishes for the sample order ending in ``state``."""
    record = _sample_record(state)
    completed = record.created_on + timedelta(hours=1, minutes=7)
    event = completion_event(record, OrderState(state), list(_HINTS[state]), completed, SAMPLE_BUCKET)
    return event.model_dump(mode="json")


def asyncapi(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    message_examples = [
        {
            "name": state,
            "summary": f"An order that ended {state}",
            "headers": CompletionEventAttributes.of(CompletionEvent.model_validate(body)).model_dump(
                mode="json", exclude_none=True
            ),
            "payload": body,
        }
        for state, body in examples.items()
    ]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Planet Orders Gateway completion events",
            "version": f"{VERSION}.0.0",
            "description": (
                "Exactly one message per accepted order, published to the stack's SNS topic (output "
                "CompletionTopicArn, encrypted with the stack's KMS key) when the order reaches a terminal "
                "state. The body is JSON; with raw message delivery off, SQS and Lambda subscribers find it "
                "in the SNS envelope's Message field and the attributes in MessageAttributes. An operator's "
                "replay publishes the same message again with the attribute replay=true: drop duplicates by "
                "event_id. README.md, 'Subscribing to completion events', shows filtered subscriptions."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "completions": {
                "address": "CompletionTopic",
                "description": "The stack's SNS topic (AWS::SNS::Topic CompletionTopic).",
                "messages": {"orderCompleted": {"$ref": "#/components/messages/orderCompleted"}},
                "bindings": {"sns": {"name": "CompletionTopic", "bindingVersion": "1.0.0"}},
            }
        },
        "operations": {
            "receiveOrderCompleted": {
                "action": "receive",
                "channel": {"$ref": "#/channels/completions"},
                "messages": [{"$ref": "#/channels/completions/messages/orderCompleted"}],
            }
        },
        "components": {
            "messages": {
                "orderCompleted": {
                    "name": "order.completed",
                    "title": "Order completed",
                    "contentType": "application/json",
                    "headers": {"$ref": f"./{ATTRIBUTES_NAME}"},
                    "payload": {"$ref": f"./{SCHEMA_NAME}"},
                    "examples": message_examples,
                }
            }
        },
    }


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def documents() -> dict[Path, str]:
    """Every generated file and its text."""
    examples = {state: example(state) for state in TERMINAL_STATES}
    files = {
        EVENTS_DIR / SCHEMA_NAME: render_json(message_schema()),
        EVENTS_DIR / ATTRIBUTES_NAME: render_json(attributes_schema()),
        EVENTS_DIR
        / "asyncapi.yaml": "# Generated by `make event-schema` from order_core.models.order; do not edit.\n"
        + yaml.safe_dump(asyncapi(examples), sort_keys=False, allow_unicode=True, width=110),
    }
    for state, body in examples.items():
        files[EVENTS_DIR / "examples" / f"{state}.json"] = render_json(body)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway_local.event_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/events/ differs; write nothing")
    args = parser.parse_args(argv)
    stale = [
        path for path, text in documents().items() if not path.exists() or path.read_text("utf-8") != text
    ]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(PROJECT_ROOT)} (run `make event-schema`)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in documents().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(PROJECT_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
