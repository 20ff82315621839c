"""Polling reads Planet tolerantly: new fields, nulls and unknown states never stall an order, and answers it
cannot read at all fail the order with a hint after a bounded number of tries (``services/poll.py``).

Planet is mocked at the HTTP layer (``responses``) behind the real ``PlanetClient``; the orders table is an
in-memory fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.adapters.planet_client import PlanetClient
from order_core.errors import UnusableUpstreamOrder
from order_core.models.order import OrderRecord, Phase, utcnow
from order_core.models.planet import OrderState
from order_core.services.backoff import BackoffPolicy
from order_core.services.finalize import terminal_outcome
from order_core.services.poll import PollService

BASE = "https://api.planet.test/compute/ops"
ORDER = "0b1f62c2-9a55-4e4a-8a54-0c7d9a0e4a11"
UPSTREAM = "5ece1dc0-ea81-4ea1-a6cf-1b1b1f0c2a19"
ORDER_URL = f"{BASE}/orders/v2/{UPSTREAM}"
LIMIT = 3


class FakeRepo(InMemoryOrderStore):
    """The in-memory order store holding one order, shown as ``record``."""

    def __init__(self, record: OrderRecord) -> None:
        super().__init__([record])
        self._order_id = record.order_id

    @property
    def record(self) -> OrderRecord:
        return self.records[self._order_id]

    @record.setter
    def record(self, value: OrderRecord) -> None:
        self.records[self._order_id] = value


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def repo() -> FakeRepo:
    return FakeRepo(
        OrderRecord(
            order_id=ORDER,
            tenant="acme",
            name="an order",
            request={"name": "an order"},
            phase=Phase.SUBMITTED,
            upstream_order_id=UPSTREAM,
            upstream_state="queued",
            submitted_at=utcnow(),
        )
    )


@pytest.fixture
def service(repo: FakeRepo) -> PollService:
    return PollService(
        repo,  # type: ignore[arg-type]
        PlanetClient(BASE, "PLAK-unit"),
        BackoffPolicy(first_wait_seconds=1, max_wait_seconds=10),
        timedelta(days=3),
        max_unusable=LIMIT,
    )


def planet_order(**fields: Any) -> dict[str, Any]:
    return {"id": UPSTREAM, "name": "an order [gw:x]", "state": "running", **fields}


def test_poll_new_fields_and_nulls_in_planets_answer_follow_the_order(
    mocked: responses.RequestsMock, service: PollService, repo: FakeRepo
) -> None:
    body = planet_order(error_hints=None, _links=None, products=None, shiny_new_block={"k": None})
    mocked.get(ORDER_URL, json=body)

    result = service.poll(ORDER, 0)

    assert result.upstream_state == "running" and not result.deadline_passed
    assert repo.record.state is OrderState.running and repo.record.error_hints == []


def test_poll_unknown_state_is_logged_and_followed_as_not_final(
    mocked: responses.RequestsMock,
    service: PollService,
    repo: FakeRepo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mocked.get(ORDER_URL, json=planet_order(state="archiving", last_message="Moving to cold storage"))

    result = service.poll(ORDER, 0)

    # "running" is not one the state machine's RouteOnUpstreamState ends the order on: it waits and polls.
    assert result.upstream_state == "running"
    assert repo.record.upstream_state == "running" and repo.record.last_message == "Moving to cold storage"
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [getattr(r, "reported_state", None) for r in warnings] == ["archiving"]


def test_poll_unknown_state_past_the_deadline_ends_timed_out_not_crashed(
    mocked: responses.RequestsMock, service: PollService, repo: FakeRepo
) -> None:
    repo.record = repo.record.model_copy(update={"submitted_at": utcnow() - timedelta(days=4)})
    mocked.get(ORDER_URL, json=planet_order(state="archiving"))

    result = service.poll(ORDER, 7)

    assert result.deadline_passed
    state, _message, hints = terminal_outcome(repo.record, result.upstream_state, True, None)
    assert state is OrderState.failed and "polling deadline" in hints[-1]


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"body": "<html>maintenance</html>", "content_type": "text/html"}, "not JSON"),
        ({"json": {"state": "running"}}, "id"),
        ({"json": {"id": UPSTREAM, "state": None}}, "state"),
        ({"json": ["an", "array"]}, "order"),
    ],
)
def test_poll_unreadable_answers_fail_the_order_after_the_limit_naming_the_problem(
    mocked: responses.RequestsMock,
    service: PollService,
    repo: FakeRepo,
    answer: dict[str, Any],
    named: str,
) -> None:
    mocked.get(ORDER_URL, status=200, **answer)

    for attempt in range(LIMIT - 1):
        result = service.poll(ORDER, attempt)
        assert result.upstream_state == "queued" and not result.deadline_passed
    assert repo.record.unusable_polls == LIMIT - 1

    with pytest.raises(UnusableUpstreamOrder) as caught:
        service.poll(ORDER, LIMIT)

    message = str(caught.value)
    assert f"{LIMIT} polls in a row" in message and named in message
    error = {"Error": type(caught.value).__name__, "Cause": message}
    state, _message, hints = terminal_outcome(repo.record, "queued", False, error)
    assert state is OrderState.failed and hints[-1].startswith("UnusableUpstreamOrder: Planet answered")


def test_poll_readable_answer_resets_the_unusable_count(
    mocked: responses.RequestsMock, service: PollService, repo: FakeRepo
) -> None:
    mocked.get(ORDER_URL, status=200, body="not json")
    for attempt in range(LIMIT - 1):
        service.poll(ORDER, attempt)
    mocked.replace(responses.GET, ORDER_URL, json=planet_order())
    service.poll(ORDER, LIMIT)
    mocked.replace(responses.GET, ORDER_URL, status=200, body="not json")

    for attempt in range(LIMIT - 1):  # a fresh budget: none of these fails the order
        service.poll(ORDER, LIMIT + 1 + attempt)

    assert repo.record.unusable_polls == LIMIT - 1


def test_poll_planet_unavailable_is_never_counted_as_unusable(
    mocked: responses.RequestsMock, service: PollService, repo: FakeRepo
) -> None:
    mocked.get(ORDER_URL, status=503, json={"message": "down"})

    for attempt in range(LIMIT * 2):
        result = service.poll(ORDER, attempt)

    assert result.upstream_state == "queued" and repo.record.unusable_polls == 0
