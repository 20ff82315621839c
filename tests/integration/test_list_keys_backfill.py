"""Orders written before the list indexes existed get their keys from the reconciler's paced backfill.

Under moto: old-format items (no ``tenant_created``, ``tenant_name``, ``name_key``) are invisible to
``?state=``, ``?name=`` and ``sort_by=name``; the backfill adds the keys a bounded step at a time, resumes
from its saved cursor, never touches an order twice or recreates a deleted one, and stops once a pass is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from order_core.models.order import OrderRecord
from order_core.models.planet import OrderState
from order_core.services import reconcile
from order_core.services.listing import parse_query
from order_core.services.orders import OrderService
from order_core.services.reconcile import ReconcileService
from orders_table import create_orders_table

TENANT = "old"
BASE = "https://gateway.example/compute/ops"
OLD, NEW = 25, 5
T0 = datetime(2024, 6, 1, tzinfo=UTC)
LIST_KEYS = ("tenant_created", "tenant_name", "name_key")


@pytest.fixture
def table() -> Iterator[Any]:
    import boto3
    from moto import mock_aws
    from order_core.adapters.orders_repo import OrdersRepository

    with mock_aws():
        table = create_orders_table(boto3.resource("dynamodb", region_name="us-east-1"))
        repo = OrdersRepository("orders", table=table)
        for i in range(OLD + NEW):
            record = OrderRecord(
                order_id=f"{i:08d}-0000-4000-8000-000000000000",
                tenant=TENANT,
                name="needle" if i % 5 == 0 else f"order {i:03d}",
                request={"name": "x", "products": [{"item_ids": ["a"], "item_type": "PSScene"}]},
                state=OrderState.success,
                created_on=T0 + timedelta(minutes=i),
                last_modified=T0 + timedelta(minutes=i),
            )
            assert repo.create(record)
            if i < OLD:  # as written before the list indexes: without their keys
                table.update_item(
                    Key={"order_id": record.order_id},
                    UpdateExpression="REMOVE tenant_created, tenant_name, name_key",
                )
        yield table


def _repo(table: Any) -> Any:
    from order_core.adapters.orders_repo import OrdersRepository

    return OrdersRepository("orders", table=table)


def _listed(table: Any, query: dict[str, str]) -> int:
    service = OrderService(_repo(table), queue=mock.Mock())
    body = service.list_page(
        TENANT, parse_query({k: [v] for k, v in {**query, "page_size": "250"}.items()}), BASE
    )
    return len(body["orders"])


def _keyed(table: Any) -> int:
    items = table.scan()["Items"]
    return sum(all(key in item for key in LIST_KEYS) for item in items if item.get("tenant"))


def test_backfill_list_keys_steps_resume_from_the_cursor_until_every_old_order_is_listed(table: Any) -> None:
    repo = _repo(table)
    assert _listed(table, {"state": "success"}) == NEW  # the old orders are invisible to indexed lists
    assert _listed(table, {"name": "needle"}) == 1

    first = repo.backfill_list_keys(max_items=10)
    assert (first.scanned, first.done) == (10, False)
    assert _keyed(table) == NEW + first.updated  # only what that step read

    steps = [first]
    while not steps[-1].done:
        steps.append(repo.backfill_list_keys(max_items=10))
        assert len(steps) < 10, "the backfill does not finish"

    assert sum(step.updated for step in steps) == OLD  # each old order once
    assert sum(step.scanned for step in steps) <= OLD + NEW + 2  # one pass (and its cursor item)
    assert _keyed(table) == OLD + NEW
    assert _listed(table, {"state": "success"}) == OLD + NEW
    assert _listed(table, {"name": "needle"}) == (OLD + NEW) // 5
    assert _listed(table, {"sort_by": "name"}) == OLD + NEW
    assert _listed(table, {}) == OLD + NEW  # the cursor item is in no list
    assert repo.backfill_list_keys(max_items=10).scanned == 0  # done: later runs read nothing


def test_backfill_list_keys_never_recreates_an_order_deleted_after_the_scan(table: Any) -> None:
    repo = _repo(table)
    victim = f"{3:08d}-0000-4000-8000-000000000000"
    original_scan = table.scan

    def scan_then_delete(**kwargs: Any) -> Any:
        page = original_scan(**kwargs)
        table.delete_item(Key={"order_id": victim})  # deleted between the read and the update
        return page

    with mock.patch.object(table, "scan", scan_then_delete):
        step = repo.backfill_list_keys(max_items=100)

    assert step.done
    assert step.updated == OLD - 1
    assert "Item" not in table.get_item(Key={"order_id": victim})


def test_reconcile_run_takes_a_bounded_backfill_step_each_run(table: Any) -> None:
    executions, intake = mock.Mock(), mock.Mock()
    executions.running_order_ids.return_value = set()
    service = ReconcileService(_repo(table), executions, intake, backfill=_repo(table))

    with (
        mock.patch.object(reconcile, "BACKFILL_ITEMS_PER_RUN", 12),
        mock.patch.object(reconcile, "BACKFILL_PAGE", 5),
    ):
        runs = [service.run().backfilled for _ in range(4)]

    assert sum(runs) == OLD
    assert runs[0] <= 12 and runs[-1] == 0
    assert _keyed(table) == OLD + NEW


def test_reconcile_run_survives_a_failing_backfill_step(table: Any) -> None:
    failing = mock.Mock()
    failing.backfill_list_keys.side_effect = RuntimeError("throttled")
    executions = mock.Mock()
    executions.running_order_ids.return_value = set()

    report = ReconcileService(_repo(table), executions, mock.Mock(), backfill=failing).run()

    assert report.backfilled == 0
    failing.backfill_list_keys.assert_called_once()
