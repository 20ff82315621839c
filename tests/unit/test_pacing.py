"""Pacer over InMemoryPaceStore in virtual time: the arithmetic functions and the fleet simulation share."""

from __future__ import annotations

import pytest
from order_core.services.pacing import PLANET_LIMITS, InMemoryPaceStore, Pacer


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> InMemoryPaceStore:
    return InMemoryPaceStore()


def pacer(store: InMemoryPaceStore, clock: Clock, scope: str = "key-a") -> Pacer:
    return Pacer(store, scope=scope, clock=clock)


def test_pacer_burst_slots_spaced_by_the_endpoint_limit_times_share(
    store: InMemoryPaceStore, clock: Clock
) -> None:
    paced = pacer(store, clock)

    waits = [paced.reserve("get", max_wait_seconds=60).wait_seconds for _ in range(6)]

    interval = 1 / (PLANET_LIMITS["get"] * 0.8)
    assert waits == pytest.approx([i * interval for i in range(6)])
    # Never more than Planet's 3 GETs in any second: the 4th slot is more than a second after the 1st.
    assert waits[3] - waits[0] > 1.0


def test_pacer_idle_endpoint_slot_is_now(store: InMemoryPaceStore, clock: Clock) -> None:
    paced = pacer(store, clock)
    paced.reserve("create", max_wait_seconds=5)
    clock.now += 10  # long after the last slot

    reservation = paced.reserve("create", max_wait_seconds=0)

    assert reservation.taken and reservation.wait_seconds == 0


def test_pacer_slot_beyond_max_wait_deferred_without_taking_it(
    store: InMemoryPaceStore, clock: Clock
) -> None:
    paced = pacer(store, clock)
    interval = paced.interval("get")
    taken = [paced.reserve("get", max_wait_seconds=1.0) for _ in range(3)]  # slots at 0, 0.42, 0.83
    booked_until = store.next_free("pace#key-a#get")

    deferred = paced.reserve("get", max_wait_seconds=1.0)  # next slot 1.25 s away

    assert all(r.taken for r in taken)
    assert not deferred.taken
    assert deferred.wait_seconds == pytest.approx(3 * interval)
    assert store.next_free("pace#key-a#get") == booked_until  # a deferral books nothing


def test_pacer_deferred_caller_gets_a_slot_once_it_has_waited(store: InMemoryPaceStore, clock: Clock) -> None:
    paced = pacer(store, clock)
    for _ in range(3):
        paced.reserve("get", max_wait_seconds=1.0)
    deferred = paced.reserve("get", max_wait_seconds=1.0)
    clock.now += deferred.wait_seconds

    retried = paced.reserve("get", max_wait_seconds=1.0)

    assert retried.taken and retried.wait_seconds == pytest.approx(0)


def test_pacer_429_holds_every_caller_of_the_scope(store: InMemoryPaceStore, clock: Clock) -> None:
    poller, lander = pacer(store, clock), pacer(store, clock)  # two functions of one deployment

    held = poller.rate_limited("get", retry_after=5)
    waiting = lander.reserve("get", max_wait_seconds=10)
    deferred = lander.reserve("get", max_wait_seconds=2)

    assert held == 5
    assert waiting.taken and waiting.wait_seconds == pytest.approx(5)
    assert not deferred.taken and deferred.wait_seconds >= 5


def test_pacer_429_without_retry_after_holds_at_least_the_minimum(
    store: InMemoryPaceStore, clock: Clock
) -> None:
    paced = pacer(store, clock)

    assert paced.rate_limited("get", None) == 1.0
    assert paced.rate_limited("get", 0.2) == 1.0
    assert paced.reserve("get", max_wait_seconds=10).wait_seconds == pytest.approx(1.0)


def test_pacer_429_never_shortens_an_existing_hold(store: InMemoryPaceStore, clock: Clock) -> None:
    paced = pacer(store, clock)
    paced.rate_limited("get", retry_after=30)

    paced.rate_limited("get", retry_after=2)

    assert paced.reserve("get", max_wait_seconds=60).wait_seconds == pytest.approx(30)


def test_pacer_endpoints_independent(store: InMemoryPaceStore, clock: Clock) -> None:
    paced = pacer(store, clock)
    for _ in range(4):
        paced.reserve("get", max_wait_seconds=60)
    paced.rate_limited("list", retry_after=60)

    create = paced.reserve("create", max_wait_seconds=0)
    cancel = paced.reserve("cancel", max_wait_seconds=0)

    assert create.taken and create.wait_seconds == 0
    assert cancel.taken and cancel.wait_seconds == 0


def test_pacer_scopes_independent(store: InMemoryPaceStore, clock: Clock) -> None:
    one_key, other_key = pacer(store, clock, "key-a"), pacer(store, clock, "key-b")
    one_key.rate_limited("get", retry_after=60)

    assert other_key.reserve("get", max_wait_seconds=0).taken


def test_pacer_faster_endpoint_gets_shorter_interval(store: InMemoryPaceStore, clock: Clock) -> None:
    paced = pacer(store, clock)

    assert paced.interval("spec") == pytest.approx(1 / 8)
    assert paced.interval("download") == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="no Planet limit"):
        paced.reserve("orders", max_wait_seconds=1)


class SlowStore(InMemoryPaceStore):
    """A store whose answers take ``latency`` seconds of the shared clock (DynamoDB under load)."""

    def __init__(self, clock: Clock, latency: list[float]) -> None:
        super().__init__()
        self._clock = clock
        self._latency = latency

    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        slot = super().reserve(key, now, interval, horizon)
        self._clock.now += self._latency.pop(0) if self._latency else 0.0
        return slot


def test_pacer_wait_counts_from_the_stores_answer_so_a_slow_store_does_not_delay_the_send(
    clock: Clock,
) -> None:
    paced = Pacer(SlowStore(clock, latency=[0.0, 0.3]), scope="key-a", clock=clock)
    first = paced.reserve("get", max_wait_seconds=5)
    asked = clock.now

    second = paced.reserve("get", max_wait_seconds=5)  # its slot is 0.42 s after the first; the answer 0.3 s

    assert first.taken and second.taken
    assert clock.now + second.wait_seconds == pytest.approx(asked + paced.interval("get"))


def test_pacer_slot_passed_before_the_answer_is_given_up_and_a_new_one_taken(clock: Clock) -> None:
    store = SlowStore(clock, latency=[0.5, 0.0])
    paced = Pacer(store, scope="key-a", clock=clock)

    reservation = paced.reserve("create", max_wait_seconds=5)  # idle: slot "now", answered 0.5 s later

    # Sent at once it would be 0.5 s behind its slot, in the second of the slots booked after it. The slot
    # is left unused and a new one taken, this time answered in time: sent on its slot, booked from there.
    assert reservation.taken and reservation.wait_seconds == 0
    assert clock.now == pytest.approx(1_000.5)
    assert store.next_free("pace#key-a#create") == pytest.approx(1_000.5 + paced.interval("create"))


def test_pacer_store_always_too_slow_defers_instead_of_sending_late(clock: Clock) -> None:
    paced = Pacer(SlowStore(clock, latency=[2.0, 2.0, 2.0]), scope="key-a", clock=clock)

    reservation = paced.reserve("create", max_wait_seconds=5)

    assert not reservation.taken and reservation.wait_seconds > 0
