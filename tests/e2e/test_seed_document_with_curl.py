"""Every operation of the Orders API document, as its own curl commands, only base URL and key changed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

SEED = Path(__file__).resolve().parents[2] / "events" / "planet"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed on this machine")


class Curl:
    def __init__(self, stack: Any) -> None:
        self.base = stack.api_url  # https://api.planet.com/compute/ops in the document
        self.auth = f"Authorization: api-key {stack.outputs['api_key']}"

    def __call__(self, *args: str) -> tuple[int, Any]:
        done = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        try:
            return int(status), json.loads(body) if body else None
        except json.JSONDecodeError:
            return int(status), body

    def bulk_cancel(self, body: str) -> tuple[int, Any]:
        return self(
            "-X",
            "POST",
            f"{self.base}/bulk/orders/v2/cancel",
            "-H",
            self.auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        )

    def create(self, document: str) -> dict[str, Any]:
        status, order = self(
            "-X",
            "POST",
            f"{self.base}/orders/v2",
            "-H",
            self.auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            (SEED / document).read_text(),
        )
        assert status == 202, order
        return dict(order)


@pytest.fixture(scope="module")
def curl(local_stack: Any) -> Curl:
    return Curl(local_stack)


@pytest.mark.parametrize(
    "document",
    [
        "create_scenes_gcs_clip.json",
        "create_scenes_direct.json",
        "create_scenes_hosting.json",
        "create_basemaps_geometry.json",
        "create_basemaps_quads.json",
    ],
)
def test_seed_create_examples_are_accepted_as_queued_orders(curl: Curl, document: str) -> None:
    order = curl.create(document)

    assert order["state"] == "queued"
    assert order["name"] == json.loads((SEED / document).read_text())["name"]


def test_seed_get_list_download_flow(curl: Curl, tmp_path: Path) -> None:
    order = curl.create("create_scenes_direct.json")
    deadline = time.monotonic() + 90
    while (
        got := curl(
            "-X",
            "GET",
            f"{curl.base}/orders/v2/{order['id']}",
            "-H",
            curl.auth,
            "-H",
            "Content-Type: application/json",
        )
    )[1]["state"] != "success":
        assert time.monotonic() < deadline, got
        time.sleep(0.5)
    status, body = got
    results = {r["name"].rsplit("/", 1)[-1]: r["location"] for r in body["_links"]["results"]}

    # curl -L -X GET "$LOCATION" > download.tif
    manifest = json.loads(
        subprocess.run(
            ["curl", "-sL", "-X", "GET", results["manifest.json"]],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    )
    entry = next(f for f in manifest["files"] if f["path"].endswith(".tif"))
    target = tmp_path / "download.tif"
    with target.open("wb") as out:
        subprocess.run(
            ["curl", "-sL", "-X", "GET", results[entry["path"].rsplit("/", 1)[-1]]],
            stdout=out,
            timeout=60,
            check=True,
        )
    assert hashlib.md5(target.read_bytes()).hexdigest() == entry["digests"]["md5"]  # noqa: S324 - checksum

    status, listed = curl(
        "-X", "GET", f"{curl.base}/orders/v2", "-H", curl.auth, "-H", "Content-Type: application/json"
    )
    assert status == 200 and order["id"] in {o["id"] for o in listed["orders"]}
    # The document's filtered list: orders created before 2024 (none here), sorted newest first.
    status, filtered = curl(
        "-X",
        "GET",
        f"{curl.base}/orders/v2?state=success&created_on=../2024-01-01T00:00:00.00Z"
        "&hosting=false&sort_by=created_on%20DESC",
        "-H",
        curl.auth,
        "-H",
        "Content-Type: application/json",
    )
    assert (status, filtered["orders"]) == (200, [])


@pytest.fixture
def slow_planet(local_stack: Any) -> Any:
    """Orders stay queued at the fake Planet long enough to be cancelled at a person's pace."""
    admin = local_stack.planet_url.removesuffix("/compute/ops") + "/_fake/config"
    before = requests.get(admin, timeout=5).json()
    requests.post(admin, json={"queued_seconds": 60}, timeout=5).raise_for_status()
    yield
    requests.post(admin, json={"queued_seconds": before["queued_seconds"]}, timeout=5).raise_for_status()


def test_seed_cancel_bulk_cancel_and_stats(curl: Curl, slow_planet: Any) -> None:
    single = curl.create("create_scenes_direct.json")
    first, second = curl.create("create_basemaps_quads.json"), curl.create("create_basemaps_geometry.json")

    status, cancelled = curl("-X", "PUT", f"{curl.base}/orders/v2/{single['id']}", "-H", curl.auth)
    assert (status, cancelled["state"]) == (200, "cancelled")
    status, again = curl("-X", "PUT", f"{curl.base}/orders/v2/{single['id']}", "-H", curl.auth)
    assert (status, again) == (409, {"message": "Order not in a cancellable state"})

    time.sleep(1.1)  # Planet allows 3 cancels per second per key; the document's calls are a person's pace
    status, by_ids = curl.bulk_cancel(json.dumps({"order_ids": [first["id"], second["id"]]}))
    assert status == 200 and by_ids["result"]["succeeded"]["count"] == 2, by_ids
    status, everything = curl.bulk_cancel("{}")
    assert status == 200 and set(everything["result"]) == {"succeeded", "failed"}

    status, stats = curl(
        "-X", "GET", f"{curl.base}/stats/orders/v2", "-H", curl.auth, "-H", "Content-Type: application/json"
    )
    assert status == 200
    assert set(stats["user"]) == set(stats["organization"]) == {"queued_orders", "running_orders"}
