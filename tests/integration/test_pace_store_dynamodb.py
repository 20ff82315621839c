"""DynamoPaceStore on FleetTable (as template.yaml declares it) under moto: slots taken by conditional writes.

moto evaluates a conditional write in Python without a lock, so two threads can interleave inside one
UpdateItem, which DynamoDB never allows (a single item's writes are serialised). ``serialised_dynamodb``
gives moto that guarantee back as the local stack does (gateway_local.dynamodb_atomic), so threaded tests
test our expressions, not moto's missing atomicity.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from harness import ROOT
from moto import mock_aws
from order_core.adapters.pace_store import DynamoPaceStore
from order_core.errors import PacingUnavailable
from order_core.services.pacing import Pacer

TABLE = "fleet"
KEY = "pace#0123456789ab#get"
INTERVAL = 1 / 2.4


@pytest.fixture
def serialised_dynamodb() -> None:
    """Each DynamoDB request handled whole before the next, as DynamoDB does (and the local stack)."""
    from gateway_local.dynamodb_atomic import serialise_requests

    serialise_requests()


@pytest.fixture
def fleet_table(serialised_dynamodb: None) -> Iterator[str]:
    from gateway_local.template import load_template

    props = load_template(ROOT / "template.yaml").resources["FleetTable"].properties
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            **{k: props[k] for k in ("AttributeDefinitions", "KeySchema")},
        )
        yield TABLE


def new_store(table: str) -> DynamoPaceStore:
    """A store with its own boto3 session, as each Lambda has."""
    return DynamoPaceStore(table, table=boto3.session.Session().resource("dynamodb").Table(table))


def stored_item(table: str, key: str = KEY) -> dict[str, Any] | None:
    item = boto3.resource("dynamodb").Table(table).get_item(Key={"pk": key}).get("Item")
    return dict(item) if item else None


def test_dynamo_pace_store_idle_endpoint_slot_is_now(fleet_table: str) -> None:
    store = new_store(fleet_table)

    slot = store.reserve(KEY, 1_000.0, INTERVAL, horizon=2)

    assert slot == 1_000.0
    assert store.next_free(KEY) == pytest.approx(1_000.0 + INTERVAL)
    item = stored_item(fleet_table)
    assert item is not None and set(item) == {"pk", "next_free"}


def test_dynamo_pace_store_busy_endpoint_slots_follow_one_another(fleet_table: str) -> None:
    store = new_store(fleet_table)

    slots = [store.reserve(KEY, 1_000.0, INTERVAL, horizon=5) for _ in range(5)]

    assert slots == pytest.approx([1_000.0 + i * INTERVAL for i in range(5)])


def test_dynamo_pace_store_slot_beyond_horizon_not_taken_and_nothing_booked(fleet_table: str) -> None:
    store = new_store(fleet_table)
    for _ in range(3):
        store.reserve(KEY, 1_000.0, INTERVAL, horizon=1)
    booked = store.next_free(KEY)

    slot = store.reserve(KEY, 1_000.0, INTERVAL, horizon=1)  # the next one is 1.25 s away

    assert slot is None
    assert store.next_free(KEY) == booked


def test_dynamo_pace_store_endpoint_free_again_once_its_slots_passed(fleet_table: str) -> None:
    store = new_store(fleet_table)
    for _ in range(3):
        store.reserve(KEY, 1_000.0, INTERVAL, horizon=2)

    assert store.reserve(KEY, 1_010.0, INTERVAL, horizon=0) == 1_010.0


def test_dynamo_pace_store_hold_moves_forward_never_back(fleet_table: str) -> None:
    store = new_store(fleet_table)
    store.hold(KEY, 1_030.0)

    store.hold(KEY, 1_005.0)

    assert store.next_free(KEY) == 1_030.0
    assert store.reserve(KEY, 1_000.0, INTERVAL, horizon=10) is None
    assert store.reserve(KEY, 1_000.0, INTERVAL, horizon=30) == 1_030.0


def test_dynamo_pace_store_never_used_endpoint_reads_zero(fleet_table: str) -> None:
    assert new_store(fleet_table).next_free("pace#0123456789ab#stats") == 0.0


def test_dynamo_pace_store_two_stores_interleaved_hand_out_distinct_slots(fleet_table: str) -> None:
    one, other = new_store(fleet_table), new_store(fleet_table)

    slots = [
        (one if i % 2 else other).reserve(KEY, 1_000.0 + i * 0.01, INTERVAL, horizon=60) for i in range(12)
    ]

    assert None not in slots
    taken = sorted(s for s in slots if s is not None)
    assert taken == pytest.approx([1_000.0 + i * INTERVAL for i in range(12)])


def test_dynamo_pace_store_slot_taken_between_the_two_writes_not_handed_out_twice(fleet_table: str) -> None:
    """The race window of the algorithm: this store's first write fails (busy), another store books slots,
    then this store's second write runs. It must get a slot after the other's, not one of them."""
    other = new_store(fleet_table)
    other.reserve(KEY, 1_000.0, INTERVAL, horizon=5)  # busy from now on
    table = boto3.session.Session().resource("dynamodb").Table(fleet_table)
    others_slots: list[float | None] = []

    class Interleaved:
        def __init__(self) -> None:
            self.writes = 0

        def update_item(self, **kwargs: Any) -> Any:
            self.writes += 1
            try:
                return table.update_item(**kwargs)
            finally:
                if self.writes == 1:  # between our two writes
                    others_slots.extend(other.reserve(KEY, 1_000.0, INTERVAL, horizon=5) for _ in range(3))

    mine = DynamoPaceStore(fleet_table, table=Interleaved()).reserve(KEY, 1_000.0, INTERVAL, horizon=5)

    assert others_slots == pytest.approx([1_000.0 + i * INTERVAL for i in (1, 2, 3)])
    assert mine == pytest.approx(1_000.0 + 4 * INTERVAL)


def test_dynamo_pace_store_concurrent_callers_each_get_their_own_slot(fleet_table: str) -> None:
    threads, per_thread = 6, 10
    slots: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def caller() -> None:
        store = new_store(fleet_table)
        start.wait()
        for _ in range(per_thread):
            slot = store.reserve(KEY, 1_000.0, INTERVAL, horizon=3_600)
            assert slot is not None
            with lock:
                slots.append(slot)

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(slots) == pytest.approx([1_000.0 + i * INTERVAL for i in range(threads * per_thread)])


def test_dynamo_pace_store_pacer_429_holds_callers_of_another_store(fleet_table: str) -> None:
    now = [2_000.0]
    poller = Pacer(new_store(fleet_table), scope="0123456789ab", clock=lambda: now[0])
    lander = Pacer(new_store(fleet_table), scope="0123456789ab", clock=lambda: now[0])

    poller.rate_limited("get", retry_after=4)
    deferred = lander.reserve("get", max_wait_seconds=2)
    now[0] += 4
    after = lander.reserve("get", max_wait_seconds=2)

    assert not deferred.taken and deferred.wait_seconds == pytest.approx(4)
    assert after.taken and after.wait_seconds == pytest.approx(0)


def test_dynamo_pace_store_missing_table_raises_pacing_unavailable(fleet_table: str) -> None:
    store = new_store("no-such-table")

    with pytest.raises(PacingUnavailable, match="ResourceNotFoundException"):
        store.reserve(KEY, 1_000.0, INTERVAL, horizon=2)
    with pytest.raises(PacingUnavailable):
        store.hold(KEY, 1_010.0)
    with pytest.raises(PacingUnavailable):
        store.next_free(KEY)
