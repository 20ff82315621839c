"""One fake Planet server for the whole session, reset before each test, with a timeline of about a second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from planet_fake.server import FakePlanetServer, start_in_thread

from .support import FAST, KEY, OTHER_KEY, PlanetApi


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakePlanetServer]:
    server = start_in_thread(config=FAST)
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakePlanetServer) -> FakePlanetServer:
    fake_server.store.reset()
    fake_server.store.update_config(FAST.model_dump())
    return fake_server


@pytest.fixture
def api(fake: FakePlanetServer) -> PlanetApi:
    return PlanetApi(fake, KEY)


@pytest.fixture
def other_api(fake: FakePlanetServer) -> PlanetApi:
    return PlanetApi(fake, OTHER_KEY)


@pytest.fixture
def instant_timeline(fake: FakePlanetServer) -> None:
    """New orders are terminal at once, for tests about outcomes rather than the timeline."""
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
