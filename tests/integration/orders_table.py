"""OrdersTable as template.yaml declares it, for tests that need only the table (no whole stack)."""

from __future__ import annotations

from typing import Any

from harness import ROOT


def create_orders_table(dynamodb: Any, name: str = "orders") -> Any:
    """OrdersTable's keys and indexes from template.yaml, created in the current moto mock; its Table."""
    from gateway_local.template import load_template

    props = load_template(ROOT / "template.yaml").resources["OrdersTable"].properties
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **{k: props[k] for k in keys})
    return dynamodb.Table(name)
