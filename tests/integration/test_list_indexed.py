"""Lists served from the list indexes (template.yaml) under moto give exactly the in-memory pages.

``OrderService.list_page`` reads index runs (``listing.plan`` / ``page_of_runs``); ``listing.page`` over
every order of the tenant is the reference semantics (the fake Planet's). Walking every page of a query
both ways must give the same orders in the same order, for every filter and sort, whatever the page size,
and also when a request may examine only a few orders (short pages continued through ``next``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_core.models.order import OrderRecord
from order_core.models.planet import OrderState
from order_core.services import listing
from order_core.services.listing import parse_query
from order_core.services.orders import OrderService, order_view
from orders_table import create_orders_table

TENANT = "tenant-a"
BASE = "https://gateway.example/compute/ops"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
LONG = "x" * 230  # longer than listing.NAME_KEY_CHARS: names that tie in the name index
NAMES = ["a", "b", "alpha", "é", "a b", LONG + "1", LONG + "0", "x" * 199 + "z"]
# Few distinct milliseconds, so orders tie at the precision lists compare and straddle page boundaries.
MOMENTS = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 500, 1000, 60_000, 3_600_000)] + [
    T0 + timedelta(seconds=s) for s in range(7, 40, 3)
]


def random_record(rng: random.Random, tenant: str = TENANT) -> OrderRecord:
    created = rng.choice(MOMENTS) + timedelta(microseconds=rng.randrange(1000))
    name = rng.choice(NAMES)
    source_type = rng.choice(["scenes", "scenes", "basemaps"])
    request: dict[str, Any] = {"name": name, "products": [{"item_ids": ["i"], "item_type": "PSScene"}]}
    if source_type == "basemaps":
        request["source_type"] = "basemaps"
    if rng.random() < 0.3:
        request["hosting"] = {"sentinel_hub": {}}
    if rng.random() < 0.3:
        request["delivery"] = {
            "destination": {"ref": rng.choice(["pl:destinations/d1", "pl:destinations/d2"])}
        }
    return OrderRecord(
        order_id=f"{rng.getrandbits(128):032x}"[:8] + "-0000-4000-8000-" + f"{rng.getrandbits(48):012x}",
        tenant=tenant,
        name=name,
        source_type=source_type,
        request=request,
        state=rng.choice(list(OrderState)),
        created_on=created,
        last_modified=created + timedelta(milliseconds=rng.choice([0, 0, 1, 5, 90_000])),
    )


@pytest.fixture(scope="module")
def service() -> Iterator[OrderService]:
    import boto3
    from moto import mock_aws
    from order_core.adapters.orders_repo import OrdersRepository

    with mock_aws():
        table = create_orders_table(boto3.resource("dynamodb", region_name="us-east-1"))
        repo = OrdersRepository("orders", table=table)
        rng = random.Random(10)
        for _ in range(120):
            repo.create(random_record(rng))
        for _ in range(20):  # another tenant's orders, which no list of TENANT may show
            repo.create(random_record(rng, tenant="tenant-b"))
        yield OrderService(repo, queue=mock.Mock())


def walk(first: dict[str, list[str]], list_page: Any) -> list[dict[str, Any]]:
    """Every order of every page, following `_links.next` as a client does."""
    params, seen = first, []
    for _ in range(2000):
        body = list_page(parse_query(params))
        seen.extend(body["orders"])
        if "next" not in body["_links"]:
            return seen
        params = parse_qs(urlsplit(body["_links"]["next"]).query, keep_blank_values=True)
    raise AssertionError("the pages never end")


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


TIMES = st.sampled_from(
    [_instant(m) for m in MOMENTS]
    + ["2024-03-01T12:00:00.000500Z", "0999-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", ".."]
)
QUERIES = st.fixed_dictionaries(
    {"page_size": st.integers(2, 12).map(str)},
    optional={
        "state": st.sets(st.sampled_from(listing.STATES), min_size=1, max_size=3).map(",".join),
        "source_type": st.sampled_from(["scenes", "basemaps", "all", "scenes,basemaps"]),
        "name": st.sampled_from(NAMES),
        "name__contains": st.sampled_from(["a", "x", "z", "é"]),
        "created_on": st.one_of(TIMES.filter(lambda t: t != ".."), st.tuples(TIMES, TIMES).map("/".join)),
        "last_modified": st.tuples(TIMES, TIMES).map("/".join),
        "hosting": st.sampled_from(["true", "false"]),
        "destination_ref": st.just("pl:destinations/d1"),
        "sort_by": st.sampled_from(
            [
                "created_on",
                "created_on DESC",
                "created_on,name DESC",
                "last_modified",
                "last_modified DESC,name",
                "name",
                "name DESC",
                "name,created_on DESC",
                "state",
                "state DESC",
                "state,created_on DESC",
                "state,created_on",
                "state DESC,name",
            ]
        ),
    },
)


def _compare(service: OrderService, query: dict[str, str]) -> None:
    params = {key: [value] for key, value in query.items()}
    everything = [order_view(r, BASE, with_results=False) for r in service._repo.list_for_tenant(TENANT)]
    expected = walk(params, lambda q: listing.page(everything, q, self_url=f"{BASE}/orders/v2"))
    got = walk(params, lambda q: service.list_page(TENANT, q, BASE))
    assert [o["id"] for o in got] == [o["id"] for o in expected]
    assert got == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_list_page_any_query_walks_the_same_orders_as_in_memory_listing(
    service: OrderService, query: dict[str, str]
) -> None:
    _compare(service, query)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES, examined=st.integers(1, 9))
def test_list_page_examining_few_orders_per_request_still_walks_every_match(
    service: OrderService, query: dict[str, str], examined: int
) -> None:
    with (
        mock.patch.object(listing, "MAX_EXAMINED", examined),
        mock.patch.object(listing, "MAX_EXAMINED_EMPTY", 3 * examined),
    ):
        _compare(service, query)
