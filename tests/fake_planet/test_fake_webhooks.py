"""The fake Planet calls orders' webhooks as Planet does: once per order with per_order, once per delivered
item otherwise, with the order as body; fault rules drop or delay a call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from planet_fake.server import FakePlanetServer
from webhook_receiver import Receiver, running_receiver

from .support import PlanetApi, scenes_request

TWO_ITEMS = ["20220304_093300_37_2430", "20220305_093300_37_2431"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def wait_for_calls(receiver: Receiver, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.calls) < count:
        assert time.monotonic() < deadline, f"{len(receiver.calls)} of {count} webhook calls came"
        time.sleep(0.05)


def with_webhook(receiver: Receiver, per_order: bool, **extra: object) -> dict[str, object]:
    return scenes_request(
        item_ids=TWO_ITEMS, notifications={"webhook": {"url": receiver.url, "per_order": per_order}}, **extra
    )


def test_fake_webhook_per_order_is_called_once_when_the_order_ends(
    api: PlanetApi, receiver: Receiver
) -> None:
    order = api.create_and_wait(with_webhook(receiver, per_order=True))

    wait_for_calls(receiver, 1)
    time.sleep(0.5)  # nothing more comes

    assert len(receiver.calls) == 1
    body = json.loads(receiver.calls[0]["body"])
    assert body["id"] == order["id"] and body["state"] == "success"


def test_fake_webhook_per_item_is_called_for_each_delivered_item(api: PlanetApi, receiver: Receiver) -> None:
    api.create_and_wait(with_webhook(receiver, per_order=False))

    wait_for_calls(receiver, 2)
    time.sleep(0.5)

    assert len(receiver.calls) == 2


def test_fake_webhook_cancelled_order_is_called_once(
    api: PlanetApi, receiver: Receiver, fake: FakePlanetServer
) -> None:
    fake.store.update_config({"queued_seconds": 60})
    order = api.create(with_webhook(receiver, per_order=True))
    assert api.cancel(order["id"]).status_code == 200

    wait_for_calls(receiver, 1)

    assert json.loads(receiver.calls[0]["body"])["state"] == "cancelled"


def test_fake_webhook_dropped_by_a_fault_never_comes(
    api: PlanetApi, receiver: Receiver, fake: FakePlanetServer
) -> None:
    requests.post(
        f"{fake.url}/_fake/faults", json={"op": "webhook", "kind": "drop"}, timeout=5
    ).raise_for_status()
    order = api.create_and_wait(with_webhook(receiver, per_order=True))
    time.sleep(1)

    assert receiver.calls == []
    logged = requests.get(f"{fake.url}/_fake/webhooks", timeout=5).json()["webhooks"]
    assert [(c["order_id"], c["fault"]) for c in logged] == [(order["id"], "drop")]


def test_fake_webhook_delayed_by_a_fault_comes_late(
    api: PlanetApi, receiver: Receiver, fake: FakePlanetServer
) -> None:
    rule = {"op": "webhook", "kind": "delay", "delay_seconds": 1.5}
    requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=5).raise_for_status()
    api.create_and_wait(with_webhook(receiver, per_order=True))
    time.sleep(0.6)
    assert receiver.calls == []

    wait_for_calls(receiver, 1)


def test_fake_webhook_calls_never_take_a_fault_meant_for_requests(
    api: PlanetApi, receiver: Receiver, fake: FakePlanetServer
) -> None:
    order = api.create(with_webhook(receiver, per_order=True))
    rule = {"op": "any", "kind": "status", "status": 503}
    requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=5).raise_for_status()

    wait_for_calls(receiver, 1)

    assert api.get(order["id"]).status_code == 503


def test_fake_webhooks_off_in_config_makes_no_calls(
    api: PlanetApi, receiver: Receiver, fake: FakePlanetServer
) -> None:
    fake.store.update_config({"webhooks": False})
    api.create_and_wait(with_webhook(receiver, per_order=True))
    time.sleep(0.6)

    assert receiver.calls == []
