"""Shared test helpers: the fast config, API keys, request builders and a bare HTTP client of the fake."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from planet_fake.config import FakePlanetConfig
from planet_fake.server import FakePlanetServer

# Rate limits are off by default so tests can poll freely; the rate-limit and SDK tests turn them on.
FAST = FakePlanetConfig(queued_seconds=0.5, running_seconds=0.5, file_size=64 * 1024, rate_limits=False)
KEY = "key-alice"
OTHER_KEY = "key-bob"
TERMINAL_STATES = ("success", "partial", "failed", "cancelled")


def scenes_request(
    name: str = "scenes order", item_ids: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    product = {
        "item_ids": item_ids or ["20220304_093300_37_2430"],
        "item_type": "PSScene",
        "product_bundle": "analytic_udm2",
    }
    return {"name": name, "source_type": "scenes", "products": [product], **extra}


class PlanetApi:
    """A bare HTTP client of the fake, so tests see status codes and headers as they are sent."""

    def __init__(self, server: FakePlanetServer, api_key: str) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"api-key {api_key}"

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.session.post(self.url("/orders/v2"), json=request, timeout=10)
        assert response.status_code == 202, response.text
        order: dict[str, Any] = response.json()
        return order

    def get(self, order_id: str) -> requests.Response:
        return self.session.get(self.url(f"/orders/v2/{order_id}"), timeout=10)

    def list(self, **params: Any) -> requests.Response:
        return self.session.get(self.url("/orders/v2"), params=params, timeout=10)

    def cancel(self, order_id: str) -> requests.Response:
        return self.session.put(self.url(f"/orders/v2/{order_id}"), timeout=10)

    def wait(
        self, order_id: str, states: tuple[str, ...] = TERMINAL_STATES, timeout: float = 10
    ) -> dict[str, Any]:
        """Poll until the order is in one of `states`; the test fails if it never gets there."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(order_id)
            assert response.status_code == 200, response.text
            order: dict[str, Any] = response.json()
            if order["state"] in states:
                return order
            if time.monotonic() > deadline:
                pytest.fail(f"order {order_id} stuck in {order['state']}, expected one of {states}")
            time.sleep(0.05)

    def create_and_wait(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.wait(self.create(request)["id"])


def basemaps_request(name: str = "basemaps order", **product: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source_type": "basemaps",
        "products": [{"mosaic_name": "global_monthly_2022_01_mosaic", **product}],
    }


def results_by_path(order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`_links.results` keyed by path relative to the order directory (as manifest.json names files)."""
    prefix = order["id"] + "/"
    results = order["_links"].get("results", [])
    assert all(r["name"].startswith(prefix) for r in results)
    return {r["name"].removeprefix(prefix): r for r in results}


def fetch(location: str, **kwargs: Any) -> requests.Response:
    """GET a download link the way a client does: no API key, following the redirect to storage."""
    return requests.get(location, timeout=30, **kwargs)
