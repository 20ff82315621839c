"""DynamoDB access for order records."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from order_core.adapters.aws import resource
from order_core.models.order import LandedFile, OrderRecord, Phase

# Stored as JSON strings / gzip so that floats (GeoJSON) and long file lists need no Decimal juggling and
# a 500-item order stays far below DynamoDB's 400 KB item limit.
_JSON_FIELDS = ("request",)
_DATETIME_FIELDS = ("created_on", "last_modified", "submit_started_at", "submitted_at", "event_published_at")


def _iso(value: datetime) -> str:
    """One fixed-width format, so that ``created_on`` sorts as text in the tenant index."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Present only while an order is queued or running: the sparse ``active`` index counts them for stats.
ACTIVE_STATE = "active_state"
_ACTIVE = ("queued", "running")


def _to_item(record: OrderRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude={"results", "request"})
    item = {k: v for k, v in data.items() if v is not None}
    if record.state.value in _ACTIVE:
        item[ACTIVE_STATE] = record.state.value
    for field in _DATETIME_FIELDS:
        if (value := getattr(record, field)) is not None:
            item[field] = _iso(value)
    item["request_json"] = json.dumps(record.request, separators=(",", ":"))
    item["results_gz"] = _pack_results(record.results)
    return item


def _pack_results(results: Iterable[LandedFile]) -> bytes:
    return gzip.compress(json.dumps([r.model_dump() for r in results], separators=(",", ":")).encode())


def _from_item(item: dict[str, Any]) -> OrderRecord:
    data: dict[str, Any] = {
        k: (int(v) if isinstance(v, Decimal) else v) for k, v in item.items() if k != ACTIVE_STATE
    }
    data["request"] = json.loads(str(data.pop("request_json", "{}")))
    packed = data.pop("results_gz", None)
    data["results"] = json.loads(gzip.decompress(bytes(packed))) if packed else []
    return OrderRecord.model_validate(data)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Phase):
        return value.value
    if hasattr(value, "value") and isinstance(value.value, str):  # other str enums (OrderState)
        return value.value
    return value


class OrdersRepository:
    """Reads and writes order records; every state change is a conditional write."""

    def __init__(self, table_name: str, table: Any = None) -> None:
        self._table = table if table is not None else resource("dynamodb").Table(table_name)

    def create(self, record: OrderRecord) -> bool:
        """Write a new record; False if one with this id already exists."""
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(Item=_to_item(record), ConditionExpression="attribute_not_exists(order_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, order_id: str) -> OrderRecord | None:
        item = self._table.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def delete(self, order_id: str) -> None:
        self._table.delete_item(Key={"order_id": order_id})

    def update(
        self,
        order_id: str,
        changes: dict[str, Any],
        *,
        only_in_phases: Iterable[Phase] | None = None,
        condition: str | None = None,
        extra_values: dict[str, Any] | None = None,
        remove: Iterable[str] = (),
    ) -> OrderRecord | None:
        """Apply ``changes``; with ``only_in_phases`` only if the record is in one of them.

        Returns the updated record, or None when the condition did not hold (someone else moved it on).
        """
        from botocore.exceptions import ClientError

        changes = dict(changes)
        removals = list(remove)
        if "state" in changes:
            state = _value(changes["state"])
            if state in _ACTIVE:
                changes[ACTIVE_STATE] = state
            else:
                removals.append(ACTIVE_STATE)
        names: dict[str, str] = {}
        values: dict[str, Any] = dict(extra_values or {})
        sets = []
        for i, (field, value) in enumerate(changes.items()):
            if field == "results":
                field, value = "results_gz", _pack_results(value)
            elif field in _JSON_FIELDS:
                field, value = f"{field}_json", json.dumps(value, separators=(",", ":"))
            names[f"#f{i}"] = field
            values[f":v{i}"] = _value(value)
            sets.append(f"#f{i} = :v{i}")
        for j, field in enumerate(removals):
            names[f"#r{j}"] = field
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removals:
            clauses.append("REMOVE " + ", ".join(f"#r{j}" for j in range(len(removals))))
        expression = " ".join(clauses)

        conditions = ["attribute_exists(order_id)"]
        if only_in_phases is not None:
            phase_values = [f":p{k}" for k, _ in enumerate(only_in_phases)]
            for k, phase in enumerate(only_in_phases):
                values[f":p{k}"] = phase.value
            names["#phase"] = "phase"
            conditions.append(f"#phase IN ({', '.join(phase_values)})")
        if condition:
            conditions.append(condition)
        try:
            response = self._table.update_item(
                Key={"order_id": order_id},
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])

    def count_active(self, state: str, tenant: str | None = None) -> int:
        """How many orders are in ``state`` (queued or running), for one tenant or for everyone."""
        from boto3.dynamodb.conditions import Key

        condition = Key(ACTIVE_STATE).eq(state)
        if tenant is not None:
            condition = condition & Key("tenant").eq(tenant)
        kwargs: dict[str, Any] = {
            "IndexName": "active",
            "KeyConditionExpression": condition,
            "Select": "COUNT",
        }
        total = 0
        while True:
            page = self._table.query(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_for_tenant(self, tenant: str, *, newest_first: bool = True) -> Iterable[OrderRecord]:
        """Every record of a tenant, through the ``tenant-created_on`` index."""
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": "tenant-created_on",
            "KeyConditionExpression": Key("tenant").eq(tenant),
            "ScanIndexForward": not newest_first,
        }
        while True:
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active_order_ids(self, page_size: int = 500) -> Iterable[list[str]]:
        """The ids of every queued or running order, a page at a time (the sparse ``active`` index)."""
        for state in _ACTIVE:
            kwargs: dict[str, Any] = {
                "IndexName": "active",
                "KeyConditionExpression": "#s = :s",
                "ExpressionAttributeNames": {"#s": ACTIVE_STATE},
                "ExpressionAttributeValues": {":s": state},
                "Limit": page_size,
            }
            while True:
                page = self._table.query(**kwargs)
                ids = [str(item["order_id"]) for item in page.get("Items", [])]
                if ids:
                    yield ids
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
