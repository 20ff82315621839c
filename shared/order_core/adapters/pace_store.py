"""Planet request slots in DynamoDB: the ``PaceStore`` every function of a deployment shares.

One item per API-key scope and endpoint in the fleet table, ``pk = "pace#<scope>#<endpoint>"`` with
``next_free`` (epoch seconds, a number). Slots are handed out by conditional writes alone, never read,
computed and written back, so any number of Lambdas can reserve at once and each slot goes to one caller:

1. the endpoint is idle (``next_free`` absent or in the past): ``next_free = now + interval``, slot ``now``;
2. otherwise it is busy: ``next_free = next_free + interval`` if the current ``next_free`` lies within the
   caller's horizon, and the slot is the ``next_free`` it replaced (``UPDATED_NEW`` minus the interval).

``next_free`` only ever grows (both writes add to it or start from ``now`` past it; ``hold`` refuses to move
it back), so once write 1 fails, write 2's slot is always in the future: no second read is needed to take a
slot, and a caller whose clock lags still gets a slot after everyone else's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from order_core.adapters.aws import resource
from order_core.errors import PacingUnavailable

__all__ = ["DynamoPaceStore"]

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _number(value: float) -> Decimal:
    # Microseconds are far finer than any interval; rounding keeps the Decimal exact for DynamoDB.
    return Decimal(f"{value:.6f}")


class DynamoPaceStore:
    """``services.pacing.PaceStore`` over the fleet table (template.yaml ``FleetTable``).

    Failures of DynamoDB itself (throttling, an outage, a missing permission) raise ``PacingUnavailable``;
    the caller decides what an unpaced request is worth.
    """

    def __init__(self, table_name: str, table: Any = None) -> None:
        self._table_name = table_name
        self._table_override = table

    @property
    def _table(self) -> Any:
        # Created on first use, not in __init__: building the Planet client must not cost a boto3 resource.
        if self._table_override is None:
            self._table_override = resource("dynamodb").Table(self._table_name)
        return self._table_override

    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        try:
            self._table.update_item(
                Key={"pk": key},
                UpdateExpression="SET next_free = :next",
                ConditionExpression="attribute_not_exists(next_free) OR next_free <= :now",
                ExpressionAttributeValues={":next": _number(now + interval), ":now": _number(now)},
            )
            return now
        except ClientError as exc:
            if exc.response["Error"]["Code"] != _CONDITION_FAILED:
                raise PacingUnavailable(f"the pace store could not be written: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise PacingUnavailable(f"the pace store could not be reached: {_reason(exc)}") from exc
        step = _number(interval)
        try:
            answer = self._table.update_item(
                Key={"pk": key},
                UpdateExpression="SET next_free = next_free + :interval",
                ConditionExpression="next_free <= :latest",
                ExpressionAttributeValues={
                    ":interval": step,
                    ":latest": _number(now + horizon),
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == _CONDITION_FAILED:
                return None  # the next free slot is beyond the horizon: nothing taken
            raise PacingUnavailable(f"the pace store could not be written: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise PacingUnavailable(f"the pace store could not be reached: {_reason(exc)}") from exc
        return float(Decimal(answer["Attributes"]["next_free"]) - step)  # exact: the slot it replaced

    def hold(self, key: str, until: float) -> None:
        try:
            self._table.update_item(
                Key={"pk": key},
                UpdateExpression="SET next_free = :until",
                ConditionExpression="attribute_not_exists(next_free) OR next_free < :until",
                ExpressionAttributeValues={":until": _number(until)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != _CONDITION_FAILED:  # already held at least that long
                raise PacingUnavailable(f"the pace store could not be written: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise PacingUnavailable(f"the pace store could not be reached: {_reason(exc)}") from exc

    def next_free(self, key: str) -> float:
        try:
            item = self._table.get_item(Key={"pk": key}, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise PacingUnavailable(f"the pace store could not be read: {_reason(exc)}") from exc
        return float(item["next_free"]) if item and "next_free" in item else 0.0


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
