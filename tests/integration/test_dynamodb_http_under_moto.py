"""Reads by key over signed HTTP (order_core.adapters.dynamodb_http) against moto: what boto3 reads, read.

In-process (``mock_aws``, through the ``requests`` transport tests/conftest.py installs) and over a real
socket to a moto server with the transport the functions use (``http.client``), as the local stack runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from order_core.adapters import dynamodb_http
from order_core.adapters.dynamodb_http import DynamoDBTable

ITEM = {
    "order_id": "o-1",
    "count": 42,
    "ratio": Decimal("0.125"),
    "flag": False,
    "nothing": None,
    "blob": b"\x00\x01\xff",
    "tags": {"a", "b"},
    "sizes": {1, Decimal("2.5")},
    "nested": {"list": ["x", 1, {}], "text": "é ✓"},
}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """boto3's Binary as bytes (what the repositories use of it)."""
    from boto3.dynamodb.types import Binary

    return {key: bytes(value.value) if isinstance(value, Binary) else value for key, value in item.items()}


@pytest.fixture
def boto3_table() -> Iterator[Any]:
    import boto3
    from moto import mock_aws
    from orders_table import create_orders_table

    with mock_aws():
        yield create_orders_table(boto3.resource("dynamodb", region_name="us-east-1"))


def test_get_item_under_moto_reads_what_boto3_reads(boto3_table: Any) -> None:
    boto3_table.put_item(Item=ITEM)

    ours = DynamoDBTable("orders").get_item(Key={"order_id": "o-1"}, ConsistentRead=True)
    theirs = boto3_table.get_item(Key={"order_id": "o-1"}, ConsistentRead=True)

    assert ours["Item"] == _plain(theirs["Item"])
    assert "Item" not in DynamoDBTable("orders").get_item(Key={"order_id": "o-2"})


def test_get_item_under_moto_unknown_table_raises_as_boto3_does(boto3_table: Any) -> None:
    with pytest.raises(ClientError) as theirs:
        boto3_table.meta.client.get_item(TableName="no-such-table", Key={"order_id": {"S": "o-1"}})
    with pytest.raises(ClientError) as ours:
        DynamoDBTable("no-such-table").get_item(Key={"order_id": "o-1"})

    assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"]
    assert ours.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_orders_repository_over_a_socket_creates_with_boto3_and_reads_over_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer
    from order_core.adapters import aws
    from order_core.adapters.orders_repo import OrdersRepository
    from order_core.models.planet import OrderRequest
    from order_core.services.orders import new_record
    from orders_table import create_orders_table

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setattr(dynamodb_http, "transport", dynamodb_http.http_client_transport)
        aws.resource.cache_clear()  # a resource built before would point at the in-process mock
        create_orders_table(boto3.resource("dynamodb"))
        repo = OrdersRepository("orders")
        request = OrderRequest.model_validate(
            {
                "name": "over http",
                "products": [{"item_ids": ["a"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
            }
        )
        record = new_record(request, "tenant-a", "11111111-2222-4333-8444-555555555555")

        assert repo.create(record) is True  # boto3: a conditional PutItem
        assert repo.get(record.order_id) == record  # http.client: a signed GetItem
        assert repo.get("99999999-2222-4333-8444-555555555555") is None
    finally:
        aws.resource.cache_clear()
        server.stop()
