"""One fake Planet server for the whole session, reset before each test, with a timeline of about a second."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from planet import specs
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


@pytest.fixture
def sdk_spec_from_fake(fake: FakePlanetServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's order_request builders validate against the bundles spec, which they fetch from the
    hard-coded api.planet.com: send that fetch to the fake, with a fresh cache."""
    real_get = httpx.get

    def get(url: str, **kwargs: object) -> httpx.Response:
        return real_get(url.replace("https://api.planet.com", fake.url), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(specs.httpx, "get", get)
    monkeypatch.setattr(specs, "PRODUCT_BUNDLES", specs._LazyBundlesLoader())
