"""DynamoDB access for order records."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from order_core.adapters.aws import table as dynamodb_table
from order_core.models import changes as store_changes
from order_core.models.lifecycle import (
    ACTIVE_STATES,
    AT_PLANET,
    BEFORE_PLANET,
    FINAL_UPSTREAM,
    Phase,
    guard,
    replaceable_by,
)
from order_core.models.order import LandedFile, OrderRecord, utcnow
from order_core.models.planet import OrderState

if TYPE_CHECKING:
    from order_core.services.listing import Run
    from order_core.services.reconcile import BackfillProgress

# Stored as JSON strings / gzip so that floats (GeoJSON) and long file lists need no Decimal juggling and
# a 500-item order stays far below DynamoDB's 400 KB item limit.
_JSON_FIELDS = ("request",)
_DATETIME_FIELDS = (
    "created_on",
    "last_modified",
    "submit_started_at",
    "submit_lease_until",
    "submitted_at",
    "event_published_at",
    "last_own_poll_at",
)


def _iso(value: datetime) -> str:
    """One fixed-width format, so that ``created_on`` sorts as text in the tenant index."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Sparse index by Planet's order id (only orders Planet has carry one): the fleet sweep maps its list to
#: ours.
UPSTREAM_INDEX = "upstream"

#: Present only while an order is queued or running: the sparse ``active`` index counts them for stats.
ACTIVE_STATE = "active_state"
_ACTIVE = frozenset(state.value for state in ACTIVE_STATES)

# The guards of the lifecycle's writes, checked against models/lifecycle.py's TRANSITIONS at import.
_SUBMITTED_FROM = guard({Phase.SUBMITTING}, Phase.SUBMITTED)
_REJECTED_FROM = guard(set(BEFORE_PLANET), Phase.ACCEPTED)
_POLLED_IN = guard(set(AT_PLANET), Phase.DELIVERING)
_CANCEL_IN = tuple(sorted(BEFORE_PLANET))  # the flag changes, not the phase
_FINALIZED_FROM = guard({p for p in Phase if p is not Phase.FINALIZED}, Phase.FINALIZED)


# Keys of the list indexes (template.yaml, OrdersTable), written once at creation: tenant, name and
# created_on never change. State and last_modified are keys as they are, so updates move them along.
#: ``state-tenant_created``: one tenant's orders of one state, by creation.
_TENANT_CREATED = "tenant_created"
#: ``tenant_name-created_on``: one tenant's orders of one exact name (hashed: a key has a size limit).
_TENANT_NAME = "tenant_name"
#: ``tenant-name_key``: a tenant's orders by the leading characters of their name.
_NAME_KEY = "name_key"
#: What a list view needs of an order (order_view with_results=False): never the packed results.
_LIST_ATTRIBUTES = (
    "order_id",
    "tenant",
    "name",
    "source_type",
    "request_json",
    "state",
    "created_on",
    "last_modified",
    "last_message",
    "error_hints",
)


def _list_keys(tenant: str, name: str, created_on: str) -> dict[str, str]:
    from order_core.services.listing import NAME_KEY_CHARS

    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return {
        _TENANT_CREATED: f"{tenant}#{created_on}",
        _TENANT_NAME: f"{tenant}#{digest}",
        # "#": a key may not be empty; UTF-8 bytes sort as code points do, so names sort as in Python.
        _NAME_KEY: "#" + name[:NAME_KEY_CHARS],
    }


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
    item.update(_list_keys(record.tenant, record.name, item["created_on"]))
    return item


def _pack_results(results: Iterable[LandedFile]) -> bytes:
    return gzip.compress(json.dumps([r.model_dump() for r in results], separators=(",", ":")).encode())


#: The list-keys backfill's own item (cursor and done flag): not a UUID, so no API path reaches it, and
#: without a tenant it is in no list index.
_BACKFILL_ID = "#backfill/list-keys"

_INDEX_ONLY = frozenset({ACTIVE_STATE, _TENANT_CREATED, _TENANT_NAME, _NAME_KEY})


def _from_item(item: dict[str, Any]) -> OrderRecord:
    data: dict[str, Any] = {
        k: (int(v) if isinstance(v, Decimal) else v) for k, v in item.items() if k not in _INDEX_ONLY
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
        self._table = table if table is not None else dynamodb_table(table_name)

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
            # DynamoDB refuses an empty ExpressionAttributeValues (a write that only removes attributes).
            response = self._table.update_item(
                Key={"order_id": order_id},
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                **({"ExpressionAttributeValues": values} if values else {}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])

    # --- the lifecycle's writes (order_core.ports.OrderStore): every guard is here ------------------------

    def claim_submission(self, order_id: str, *, lease: timedelta) -> OrderRecord | None:
        from botocore.exceptions import ClientError

        now = utcnow()
        try:
            response = self._table.update_item(
                Key={"order_id": order_id},
                UpdateExpression=(
                    "SET #phase = :submitting, #started = if_not_exists(#started, :now), #modified = :now, "
                    "#lease = :lease ADD #attempts :one"
                ),
                # Fixed-width ISO timestamps (``_iso``) compare as text in time order.
                # An order cancelled while submitting is still claimed once its lease is free: an earlier
                # POST may have reached Planet, and only a claim may look for it (the service never POSTs it).
                ConditionExpression=(
                    "attribute_exists(order_id) "
                    "AND (attribute_not_exists(#rejected) OR #rejected = :false) "
                    "AND ((#phase = :accepted AND (attribute_not_exists(#cancel) OR #cancel = :false)) "
                    "OR (#phase = :submitting AND (attribute_not_exists(#lease) OR #lease < :now)))"
                ),
                ExpressionAttributeNames={
                    "#phase": "phase",
                    "#started": "submit_started_at",
                    "#modified": "last_modified",
                    "#lease": "submit_lease_until",
                    "#attempts": "submit_attempts",
                    "#cancel": "cancel_requested",
                    "#rejected": "rejected",
                },
                ExpressionAttributeValues={
                    ":submitting": Phase.SUBMITTING.value,
                    ":accepted": Phase.ACCEPTED.value,
                    ":now": _iso(now),
                    ":lease": _iso(now + lease),
                    ":one": 1,
                    ":false": False,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])

    def record_upstream_order(
        self,
        order_id: str,
        *,
        upstream_order_id: str,
        upstream_state: str,
        last_message: str,
        request: dict[str, Any] | None = None,
    ) -> OrderRecord | None:
        changes = store_changes.upstream_order_recorded(
            upstream_order_id, upstream_state, last_message, request
        )
        return self.update(order_id, changes, only_in_phases=_SUBMITTED_FROM, remove=("submit_lease_until",))

    def release_submission(self, order_id: str, *, attempts: int | None = None) -> None:
        changes = {} if attempts is None else {"submit_attempts": max(0, attempts)}
        self.update(order_id, changes, only_in_phases=(Phase.SUBMITTING,), remove=("submit_lease_until",))

    def reject(
        self, order_id: str, hints: list[str], request: dict[str, Any] | None = None
    ) -> OrderRecord | None:
        changes = store_changes.rejected(hints, request)
        return self.update(order_id, changes, only_in_phases=_REJECTED_FROM, remove=("submit_lease_until",))

    def forget_credentials(self, order_id: str, request: dict[str, Any]) -> OrderRecord | None:
        return self.update(order_id, {"request": request})

    def request_cancel(self, order_id: str, request: dict[str, Any] | None = None) -> OrderRecord | None:
        changes = store_changes.cancel_requested(request)
        return self.update(
            order_id,
            changes,
            only_in_phases=_CANCEL_IN,
            condition=(
                "(attribute_not_exists(cancel_requested) OR cancel_requested = :false) "
                "AND (attribute_not_exists(rejected) OR rejected = :false)"
            ),
            extra_values={":false": False},
        )

    def record_upstream_cancel(self, order_id: str, upstream_state: str) -> OrderRecord | None:
        changes = store_changes.upstream_cancelled(upstream_state)
        return self.update(order_id, changes, only_in_phases=(Phase.SUBMITTED,))

    def record_poll(
        self,
        order_id: str,
        *,
        upstream_state: OrderState,
        last_message: str | None = None,
        error_hints: list[str] | None = None,
        own_poll: bool = True,
    ) -> OrderRecord | None:
        # Where the poll moves the order depends on where it is: one guarded write per possible phase (the
        # second only for the rare poll of an order already delivering).
        # Never backwards (lifecycle.may_replace): the recorded upstream state is absent or one this report
        # may replace.
        replaceable = replaceable_by(upstream_state)
        placeholders = [f":was{k}" for k in range(len(replaceable))]
        not_backwards = (
            f"(attribute_not_exists(upstream_state) OR upstream_state IN ({', '.join(placeholders)}))"
        )
        for current in (Phase.SUBMITTED, Phase.DELIVERING):
            moved = store_changes.polled(
                current, upstream_state, last_message, error_hints, own_poll=own_poll
            )
            record = self.update(
                order_id,
                moved,
                only_in_phases=(current,),
                condition=not_backwards,
                extra_values=dict(zip(placeholders, replaceable, strict=True)),
            )
            if record is not None:
                return record
        return None

    def record_unusable_poll(self, order_id: str, count: int) -> OrderRecord | None:
        return self.update(order_id, {"unusable_polls": count}, only_in_phases=_POLLED_IN)

    def record_results(
        self,
        order_id: str,
        results: Iterable[LandedFile],
        *,
        pending: list[str],
        landed_bytes: int,
        last_message: str | None = None,
        delivery_key: str | None = None,
        error_hints: list[str] | None = None,
    ) -> OrderRecord | None:
        changes = store_changes.results_recorded(
            results, pending, landed_bytes, last_message, delivery_key, error_hints
        )
        return self.update(order_id, changes, only_in_phases=(Phase.DELIVERING,))

    # --- waiting for a change (services/wake.py) ----------------------------------------------------------

    def watch(self, order_id: str, task_token: str) -> bool | None:
        from botocore.exceptions import ClientError

        changes = store_changes.watching(task_token)
        (watched,) = store_changes.WATCHED
        try:
            response = self._table.update_item(
                Key={"order_id": order_id},
                UpdateExpression="SET #token = :token, #pending = :pending",
                ConditionExpression="attribute_exists(order_id) AND #phase = :watched",
                ExpressionAttributeNames={
                    "#token": "wake_token",
                    "#pending": "wake_pending",
                    "#phase": "phase",
                },
                ExpressionAttributeValues={
                    ":token": changes["wake_token"],
                    ":pending": changes["wake_pending"],
                    ":watched": watched.value,
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        before = response.get("Attributes", {})
        return bool(before.get("wake_pending", False)) or before.get("upstream_state") in FINAL_UPSTREAM

    def take_wake_token(self, order_id: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            response = self._table.update_item(
                Key={"order_id": order_id},
                UpdateExpression="REMOVE #token",
                ConditionExpression="attribute_exists(#token)",
                ExpressionAttributeNames={"#token": "wake_token"},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        token = response.get("Attributes", {}).get("wake_token")
        return str(token) if token else None

    def defer_wake(self, order_id: str) -> bool:
        changes = store_changes.wake_deferred()
        return self.update(order_id, changes, only_in_phases=sorted(store_changes.WAKE_KEPT)) is not None

    def followed_by_upstream_ids(
        self, upstream_order_ids: Iterable[str]
    ) -> dict[str, tuple[str, str | None]]:
        """One Query of the sparse ``upstream`` index per id (a sweep lists only the orders that changed)."""
        from boto3.dynamodb.conditions import Key

        found: dict[str, tuple[str, str | None]] = {}
        for upstream_id in dict.fromkeys(upstream_order_ids):
            page = self._table.query(
                IndexName=UPSTREAM_INDEX, KeyConditionExpression=Key("upstream_order_id").eq(upstream_id)
            )
            for item in page.get("Items", []):
                if item.get("phase") == Phase.SUBMITTED.value:
                    state = item.get("upstream_state")
                    found[upstream_id] = (str(item["order_id"]), str(state) if state is not None else None)
        return found

    def claim_completion_event(self, order_id: str, at: datetime) -> OrderRecord | None:
        return self.update(
            order_id, {"event_published_at": at}, condition="attribute_not_exists(event_published_at)"
        )

    def release_completion_event(self, order_id: str) -> None:
        self.update(order_id, {}, remove=("event_published_at",))

    def finalize(
        self, order_id: str, *, state: OrderState, last_message: str, hints: list[str], at: datetime
    ) -> OrderRecord | None:
        changes = store_changes.finalized(state, last_message, hints, at)
        return self.update(order_id, changes, only_in_phases=_FINALIZED_FROM)

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

    def backfill_list_keys(self, *, max_items: int) -> BackfillProgress:
        """One paced step adding the list-index keys to orders written before those indexes existed.

        Reads at most ``max_items`` items of the table (one Scan page) after the cursor the last step saved,
        adds ``tenant_created``, ``tenant_name`` and ``name_key`` to those that lack them (a conditional
        update: never twice, never to an order deleted meanwhile), then saves the cursor. Items written
        since the indexes exist carry the keys already, so one pass over the table completes it; after
        that a step reads one item.
        """
        from boto3.dynamodb.conditions import Attr
        from botocore.exceptions import ClientError

        from order_core.services.reconcile import BackfillProgress

        saved = self._table.get_item(Key={"order_id": _BACKFILL_ID}, ConsistentRead=True).get("Item") or {}
        if saved.get("done"):
            return BackfillProgress(scanned=0, updated=0, done=True)
        kwargs: dict[str, Any] = {
            "Limit": max(1, max_items),
            "FilterExpression": Attr(_NAME_KEY).not_exists() & Attr("tenant").exists(),
            "ProjectionExpression": "order_id, tenant, #n, created_on",
            "ExpressionAttributeNames": {"#n": "name"},  # a reserved word
        }
        if saved.get("cursor"):
            kwargs["ExclusiveStartKey"] = json.loads(str(saved["cursor"]))
        page = self._table.scan(**kwargs)
        updated = 0
        for item in page.get("Items", []):
            keys = _list_keys(str(item["tenant"]), str(item.get("name", "")), str(item["created_on"]))
            try:
                self._table.update_item(
                    Key={"order_id": item["order_id"]},
                    UpdateExpression="SET #a = :a, #b = :b, #c = :c",
                    ConditionExpression="attribute_exists(order_id) AND attribute_not_exists(#c)",
                    ExpressionAttributeNames={"#a": _TENANT_CREATED, "#b": _TENANT_NAME, "#c": _NAME_KEY},
                    ExpressionAttributeValues={
                        ":a": keys[_TENANT_CREATED],
                        ":b": keys[_TENANT_NAME],
                        ":c": keys[_NAME_KEY],
                    },
                )
                updated += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        last = page.get("LastEvaluatedKey")
        self._table.put_item(
            Item={
                "order_id": _BACKFILL_ID,
                "cursor": json.dumps(last, default=str) if last else "",
                "done": last is None,
                "updated_at": _iso(utcnow()),
            }
        )
        return BackfillProgress(scanned=int(page.get("ScannedCount", 0)), updated=updated, done=last is None)

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

    def read_run(self, tenant: str, run: Run, *, first_batch: int = 100) -> Iterator[OrderRecord]:
        """A tenant's orders in the order of ``run`` (order_core.services.listing), read lazily.

        Each Query asks for ``first_batch`` items, then twice as many as the last, up to 1,000, so a
        caller that stops early reads little past what it used. The records carry what a list view
        shows, not the results.
        """
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {"ScanIndexForward": not run.descending}
        if run.order_by in ("created_on", "last_modified"):
            low, high = _bound(run.start), _bound(run.end, exclusive=True)
            if run.order_by == "created_on" and run.state is not None:
                kwargs["IndexName"] = "state-tenant_created"
                condition = Key("state").eq(run.state) & Key(_TENANT_CREATED).between(
                    f"{tenant}#{low or ''}", f"{tenant}#{high or '~'}"
                )
            else:
                if run.order_by == "created_on" and run.name is not None:
                    kwargs["IndexName"] = "tenant_name-created_on"
                    partition = Key(_TENANT_NAME).eq(_list_keys(tenant, run.name, "")[_TENANT_NAME])
                else:
                    kwargs["IndexName"] = f"tenant-{run.order_by}"
                    partition = Key("tenant").eq(tenant)
                sort_key = Key(run.order_by)
                if low is not None and high is not None:
                    condition = partition & sort_key.between(low, high)
                elif low is not None:
                    condition = partition & sort_key.gte(low)
                elif high is not None:
                    condition = partition & sort_key.lte(high)
                else:
                    condition = partition
        elif run.order_by == "name":
            kwargs["IndexName"] = "tenant-name_key"
            condition = Key("tenant").eq(tenant)
            if run.name_bound is not None:
                bound = Key(_NAME_KEY)
                key = "#" + run.name_bound
                condition = condition & (bound.lte(key) if run.descending else bound.gte(key))
        else:
            raise ValueError(f"no index orders by {run.order_by!r}")
        kwargs["KeyConditionExpression"] = condition
        names = {f"#p{i}": attribute for i, attribute in enumerate(_LIST_ATTRIBUTES)}
        kwargs["ProjectionExpression"] = ", ".join(names)
        kwargs["ExpressionAttributeNames"] = names
        batch = max(1, first_batch)
        while True:
            page = self._table.query(**kwargs, Limit=batch)
            for item in page.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            batch = min(batch * 2, 1000)

    def active_order_ids_of(self, tenant: str, state: str, *, limit: int) -> list[str]:
        """Up to ``limit`` ids of the tenant's orders in ``state`` (queued or running): the active index."""
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {
            "IndexName": "active",
            "KeyConditionExpression": Key(ACTIVE_STATE).eq(state) & Key("tenant").eq(tenant),
        }
        ids: list[str] = []
        while len(ids) < limit:
            page = self._table.query(**kwargs, Limit=limit - len(ids))
            ids.extend(str(item["order_id"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return ids[:limit]


def _bound(moment: datetime | None, *, exclusive: bool = False) -> str | None:
    """An inclusive bound on a timestamp key in ``_iso``'s format (an exclusive one, one microsecond less).

    Formatted field by field: strftime writes years before 1000 with fewer than four digits, which would
    not sort as text. Bounds past what the format can hold are open.
    """
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if exclusive:
        if moment == datetime.min.replace(tzinfo=UTC):
            return "0"  # below every timestamp: an empty range
        moment -= timedelta(microseconds=1)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond:06d}Z"
    )
