"""Waking waiting orders (services/wake.py): one waker ends a wait, a wake before the wait is kept, Planet's
webhook needs the order's token, and the fleet sweep wakes only orders that ended. In-memory store, a fake
Step Functions and a fake Planet list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.errors import UpstreamRateLimited
from order_core.models.order import OrderRecord, Phase, utcnow
from order_core.models.planet import OrderState, PlanetOrder
from order_core.services.backoff import BackoffPolicy
from order_core.services.poll import PollService
from order_core.services.submit import upstream_request
from order_core.services.tracking import TrackingPolicy
from order_core.services.wake import FleetSweep, PlanetHooks, WakeOutcome, WakeService

SECRET = "deployment-secret"


class FakeTasks:
    """Step Functions' SendTaskSuccess: records what it ended; tokens in ``gone`` are waits already over."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.gone: set[str] = set()

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        if task_token in self.gone:
            return False
        self.sent.append((task_token, output))
        self.gone.add(task_token)
        return True


def followed(store: InMemoryOrderStore, upstream_state: str = "running", **fields: Any) -> OrderRecord:
    record = OrderRecord(
        order_id=str(uuid.uuid4()),
        tenant="acme",
        name="n",
        request={},
        phase=Phase.SUBMITTED,
        upstream_order_id=f"up-{uuid.uuid4()}",
        upstream_state=upstream_state,
        submitted_at=utcnow(),
        **fields,
    )
    store.create(record)
    return record


@pytest.fixture
def store() -> InMemoryOrderStore:
    return InMemoryOrderStore()


@pytest.fixture
def tasks() -> FakeTasks:
    return FakeTasks()


@pytest.fixture
def waker(store: InMemoryOrderStore, tasks: FakeTasks) -> WakeService:
    return WakeService(store, tasks)


def test_wake_of_a_waiting_order_ends_its_wait_once(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    order = followed(store)
    waker.watch(order.order_id, "t1")

    first = waker.wake(order.order_id, by="planet_webhook")

    assert first is WakeOutcome.WOKEN
    assert tasks.sent == [("t1", {"woken": True, "by": "planet_webhook"})]


def test_wake_before_the_wait_is_kept_and_ends_the_next_wait_at_once(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    order = followed(store)

    assert waker.wake(order.order_id, by="sweep") is WakeOutcome.DEFERRED
    waker.watch(order.order_id, "t1")

    assert [token for token, _ in tasks.sent] == ["t1"]
    assert store.get(order.order_id).wake_pending is False  # type: ignore[union-attr]


def test_wake_whose_stored_wait_is_over_is_kept_for_the_next_one(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    order = followed(store)
    waker.watch(order.order_id, "timed-out")
    tasks.gone.add("timed-out")

    assert waker.wake(order.order_id, by="sweep") is WakeOutcome.DEFERRED
    waker.watch(order.order_id, "t2")

    assert [token for token, _ in tasks.sent] == ["t2"]


def test_wake_of_unknown_or_delivering_order_changes_nothing(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    delivering = followed(store)
    store.record_poll(delivering.order_id, upstream_state=OrderState.success)
    writes = len(store.writes)

    assert waker.wake("no-such-order", by="planet_webhook") is WakeOutcome.NOT_FOLLOWED
    assert waker.wake(delivering.order_id, by="planet_webhook") is WakeOutcome.NOT_FOLLOWED
    assert tasks.sent == [] and len(store.writes) == writes


def test_watch_of_order_no_longer_waiting_ends_the_wait_at_once(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    order = followed(store)
    store.record_poll(order.order_id, upstream_state=OrderState.success)

    waker.watch(order.order_id, "t1")

    assert [token for token, _ in tasks.sent] == ["t1"]


# --- Planet's webhook ---------------------------------------------------------------------------------------


def test_planet_hook_with_the_orders_token_wakes_it(store: InMemoryOrderStore, tasks: FakeTasks) -> None:
    hooks = PlanetHooks(SECRET, WakeService(store, tasks))
    order = followed(store)
    hooks._waker.watch(order.order_id, "t1")  # type: ignore[union-attr]
    url = hooks.url("https://gw.example.com/compute/ops/", order.order_id)
    token = url.rsplit("/", 1)[1]

    outcome = hooks.received(order.order_id, token)

    assert url.startswith(f"https://gw.example.com/compute/ops/hooks/planet/{order.order_id}/")
    assert outcome is WakeOutcome.WOKEN and [t for t, _ in tasks.sent] == ["t1"]


@pytest.mark.parametrize("forged", ["", "x", "wrong-token-" + "a" * 31, "A" * 500])
def test_planet_hook_with_a_forged_token_is_refused_with_nothing_changed(
    store: InMemoryOrderStore, tasks: FakeTasks, forged: str
) -> None:
    hooks = PlanetHooks(SECRET, WakeService(store, tasks))
    order = followed(store)
    hooks._waker.watch(order.order_id, "t1")  # type: ignore[union-attr]
    writes = len(store.writes)

    assert hooks.received(order.order_id, forged) is None
    assert tasks.sent == [] and len(store.writes) == writes


def test_planet_hook_token_of_one_order_is_refused_for_another(
    store: InMemoryOrderStore, tasks: FakeTasks
) -> None:
    hooks = PlanetHooks(SECRET, WakeService(store, tasks))
    mine, other = followed(store), followed(store)

    assert hooks.received(other.order_id, hooks.token(mine.order_id)) is None
    assert PlanetHooks("another deployment").token(mine.order_id) != hooks.token(mine.order_id)


def test_planet_hook_duplicate_calls_wake_the_order_once(store: InMemoryOrderStore, tasks: FakeTasks) -> None:
    waker = WakeService(store, tasks)
    hooks = PlanetHooks(SECRET, waker)
    order = followed(store)
    waker.watch(order.order_id, "t1")
    token = hooks.token(order.order_id)

    hooks.received(order.order_id, token)
    store.record_poll(order.order_id, upstream_state=OrderState.success)  # the woken poll saw it delivered
    hooks.received(order.order_id, token)  # Planet's retry of the same call

    assert [t for t, _ in tasks.sent] == ["t1"]
    assert store.get(order.order_id).wake_pending is False  # type: ignore[union-attr]


def test_submit_asks_planet_for_our_webhook_instead_of_the_tenants() -> None:
    hooks = PlanetHooks(SECRET)
    record = OrderRecord(
        order_id="o-1",
        tenant="acme",
        name="n",
        request={"name": "n", "notifications": {"webhook": {"url": "https://tenant.example.com/hook"}}},
    )

    sent = upstream_request(record, hooks.webhook("https://gw.example.com/compute/ops", "o-1"))

    assert sent["notifications"] == {
        "webhook": {"url": hooks.url("https://gw.example.com/compute/ops", "o-1"), "per_order": True}
    }
    assert "tenant.example.com" not in str(sent)


# --- the fleet sweep ----------------------------------------------------------------------------------------


class FakeCursor:
    def __init__(self, started_at: datetime | None = None, finished_at: datetime | None = None) -> None:
        self.started_at = started_at
        self.finished_at = finished_at

    def read(self) -> FakeCursor:
        return self

    def finished(self, started_at: datetime, finished_at: datetime) -> None:
        self.started_at, self.finished_at = started_at, finished_at


class FakePlanetList:
    def __init__(self, orders: list[tuple[str, str]], fail: Exception | None = None) -> None:
        self.orders = orders
        self.fail = fail
        self.filters: list[dict[str, Any]] = []

    def list_orders(self, **filters: Any) -> Iterator[PlanetOrder]:
        self.filters.append(filters)
        if self.fail:
            raise self.fail
        for upstream_id, state in self.orders:
            yield PlanetOrder.model_validate({"id": upstream_id, "state": state})


def test_sweep_wakes_ended_orders_and_records_other_changes(
    store: InMemoryOrderStore, tasks: FakeTasks, waker: WakeService
) -> None:
    ended, started, quiet = followed(store, "running"), followed(store, "queued"), followed(store, "running")
    for order, token in ((ended, "t-ended"), (started, "t-started"), (quiet, "t-quiet")):
        waker.watch(order.order_id, token)
    planet = FakePlanetList(
        [
            (str(ended.upstream_order_id), "success"),
            (str(started.upstream_order_id), "running"),
            (str(quiet.upstream_order_id), "running"),
            ("someone-elses-order", "success"),
        ]
    )
    cursor = FakeCursor(started_at=utcnow() - timedelta(seconds=60))
    sweep = FleetSweep(store, planet, cursor, waker, TrackingPolicy())  # type: ignore[arg-type]

    report = sweep.sweep()

    assert report.completed and report.woken == [ended.order_id] and report.recorded == [started.order_id]
    assert [token for token, _ in tasks.sent] == ["t-ended"]
    moved = store.get(started.order_id)
    assert moved is not None and moved.state is OrderState.running and moved.last_own_poll_at is None
    assert cursor.finished_at is not None
    assert planet.filters[0]["last_modified"].endswith("/..")


def test_sweep_that_cannot_list_leaves_the_cursor(store: InMemoryOrderStore, waker: WakeService) -> None:
    before = utcnow() - timedelta(minutes=5)
    cursor = FakeCursor(started_at=before, finished_at=before)
    planet = FakePlanetList([], fail=UpstreamRateLimited("429", retry_after=5))
    sweep = FleetSweep(store, planet, cursor, waker, TrackingPolicy())  # type: ignore[arg-type]

    report = sweep.sweep()

    assert not report.completed and cursor.finished_at == before


# --- the poll after a wait ----------------------------------------------------------------------------------


class CountingPlanet:
    def __init__(self, state: str = "running") -> None:
        self.state = state
        self.gets = 0

    def get_order(self, upstream_id: str) -> PlanetOrder:
        self.gets += 1
        return PlanetOrder.model_validate({"id": upstream_id, "state": self.state})


def poll_service(store: InMemoryOrderStore, planet: CountingPlanet, cursor: FakeCursor | None) -> PollService:
    return PollService(
        store,
        planet,  # type: ignore[arg-type]
        BackoffPolicy(first_wait_seconds=2, max_wait_seconds=8),
        timedelta(days=3),
        tracking=TrackingPolicy(watch_seconds=1800),
        last_sweep=cursor,
    )


def test_poll_after_a_timeout_skips_the_get_when_a_fresh_sweep_vouches(store: InMemoryOrderStore) -> None:
    order = followed(store)
    planet = CountingPlanet()

    result = poll_service(store, planet, FakeCursor(finished_at=utcnow())).poll(
        order.order_id, 3, woken=False
    )

    assert planet.gets == 0
    assert result.upstream_state == "running" and not result.retry and result.watch_seconds == 1800


@pytest.mark.parametrize(
    ("cursor", "last_own_poll", "woken"),
    [
        (FakeCursor(finished_at=utcnow()), None, True),  # woken: always asks Planet
        (None, None, False),  # no sweep has ever finished
        (FakeCursor(finished_at=utcnow() - timedelta(minutes=10)), None, False),  # the sweeps stopped
        (FakeCursor(finished_at=utcnow()), utcnow() - timedelta(days=2), False),  # a day without its own GET
    ],
)
def test_poll_gets_the_order_when_woken_or_no_fresh_sweep_vouches(
    store: InMemoryOrderStore, cursor: FakeCursor | None, last_own_poll: datetime | None, woken: bool
) -> None:
    order = followed(store)
    if last_own_poll is not None:
        store.records[order.order_id] = order.model_copy(
            update={"submitted_at": last_own_poll, "last_own_poll_at": last_own_poll}
        )
    planet = CountingPlanet("success")

    result = poll_service(store, planet, cursor).poll(order.order_id, 0, woken=woken)

    assert planet.gets == 1 and result.upstream_state == "success"
    polled = store.get(order.order_id)
    assert polled is not None and polled.last_own_poll_at is not None


def test_poll_met_by_a_429_asks_the_workflow_to_retry_after_the_backoff(store: InMemoryOrderStore) -> None:
    order = followed(store)

    class Throttled(CountingPlanet):
        def get_order(self, upstream_id: str) -> PlanetOrder:
            raise UpstreamRateLimited("429", retry_after=None, body="")

    result = poll_service(store, Throttled(), None).poll(order.order_id, 0, woken=True)

    assert result.retry and result.wait_seconds >= 1 and result.upstream_state == "running"
