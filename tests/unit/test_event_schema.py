"""docs/events/: the completion event's published contract, generated from its model and kept in step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from gateway_local import event_schema
from jsonschema import Draft202012Validator
from order_core.adapters.messaging import CompletionEvents
from order_core.models.order import TERMINAL_STATES, CompletionEvent, OrderRecord
from order_core.models.planet import OrderState
from order_core.services.finalize import completion_event


class _RecordingSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.published.append(kwargs)
        return {"MessageId": "m-1"}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _published(event: CompletionEvent, *, replay: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    sns = _RecordingSns()
    CompletionEvents("arn:aws:sns:us-east-1:123456789012:t", sns=sns).publish(event, replay=replay)
    [call] = sns.published
    attributes = {name: value["StringValue"] for name, value in call["MessageAttributes"].items()}
    assert {value["DataType"] for value in call["MessageAttributes"].values()} == {"String"}
    return json.loads(call["Message"]), attributes


def _event(state: OrderState) -> CompletionEvent:
    record = OrderRecord(order_id="o-1", tenant="acme", name="n", request={})
    return completion_event(record, state, [], datetime(2026, 11, 30, tzinfo=UTC), "bucket")


def test_event_schema_committed_files_match_a_fresh_generation() -> None:
    for path, text in event_schema.documents().items():
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        assert committed == text, f"{path} is stale: run `make event-schema` and commit it"


def test_event_schema_is_valid_json_schema_2020_12_and_versioned() -> None:
    schema = event_schema.message_schema()

    _validator(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == event_schema.VERSION
    assert f"completion-event.v{event_schema.VERSION}.schema.json" == event_schema.SCHEMA_NAME
    assert set(schema["required"]) == set(CompletionEvent.model_fields)  # every field in every message


def test_event_schema_has_a_valid_example_per_terminal_state() -> None:
    validator = _validator(event_schema.message_schema())
    examples = sorted((event_schema.EVENTS_DIR / "examples").glob("*.json"))

    assert (
        {path.stem for path in examples}
        == set(TERMINAL_STATES)
        == {"success", "partial", "failed", "cancelled"}
    )
    for path in examples:
        body = json.loads(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(body)) == [], path
        assert body["state"] == path.stem


@pytest.mark.parametrize("state", TERMINAL_STATES)
def test_event_schema_published_message_and_attributes_validate(state: str) -> None:
    body, attributes = _published(_event(OrderState(state)))

    assert list(_validator(event_schema.message_schema()).iter_errors(body)) == []
    assert list(_validator(event_schema.attributes_schema()).iter_errors(attributes)) == []
    assert attributes == {
        "state": state,
        "tenant": "acme",
        "source_type": "scenes",
        "event_id": body["event_id"],
        "schema_version": "1",
    }


def test_event_schema_replay_is_marked_by_an_attribute_only() -> None:
    event = _event(OrderState.success)

    first_body, first_attributes = _published(event)
    replay_body, replay_attributes = _published(event, replay=True)

    assert replay_body == first_body
    assert replay_attributes == {**first_attributes, "replay": "true"}
    assert list(_validator(event_schema.attributes_schema()).iter_errors(replay_attributes)) == []


@pytest.mark.parametrize("state", ["queued", "running"])
def test_event_schema_non_terminal_state_is_refused_by_schema_and_model(state: str) -> None:
    body = json.loads((event_schema.EVENTS_DIR / "examples" / "success.json").read_text(encoding="utf-8"))

    assert list(_validator(event_schema.message_schema()).iter_errors({**body, "state": state}))
    with pytest.raises(ValueError, match="terminal"):
        CompletionEvent.model_validate({**body, "state": state})


def test_event_schema_asyncapi_document_references_the_schemas_and_carries_the_examples() -> None:
    document = yaml.safe_load((event_schema.EVENTS_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))
    message = document["components"]["messages"]["orderCompleted"]

    assert document["asyncapi"].startswith("3.")
    assert message["payload"] == {"$ref": f"./{event_schema.SCHEMA_NAME}"}
    assert message["headers"] == {"$ref": f"./{event_schema.ATTRIBUTES_NAME}"}
    assert (event_schema.EVENTS_DIR / event_schema.ATTRIBUTES_NAME).exists()
    assert [example["name"] for example in message["examples"]] == TERMINAL_STATES
    attributes = _validator(event_schema.attributes_schema())
    for example in message["examples"]:
        assert list(attributes.iter_errors(example["headers"])) == []


class _OneOrderRepo:
    def __init__(self, record: OrderRecord) -> None:
        self.record = record

    def get(self, order_id: str) -> OrderRecord | None:
        return self.record if order_id == self.record.order_id else None


def _finalized(**changes: Any) -> OrderRecord:
    published = datetime(2026, 11, 30, 10, 7, tzinfo=UTC)
    fields: dict[str, Any] = {
        "state": OrderState.failed,
        "phase": "finalized",
        "event_published_at": published,
    }
    return OrderRecord(order_id="o-1", tenant="acme", name="n", request={}, **{**fields, **changes})


def test_finalize_replay_republishes_the_same_event_marked_replay() -> None:
    from order_core.services.finalize import FinalizeService

    record = _finalized(error_hints=["Planet failed the order"])
    sns = _RecordingSns()
    service = FinalizeService(_OneOrderRepo(record), CompletionEvents("arn:t", sns=sns), "bucket")  # type: ignore[arg-type]

    event = service.replay("o-1")

    [call] = sns.published
    assert call["MessageAttributes"]["replay"] == {"DataType": "String", "StringValue": "true"}
    assert json.loads(call["Message"]) == event.model_dump(mode="json")
    assert event == completion_event(
        record, OrderState.failed, ["Planet failed the order"], record.event_published_at, "bucket"
    )  # type: ignore[arg-type]
    assert event.completed_on == "2026-11-30T10:07:00.000Z"


@pytest.mark.parametrize(
    "changes", [{"phase": "delivering", "state": "running"}, {"event_published_at": None}]
)
def test_finalize_replay_of_an_order_not_yet_published_is_refused(changes: dict[str, Any]) -> None:
    from order_core.services.finalize import FinalizeService

    sns = _RecordingSns()
    service = FinalizeService(_OneOrderRepo(_finalized(**changes)), CompletionEvents("arn:t", sns=sns), "b")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="not published"):
        service.replay("o-1")
    assert sns.published == []
