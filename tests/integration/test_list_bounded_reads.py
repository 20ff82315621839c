"""A list request reads a bounded number of orders, however many the tenant has (moto, 3,000 orders).

Counted at the DynamoDB client (botocore's after-call event): the Query calls one request makes and the
items they return. No time is measured: ``make bench-list`` does that.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from order_core.models.order import OrderRecord
from order_core.models.planet import OrderState
from order_core.services import listing
from order_core.services.listing import MAX_EXAMINED, parse_query
from order_core.services.orders import BULK_CANCEL_MAX, OrderService
from orders_table import create_orders_table

TENANT = "big"
BASE = "https://gateway.example/compute/ops"
ORDERS = 3000
T0 = datetime(2025, 1, 1, tzinfo=UTC)
PAGE = 20
STATES = list(OrderState)


class Reads:
    def __init__(self) -> None:
        self.calls = self.items = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.items += len(parsed.get("Items", []))


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[OrderService, Reads]]:
    import boto3
    from boto3.dynamodb.types import TypeSerializer
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from order_core.adapters.orders_repo import OrdersRepository, _to_item

    with mock_aws():
        table = create_orders_table(boto3.resource("dynamodb", region_name="us-east-1"))
        backend, serializer = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"], TypeSerializer()
        for i in range(ORDERS):  # straight into moto's backend, in the repository's item format
            created = T0 + timedelta(seconds=i)
            name = "needle" if i % 100 == 0 else f"order {i:05d}"
            record = OrderRecord(
                order_id=f"{i:08d}-0000-4000-8000-000000000000",
                tenant=TENANT,
                name=name,
                request={"name": name, "products": [{"item_ids": ["a"], "item_type": "PSScene"}]},
                state=STATES[i % len(STATES)],
                created_on=created,
                last_modified=created + timedelta(minutes=i % 7),
            )
            backend.put_item("orders", {k: serializer.serialize(v) for k, v in _to_item(record).items()})
        reads = Reads()
        table.meta.client.meta.events.register("after-call.dynamodb.Query", reads)
        yield OrderService(OrdersRepository("orders", table=table), queue=mock.Mock()), reads


def _list(big: tuple[OrderService, Reads], query: dict[str, str]) -> tuple[dict[str, Any], Reads]:
    service, reads = big
    reads.calls = reads.items = 0
    body = service.list_page(TENANT, parse_query({k: [v] for k, v in query.items()}), BASE)
    return body, reads


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"state": "success"},
        {"name": "needle"},
        {"created_on": "2025-01-01T00:10:00Z/2025-01-01T00:40:00Z"},
        {"sort_by": "created_on"},
        {"sort_by": "last_modified DESC"},
        {"sort_by": "name DESC"},
        {"sort_by": "state,created_on DESC"},
        {"sort_by": "state"},
        {"sort_by": "state DESC", "state": "success,failed"},
        {"state": "success", "created_on": "2025-01-01T00:10:00Z/.."},
    ],
    ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()) or "default",
)
def test_list_indexed_query_reads_about_one_page_of_3000_orders(
    big: tuple[OrderService, Reads], query: dict[str, str]
) -> None:
    body, reads = _list(big, {**query, "page_size": str(PAGE)})

    assert len(body["orders"]) == PAGE
    assert "next" in body["_links"]
    assert reads.calls == 1
    assert (
        reads.items <= PAGE + 3
    )  # the page, one that says there is a next, one that ends a group, the marker


def test_list_sorted_by_name_reads_a_run_of_equal_names_whole_and_no_more(
    big: tuple[OrderService, Reads],
) -> None:
    body, reads = _list(big, {"page_size": str(PAGE), "sort_by": "name"})

    assert [o["name"] for o in body["orders"]] == ["needle"] * PAGE  # 30 needles, by id
    assert reads.calls <= 2
    assert reads.items <= 3 * (PAGE + 3)  # the 31 it needs, in a first Query and one twice as large


def test_list_next_page_reads_about_one_page_too(big: tuple[OrderService, Reads]) -> None:
    first, _ = _list(big, {"page_size": str(PAGE), "state": "queued,failed"})
    following = {k: v[-1] for k, v in parse_qs(urlsplit(first["_links"]["next"]).query).items()}

    body, reads = _list(big, following)

    assert len(body["orders"]) == PAGE
    assert reads.items <= 2 * (PAGE + 3)  # one run per state


def test_list_filter_nothing_matches_reads_a_bounded_number_and_continues_through_next(
    big: tuple[OrderService, Reads],
) -> None:
    with (
        mock.patch.object(listing, "MAX_EXAMINED", 100),
        mock.patch.object(listing, "MAX_EXAMINED_EMPTY", 1000),
    ):
        body, reads = _list(big, {"page_size": str(PAGE), "name__contains": "no such name"})

    assert body["orders"] == []
    assert "next" in body["_links"]  # the search goes on where it stopped
    assert 1000 <= reads.items <= 2 * 1000 < ORDERS


def test_list_filter_rare_match_page_is_never_empty_while_next_continues(
    big: tuple[OrderService, Reads],
) -> None:
    """Planet's SDK stops at the first page without orders: a page that continues must hold one."""
    body, reads = _list(big, {"page_size": str(PAGE), "name__contains": "order 00001"})  # the 2nd oldest

    assert [o["name"] for o in body["orders"]] == ["order 00001"]
    assert reads.items <= ORDERS


def test_list_filter_no_index_serves_walked_through_next_finds_every_match(
    big: tuple[OrderService, Reads],
) -> None:
    query = {"page_size": "100", "name__contains": "needle"}
    names, requests = [], 0
    while True:
        body, reads = _list(big, query)
        requests += 1
        assert reads.items <= 2 * MAX_EXAMINED
        names += [o["name"] for o in body["orders"]]
        if "next" not in body["_links"]:
            break
        query = {k: v[-1] for k, v in parse_qs(urlsplit(body["_links"]["next"]).query).items()}

    assert names == ["needle"] * (ORDERS // 100)
    assert requests >= ORDERS // MAX_EXAMINED


def test_bulk_cancel_everything_reads_at_most_its_cap_of_queued_orders(
    big: tuple[OrderService, Reads],
) -> None:
    service, reads = big
    reads.calls = reads.items = 0

    ids = service._repo.active_order_ids_of(TENANT, "queued", limit=BULK_CANCEL_MAX)

    assert len(ids) == min(BULK_CANCEL_MAX, ORDERS // len(STATES))
    assert reads.items == len(ids)
