"""The order store's contract (``tests/order_store_contract.py``) held by the DynamoDB adapter under moto,
its table created as template.yaml declares it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import ROOT
from order_store_contract import *  # noqa: F403 - the contract's tests, collected here

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


@pytest.fixture
def store() -> Iterator[object]:
    import boto3
    from gateway_local.template import load_template
    from moto import mock_aws
    from order_core.adapters.orders_repo import OrdersRepository

    properties = load_template(ROOT / "template.yaml").resources["OrdersTable"].properties
    with mock_aws():
        boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="orders-contract",
            BillingMode="PAY_PER_REQUEST",
            **{key: properties[key] for key in _TABLE_KEYS if key in properties},
        )
        # Its own table as deployed: reads by key over signed HTTP (adapters/dynamodb_http.py), rest boto3.
        yield OrdersRepository("orders-contract")
