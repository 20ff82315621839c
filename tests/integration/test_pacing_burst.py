"""Pacing under a burst of creates and polls: many functions' PlanetClients, each with its own DynamoPaceStore
on one FleetTable (moto), against the fake Planet with Planet's rate limits ON.

Each thread stands for one Lambda: its own HTTP session and boto3 session. A deferred call (no slot within
the client's max wait) is waited out and retried, as the services do with any ``UpstreamRateLimited``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest
import requests
from harness import PLANET_KEY, ROOT, load_event
from moto import mock_aws
from order_core.adapters.pace_store import DynamoPaceStore
from order_core.adapters.planet_client import PlanetClient, key_fingerprint
from order_core.errors import UpstreamRateLimited
from order_core.services.pacing import Pacer
from planet_fake.config import FakePlanetConfig
from planet_fake.faults import FaultRule
from planet_fake.server import FakePlanetServer, start_in_thread

T = TypeVar("T")
TABLE = "fleet"


@pytest.fixture
def serialised_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto handles a conditional write without a lock; DynamoDB serialises one item's writes. Give moto that
    guarantee back (see test_pace_store_dynamodb.py), so the test is about our pacing, not moto's races."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def serialised(self: DynamoHandler) -> Any:
        with lock:
            return call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", serialised)


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


@pytest.fixture
def limited_planet() -> Iterator[FakePlanetServer]:
    """The fake with Planet's per-key limits (3 creates and 3 GETs per sliding second) enforced."""
    server = start_in_thread(config=FakePlanetConfig(queued_seconds=60, running_seconds=60, rate_limits=True))
    yield server
    server.stop()


class Function:
    """One Lambda's Planet client: its own HTTP session and its own pace store on the shared table.

    ``requests`` notes each request: when it was sent and when its answer came (epoch seconds, the pacer's
    clock)."""

    def __init__(self, planet: FakePlanetServer, table: str) -> None:
        self.requests: list[tuple[float, float]] = []
        store = DynamoPaceStore(table, table=boto3.session.Session().resource("dynamodb").Table(table))
        self.client = PlanetClient(
            planet.base_url,
            PLANET_KEY,
            session=_Timed(PlanetClient.build_session(), self.requests),
            pacer=Pacer(store, scope=key_fingerprint(PLANET_KEY)),
        )
        self.deferrals = 0

    def call(self, operation: Callable[[PlanetClient], T]) -> T:
        """``operation`` until Planet answers it; a deferral waits its retry_after first (a 429 fails)."""
        while True:
            try:
                return operation(self.client)
            except UpstreamRateLimited as exc:
                if not exc.deferred:
                    raise
                self.deferrals += 1
                time.sleep(exc.retry_after or 0.1)


class _Timed(requests.Session):
    """A session that notes when each request is sent (the moment its pacer slot is used) and answered."""

    def __init__(self, inner: requests.Session, noted: list[tuple[float, float]]) -> None:
        super().__init__()
        self._inner = inner
        self._noted = noted

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        sent = time.time()
        response = self._inner.request(method, url, *args, **kwargs)
        self._noted.append((sent, time.time()))
        return response


def planet_statuses(planet: FakePlanetServer, op: str) -> list[int | None]:
    return [record["status"] for record in planet.store.requests.dump() if record["op"] == op]


def run_all(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_paced_fleet_burst_of_creates_and_polls_meets_no_429_and_every_call_answered(
    fleet_table: str, limited_planet: FakePlanetServer
) -> None:
    body = load_event("planet/create_scenes_direct.json")
    seed = Function(limited_planet, fleet_table)
    existing = [seed.call(lambda c: c.create_order(body)).id for _ in range(3)]
    submitters = [Function(limited_planet, fleet_table) for _ in range(6)]
    pollers = [Function(limited_planet, fleet_table) for _ in range(6)]
    created: list[str] = []
    polled: list[str] = []

    def submit(function: Function) -> None:
        for _ in range(3):
            created.append(function.call(lambda c: c.create_order(body)).id)

    def poll(function: Function) -> None:
        for order_id in existing + existing[:1]:
            polled.append(function.call(lambda c, oid=order_id: c.get_order(oid)).id)

    errors = run_all([lambda f=f: submit(f) for f in submitters] + [lambda f=f: poll(f) for f in pollers])

    assert errors == []
    assert len(created) == 18 and len(set(created)) == 18
    assert len(polled) == 24
    creates, gets = planet_statuses(limited_planet, "create"), planet_statuses(limited_planet, "get")
    assert creates.count(429) == 0 and gets.count(429) == 0, (creates, gets)
    assert len(creates) == 21 and len(gets) == 24  # every call reached Planet once: nothing was refused


def test_unpaced_fleet_burst_meets_429s(limited_planet: FakePlanetServer) -> None:
    """The same burst without the pacer: shows the fake's limits are on, so the test above can fail."""
    order_id = (
        PlanetClient(limited_planet.base_url, PLANET_KEY)
        .create_order(load_event("planet/create_scenes_direct.json"))
        .id
    )
    refused: list[int] = []

    def poll() -> None:
        client = PlanetClient(limited_planet.base_url, PLANET_KEY)
        for _ in range(4):
            try:
                client.get_order(order_id)
            except UpstreamRateLimited:
                refused.append(429)

    assert run_all([poll for _ in range(4)]) == []
    assert refused and planet_statuses(limited_planet, "get").count(429) == len(refused)


def test_paced_fleet_one_429_holds_every_function_until_retry_after(
    fleet_table: str, limited_planet: FakePlanetServer
) -> None:
    seed = Function(limited_planet, fleet_table)
    order_id = seed.call(lambda c: c.create_order(load_event("planet/create_scenes_direct.json"))).id
    limited_planet.store.faults.add(FaultRule(op="get", kind="status", status=429, retry_after=3, times=1))
    poller, other, patient = (Function(limited_planet, fleet_table) for _ in range(3))

    with pytest.raises(UpstreamRateLimited) as planet_said:
        poller.client.get_order(order_id)
    with pytest.raises(UpstreamRateLimited) as held:
        other.client.get_order(order_id)  # the hold ends 3 s from now, beyond its 2 s max wait
    patient.call(lambda c: c.get_order(order_id))  # waits for a slot, or defers and retries

    assert planet_said.value.retry_after == 3 and not planet_said.value.deferred
    assert held.value.deferred and held.value.retry_after is not None and held.value.retry_after > 2
    assert other.requests == []  # the held function sent nothing
    ((_sent, throttled_at),) = poller.requests
    ((next_sent, _answered),) = patient.requests
    # The fleet's next GET started after the Retry-After, counted from the 429's arrival (the hold is set
    # just after it; a microsecond of slack for the stored number's rounding).
    assert next_sent >= throttled_at + 3 - 1e-3
    assert planet_statuses(limited_planet, "get") == [429, 200]
