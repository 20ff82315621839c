"""The fleet sweep's cursor in the fleet table: when the last sweep started and when it finished."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from order_core.adapters.aws import resource


class SweepCursor(BaseModel):
    """Item ``sweep#<scope>``: ``started_at`` bounds the next sweep's window, ``finished_at`` vouches."""

    started_at: datetime | None = None
    finished_at: datetime | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SweepCursorStore:
    def __init__(self, table_name: str, *, scope: str = "default", table: Any = None) -> None:
        self._table_name = table_name
        self._table = table
        self._key = {"pk": f"sweep#{scope}"}

    @property
    def table(self) -> Any:
        if self._table is None:
            self._table = resource("dynamodb").Table(self._table_name)
        return self._table

    def read(self) -> SweepCursor:
        item = self.table.get_item(Key=self._key, ConsistentRead=True).get("Item") or {}
        return SweepCursor.model_validate({k: item.get(k) for k in ("started_at", "finished_at")})

    def finished(self, started_at: datetime, finished_at: datetime) -> None:
        """A sweep that began at ``started_at`` saw every change up to then; it never moves back."""
        from botocore.exceptions import ClientError

        try:
            self.table.put_item(
                Item={**self._key, "started_at": _iso(started_at), "finished_at": _iso(finished_at)},
                ConditionExpression="attribute_not_exists(started_at) OR started_at <= :s",
                ExpressionAttributeValues={":s": _iso(started_at)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # a later sweep finished first: its cursor stands
