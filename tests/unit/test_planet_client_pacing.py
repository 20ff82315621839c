"""PlanetClient with the deployment's pacer: each call takes its endpoint's slot, defers without sending when
the slot is too far, and a 429 holds the endpoint for every client sharing the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from order_core.adapters.planet_client import PlanetClient, key_fingerprint
from order_core.errors import PacingUnavailable, UpstreamRateLimited
from order_core.services.pacing import InMemoryPaceStore, Pacer

BASE = "https://api.planet.test/compute/ops"
API_KEY = "PLAK-pacing-test-0123456789abcdef"
ORDER_ID = "98d124c3-0857-49f5-aa1b-2250c6f907ed"
ORDERS = f"{BASE}/orders/v2"
BULK_CANCEL = f"{BASE}/bulk/orders/v2/cancel"
CREATE_BODY = {
    "name": "paced order",
    "source_type": "scenes",
    "products": [
        {"item_ids": ["20220304_093300_37_2430"], "item_type": "PSScene", "product_bundle": "visual"}
    ],
}


def order_json(state: str = "queued") -> dict[str, Any]:
    return {
        "_links": {"_self": f"{ORDERS}/{ORDER_ID}"},
        "created_on": "2022-11-16T02:54:43.824Z",
        "id": ORDER_ID,
        "last_modified": "2022-11-16T02:54:43.824Z",
        "name": "paced order",
        "products": CREATE_BODY["products"],
        "state": state,
    }


class Clock:
    """Virtual time: the pacer reads it, the client's sleep advances it."""

    def __init__(self) -> None:
        self.now = 5_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class RecordingStore(InMemoryPaceStore):
    def __init__(self) -> None:
        super().__init__()
        self.reserved: list[str] = []

    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        self.reserved.append(key.rsplit("#", 1)[1])
        return super().reserve(key, now, interval, horizon)


class BrokenStore(InMemoryPaceStore):
    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        raise PacingUnavailable("the pace store could not be written: ProvisionedThroughputExceededException")

    def hold(self, key: str, until: float) -> None:
        raise PacingUnavailable("the pace store could not be written: ProvisionedThroughputExceededException")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def clock() -> Clock:
    return Clock()


def paced_client(store: InMemoryPaceStore, clock: Clock, max_wait: float = 2.0) -> PlanetClient:
    pacer = Pacer(store, scope=key_fingerprint(API_KEY), clock=clock)
    return PlanetClient(BASE, API_KEY, pacer=pacer, pace_max_wait_seconds=max_wait, sleep=clock.sleep)


def test_paced_client_every_operation_reserves_its_own_endpoint(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    store = RecordingStore()
    client = paced_client(store, clock)
    mocked.post(ORDERS, json=order_json())
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())
    mocked.put(f"{ORDERS}/{ORDER_ID}", json=order_json(state="cancelled"))
    mocked.post(BULK_CANCEL, json={"result": {"succeeded": {"count": 1}, "failed": {"count": 0}}})
    mocked.get(f"{BASE}/stats/orders/v2", json={"organization": {}, "user": {}})
    mocked.get(f"{BASE}/bundles/spec", json={"bundles": {}})
    second_page = f"{ORDERS}?page_marker=2"
    mocked.get(re.compile(rf"{re.escape(ORDERS)}\?.*page_marker=2"), json={"orders": [], "_links": {}})
    mocked.get(
        re.compile(rf"{re.escape(ORDERS)}\?source_type"), json={"orders": [], "_links": {"next": second_page}}
    )

    client.create_order(CREATE_BODY)
    client.get_order(ORDER_ID)
    client.cancel_order(ORDER_ID)
    client.cancel_orders([ORDER_ID])
    client.aggregated_order_stats()
    client.get_bundles_spec()
    list(client.list_orders())

    assert store.reserved == ["create", "get", "cancel", "bulk_cancel", "stats", "spec", "list", "list"]
    assert len(mocked.calls) == 8


def test_paced_client_burst_sleeps_until_each_slot_then_sends(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    client = paced_client(InMemoryPaceStore(), clock)
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())

    for _ in range(4):
        client.get_order(ORDER_ID)

    interval = 1 / (3 * 0.8)
    assert clock.slept == pytest.approx([interval] * 3)  # the first slot was free at once
    assert len(mocked.calls) == 4


def test_paced_client_slot_beyond_max_wait_deferred_without_sending(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    store = InMemoryPaceStore()
    busy = paced_client(store, clock, max_wait=10)
    mocked.post(ORDERS, json=order_json())
    for _ in range(6):  # another function booked the next 2.5 s of creates
        busy._pacer.reserve("create", 10)  # type: ignore[union-attr]
    client = paced_client(store, clock, max_wait=2)

    with pytest.raises(UpstreamRateLimited) as raised:
        client.create_order(CREATE_BODY)

    assert raised.value.deferred
    assert raised.value.retry_after == pytest.approx(6 / 2.4)
    assert "deferred, not sent" in str(raised.value)
    assert len(mocked.calls) == 0 and clock.slept == []


def test_paced_client_429_holds_the_endpoint_for_every_client(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    store = InMemoryPaceStore()
    poller, lander = paced_client(store, clock), paced_client(store, clock)
    mocked.get(
        f"{ORDERS}/{ORDER_ID}", status=429, json={"message": "slow down"}, headers={"Retry-After": "7"}
    )

    with pytest.raises(UpstreamRateLimited) as planet_said:
        poller.get_order(ORDER_ID)
    with pytest.raises(UpstreamRateLimited) as held:
        lander.get_order(ORDER_ID)

    assert not planet_said.value.deferred and planet_said.value.retry_after == 7
    assert held.value.deferred and held.value.retry_after == pytest.approx(7)
    assert len(mocked.calls) == 1  # the second client never reached Planet


def test_paced_client_429_does_not_hold_other_endpoints(mocked: responses.RequestsMock, clock: Clock) -> None:
    store = InMemoryPaceStore()
    client = paced_client(store, clock)
    mocked.get(
        f"{ORDERS}/{ORDER_ID}", status=429, json={"message": "slow down"}, headers={"Retry-After": "30"}
    )
    mocked.post(ORDERS, json=order_json())

    with pytest.raises(UpstreamRateLimited):
        client.get_order(ORDER_ID)
    created = client.create_order(CREATE_BODY)

    assert created.id == ORDER_ID and clock.slept == []


def test_paced_client_broken_pace_store_sends_unpaced(mocked: responses.RequestsMock, clock: Clock) -> None:
    client = paced_client(BrokenStore(), clock)
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())

    order = client.get_order(ORDER_ID)

    assert order.id == ORDER_ID and len(mocked.calls) == 1


def test_paced_client_broken_pace_store_still_reports_planets_429(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    client = paced_client(BrokenStore(), clock)
    mocked.get(
        f"{ORDERS}/{ORDER_ID}", status=429, json={"message": "slow down"}, headers={"Retry-After": "3"}
    )

    with pytest.raises(UpstreamRateLimited) as raised:
        client.get_order(ORDER_ID)

    assert raised.value.retry_after == 3 and not raised.value.deferred


def test_paced_client_scope_is_a_fingerprint_never_the_key(clock: Clock) -> None:
    store = RecordingStore()
    paced_client(store, clock)._pacer.reserve("get", 1)  # type: ignore[union-attr]

    (key,) = store._next
    assert key == f"pace#{key_fingerprint(API_KEY)}#get"
    assert API_KEY not in key and len(key_fingerprint(API_KEY)) == 12
    assert key_fingerprint(API_KEY) != key_fingerprint(API_KEY + "x")


def test_paced_client_that_wakes_after_its_slot_is_over_takes_a_new_slot(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())
    store = InMemoryPaceStore()
    client = paced_client(store, clock)
    client.get_order(ORDER_ID)  # the endpoint's next slot is now one interval away
    started = clock.now
    overslept = iter([0.5])  # the sleep for that slot ends 0.5 s late (a busy process)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds + next(overslept, 0.0))

    client._sleep = sleep
    client.get_order(ORDER_ID)

    interval = 1 / (3 * 0.8)
    # Woke 0.5 s after its slot: that slot is left unused and the request goes out on a new one, taken when
    # it woke, so the slots after it keep their spacing.
    assert clock.slept == pytest.approx([interval + 0.5])
    assert store.next_free(f"pace#{key_fingerprint(API_KEY)}#get") == pytest.approx(
        started + 2 * interval + 0.5
    )
    assert len(mocked.calls) == 2
