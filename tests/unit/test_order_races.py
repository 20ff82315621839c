"""Every race of exactly-once at the lowest layer: the services over the in-memory order store.

Interleavings are scripted (a fake runs the racing call at the exact point it must happen), so each test
says which step the other actor lands in; only "many finalizers at once" uses threads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from harness import load_event
from intake_fakes import FakeWorkflow, message
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.errors import NotCancellable, RetryLater, UpstreamUnavailable
from order_core.models.lifecycle import Phase
from order_core.models.order import (
    ACCEPTED_MESSAGE_TYPE,
    AcceptedOrderMessage,
    CompletionEvent,
    OrderRecord,
)
from order_core.models.planet import OrderRequest, OrderState, PlanetOrder
from order_core.services.finalize import FinalizeService
from order_core.services.orders import OrderService, new_record
from order_core.services.submit import SubmitService, upstream_request

TENANT = "acme"


class Killed(BaseException):
    """The Lambda runtime ending an invocation (timeout, out of memory): no ``except Exception`` runs."""


class RacingPlanet:
    """Planet's orders endpoint: POSTs create orders it lists by name; ``during_post`` runs inside a POST,
    after Planet has created the order and before the answer reaches the caller."""

    def __init__(self) -> None:
        self.orders: list[PlanetOrder] = []
        self.cancelled: list[str] = []
        self.during_post: Callable[[], None] | None = None

    def create_order(self, request: dict[str, Any]) -> PlanetOrder:
        order = PlanetOrder(id=str(uuid.uuid4()), name=str(request["name"]), state=OrderState.queued)
        self.orders.append(order)
        if self.during_post is not None:
            hook, self.during_post = self.during_post, None
            hook()
        return order

    def list_orders(self, **filters: Any) -> list[PlanetOrder]:
        return [o for o in self.orders if filters.get("name__contains", "") in o.name]

    def cancel_order(self, order_id: str) -> PlanetOrder:
        self.cancelled.append(order_id)
        return PlanetOrder(id=order_id, state=OrderState.cancelled)

    def get_order(self, order_id: str) -> PlanetOrder:
        return next(o for o in self.orders if o.id == order_id)


class FlakyStore(InMemoryOrderStore):
    """The in-memory store whose named write ``fail`` raises ``error`` once, before it is applied."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: str | None = None
        self.error: BaseException = RuntimeError("DynamoDB did not answer")

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name == object.__getattribute__(self, "fail"):
            self.fail = None

            def failing(*_args: Any, **_kwargs: Any) -> Any:
                raise object.__getattribute__(self, "error")

            return failing
        return attribute


class Events:
    def __init__(self) -> None:
        self.published: list[CompletionEvent] = []
        self.during_publish: Callable[[], None] | None = None
        self.fail_next = False

    def publish(self, event: CompletionEvent) -> None:
        if self.during_publish is not None:
            hook, self.during_publish = self.during_publish, None
            hook()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("SNS did not answer")
        self.published.append(event)


class Queue:
    def send_accepted(self, accepted: AcceptedOrderMessage) -> None:
        pass


class Rig:
    def __init__(self, *, lease: timedelta = timedelta(minutes=2)) -> None:
        self.store = FlakyStore()
        self.planet = RacingPlanet()
        self.workflow = FakeWorkflow()
        self.events = Events()
        self.submitter = SubmitService(self.store, self.planet, self.workflow, submit_lease=lease)  # type: ignore[arg-type]
        self.api = OrderService(self.store, Queue(), self.workflow, lambda: self.planet)  # type: ignore[arg-type]
        self.finalizer = FinalizeService(self.store, self.events, "results")  # type: ignore[arg-type]
        request = OrderRequest.model_validate(
            dict(load_event("planet/create_scenes_direct.json"), name="race")
        )
        self.order: OrderRecord = new_record(request, TENANT)
        self.store.create(self.order)
        self.id = self.order.order_id

    def delivery(self) -> Any:
        """The API's intake message for the order (every delivery of it looks the same)."""
        body = AcceptedOrderMessage(order_id=self.id, tenant=TENANT).model_dump_json()
        return message(body, "m-1", message_type=ACCEPTED_MESSAGE_TYPE)

    def record(self) -> OrderRecord:
        current = self.store.get(self.id)
        assert current is not None
        return current


# --- cancel against submit ---------------------------------------------------------------------------------


def test_cancel_during_the_post_cancels_at_planet_once_planet_answers() -> None:
    rig = Rig()
    seen: list[OrderState] = []
    rig.planet.during_post = lambda: seen.append(rig.api.cancel(rig.id, TENANT).state)

    rig.submitter.process(rig.delivery())

    record = rig.record()
    assert seen == [OrderState.cancelled]  # the client was told at once
    assert len(rig.planet.orders) == 1 and rig.planet.cancelled == [rig.planet.orders[0].id]
    assert record.phase is Phase.SUBMITTED and record.cancel_requested
    assert [w.submitted for w in rig.workflow.started] == [True]  # polling sees Planet's cancelled


def test_cancel_before_the_claim_means_planet_never_sees_the_order() -> None:
    rig = Rig()
    rig.api.cancel(rig.id, TENANT)

    rig.submitter.process(rig.delivery())
    state = rig.finalizer.finalize(rig.id, upstream_state=None)

    assert rig.planet.orders == [] and state is OrderState.cancelled
    assert [e.state for e in rig.events.published] == [OrderState.cancelled]


def test_cancel_after_planet_answered_goes_to_planet() -> None:
    rig = Rig()
    rig.submitter.process(rig.delivery())

    shown = rig.api.cancel(rig.id, TENANT)

    assert shown.state is OrderState.cancelled and rig.planet.cancelled == [rig.planet.orders[0].id]
    assert rig.record().upstream_state == "cancelled" and rig.record().state is OrderState.queued


def test_cancel_during_a_post_whose_answer_was_lost_cancels_the_order_planet_has() -> None:
    rig = Rig()

    def cancel_then_lose_the_answer() -> None:
        rig.api.cancel(rig.id, TENANT)
        raise UpstreamUnavailable("Planet answered 503", status=503, ambiguous=True)

    rig.planet.during_post = cancel_then_lose_the_answer

    with pytest.raises(RetryLater):
        rig.submitter.process(rig.delivery())
    rig.submitter.process(rig.delivery())  # the message comes back: reconcile, never POST again

    assert len(rig.planet.orders) == 1 and rig.planet.cancelled == [rig.planet.orders[0].id]
    assert rig.record().upstream_order_id == rig.planet.orders[0].id
    assert [w.submitted for w in rig.workflow.started] == [True]


def test_cancel_during_a_post_that_never_reached_planet_ends_cancelled_without_posting_again() -> None:
    rig = Rig()

    def cancel_then_fail() -> None:
        rig.api.cancel(rig.id, TENANT)
        rig.planet.orders.clear()  # the POST never arrived
        raise UpstreamUnavailable("connection reset", ambiguous=True)

    rig.planet.during_post = cancel_then_fail

    with pytest.raises(RetryLater):
        rig.submitter.process(rig.delivery())
    rig.submitter.process(rig.delivery())
    state = rig.finalizer.finalize(rig.id, upstream_state=None)

    assert rig.planet.orders == [] and state is OrderState.cancelled
    assert [w.submitted for w in rig.workflow.started] == [False]
    assert [e.state for e in rig.events.published] == [OrderState.cancelled]


def test_second_cancel_of_a_cancelled_order_is_not_cancellable() -> None:
    rig = Rig()
    rig.api.cancel(rig.id, TENANT)

    with pytest.raises(NotCancellable):
        rig.api.cancel(rig.id, TENANT)


# --- duplicate deliveries ----------------------------------------------------------------------------------


def test_duplicate_delivery_after_the_first_finished_posts_nothing_more() -> None:
    rig = Rig()
    rig.submitter.process(rig.delivery())

    rig.submitter.process(rig.delivery())

    assert len(rig.planet.orders) == 1 and len(rig.workflow.started) == 1


def test_duplicate_delivery_during_the_first_post_waits_instead_of_posting() -> None:
    rig = Rig()
    raised: list[RetryLater] = []

    def second_delivery() -> None:
        with pytest.raises(RetryLater) as info:
            rig.submitter.process(rig.delivery())
        raised.append(info.value)

    rig.planet.during_post = second_delivery

    rig.submitter.process(rig.delivery())
    rig.submitter.process(rig.delivery())  # the duplicate comes back after its wait

    assert len(raised) == 1 and raised[0].seconds > 0
    assert len(rig.planet.orders) == 1 and rig.record().phase is Phase.SUBMITTED
    assert len(rig.workflow.started) == 1


# --- a Lambda retried after its side effect ----------------------------------------------------------------


def test_submit_retried_after_planet_created_the_order_adopts_it_instead_of_posting_again() -> None:
    rig = Rig()
    rig.store.fail = "record_upstream_order"  # Planet answered; recording it failed

    with pytest.raises(RuntimeError):
        rig.submitter.process(rig.delivery())
    rig.submitter.process(rig.delivery())

    assert len(rig.planet.orders) == 1
    assert rig.record().upstream_order_id == rig.planet.orders[0].id
    assert rig.record().submit_attempts == 2


def test_submit_killed_after_the_post_is_held_off_until_its_lease_runs_out() -> None:
    rig = Rig()
    rig.store.fail, rig.store.error = "record_upstream_order", Killed()

    with pytest.raises(Killed):
        rig.submitter.process(rig.delivery())
    with pytest.raises(RetryLater):  # the dead attempt's lease still runs
        rig.submitter.process(rig.delivery())

    assert len(rig.planet.orders) == 1 and rig.record().phase is Phase.SUBMITTING


def test_submit_killed_after_the_post_adopts_planets_order_once_the_lease_ran_out() -> None:
    rig = Rig(lease=timedelta(seconds=-1))  # every lease has run out by the time anyone looks
    rig.store.fail, rig.store.error = "record_upstream_order", Killed()

    with pytest.raises(Killed):
        rig.submitter.process(rig.delivery())
    rig.submitter.process(rig.delivery())

    assert len(rig.planet.orders) == 1 and rig.record().upstream_order_id == rig.planet.orders[0].id


def test_submit_post_lost_its_answer_then_retry_finds_planets_order() -> None:
    rig = Rig()
    order_name = upstream_request(rig.order)["name"]
    rig.planet.orders.append(PlanetOrder(id="already-there", name=str(order_name), state=OrderState.queued))
    rig.store.claim_submission(rig.id, lease=timedelta(minutes=2))  # the first attempt's claim ...
    rig.store.release_submission(rig.id)  # ... which ended on an ambiguous 503

    rig.submitter.process(rig.delivery())

    assert [o.id for o in rig.planet.orders] == ["already-there"]
    assert rig.record().upstream_order_id == "already-there"


def test_finalize_retried_after_publishing_publishes_nothing_more() -> None:
    rig = Rig()
    rig.store.fail = "finalize"  # the event went out; recording the terminal state failed

    with pytest.raises(RuntimeError):
        rig.finalizer.finalize(rig.id, upstream_state=None)
    state = rig.finalizer.finalize(rig.id, upstream_state=None)

    assert state is OrderState.failed and rig.record().phase is Phase.FINALIZED
    assert len(rig.events.published) == 1


def test_finalize_whose_publish_failed_publishes_on_retry() -> None:
    rig = Rig()
    rig.events.fail_next = True

    with pytest.raises(RuntimeError):
        rig.finalizer.finalize(rig.id, upstream_state=None)
    rig.finalizer.finalize(rig.id, upstream_state=None)

    assert len(rig.events.published) == 1 and rig.record().phase is Phase.FINALIZED


# --- two finalizers ----------------------------------------------------------------------------------------


def test_second_finalizer_during_the_first_publish_publishes_nothing() -> None:
    rig = Rig()
    rig.events.during_publish = lambda: rig.finalizer.finalize(rig.id, upstream_state=None)

    rig.finalizer.finalize(rig.id, upstream_state=None)

    assert len(rig.events.published) == 1 and rig.record().phase is Phase.FINALIZED


def test_first_finalizer_publish_fails_after_second_recorded_the_end_retry_still_publishes() -> None:
    rig = Rig()
    rig.events.fail_next = True
    rig.events.during_publish = lambda: rig.finalizer.finalize(rig.id, upstream_state=None)

    with pytest.raises(RuntimeError):
        rig.finalizer.finalize(rig.id, upstream_state=None)
    assert rig.record().phase is Phase.FINALIZED and rig.events.published == []  # ended, event not out

    rig.finalizer.finalize(rig.id, upstream_state=None)  # Step Functions retries the failed Finalize

    assert [e.state for e in rig.events.published] == [OrderState.failed]


def test_many_finalizers_at_once_publish_one_event() -> None:
    rig = Rig()
    start = threading.Barrier(8)
    states: list[OrderState] = []

    def finalize() -> None:
        start.wait()
        states.append(rig.finalizer.finalize(rig.id, upstream_state=None))

    threads = [threading.Thread(target=finalize) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(rig.events.published) == 1 and set(states) == {OrderState.failed}
    assert rig.record().phase is Phase.FINALIZED


# --- a poll that arrives late ------------------------------------------------------------------------------


def test_poll_answer_arriving_after_finalize_does_not_reopen_the_order() -> None:
    from order_core.services.backoff import BackoffPolicy
    from order_core.services.poll import PollService

    rig = Rig()
    rig.submitter.process(rig.delivery())
    rig.finalizer.finalize(rig.id, upstream_state="cancelled")
    poller = PollService(rig.store, rig.planet, BackoffPolicy(1, 2), timedelta(days=1))  # type: ignore[arg-type]

    poller.poll(rig.id, 0)

    assert rig.record().phase is Phase.FINALIZED and rig.record().state is OrderState.cancelled


def test_cancel_accepted_by_planet_wakes_the_orders_workflow_once() -> None:
    rig = Rig()
    woken: list[str] = []
    rig.api = OrderService(rig.store, Queue(), rig.workflow, lambda: rig.planet, wake=woken.append)  # type: ignore[arg-type]
    rig.submitter.process(rig.delivery())

    rig.api.cancel(rig.id, TENANT)

    assert woken == [rig.id]


def test_cancel_stands_when_waking_the_workflow_fails() -> None:
    rig = Rig()

    def unreachable(_order_id: str) -> None:
        raise RuntimeError("Step Functions did not answer")

    rig.api = OrderService(rig.store, Queue(), rig.workflow, lambda: rig.planet, wake=unreachable)  # type: ignore[arg-type]
    rig.submitter.process(rig.delivery())

    shown = rig.api.cancel(rig.id, TENANT)

    assert shown.state is OrderState.cancelled and rig.record().upstream_state == "cancelled"
