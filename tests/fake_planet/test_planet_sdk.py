"""The official planet SDK (3.7) and its CLI, pointed at the fake, must work end to end.

`planet.order_request.product()` fetches the bundle spec from the hard-coded api.planet.com, which tests
must never call: requests are built by hand, or with the `sdk_spec_from_fake` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import planet
import pytest
import requests
from planet import exceptions, order_request
from planet_fake.faults import FaultRule
from planet_fake.server import FakePlanetServer

from .support import KEY, basemaps_request, scenes_request


@pytest.fixture(scope="module")
def planet_client(fake_server: FakePlanetServer) -> Iterator[planet.Planet]:
    """One SDK client for the module: each Session starts an event-loop thread of its own."""
    yield planet.Planet(session=planet.Session(auth=planet.Auth.from_key(KEY)), base_url=fake_server.url)


@pytest.fixture
def orders(fake: FakePlanetServer, planet_client: planet.Planet) -> Any:
    return planet_client.orders


def test_sdk_create_wait_download_validates_manifest_checksums(
    fake: FakePlanetServer, orders: Any, tmp_path: Path
) -> None:
    fake.store.update_config({"rate_limits": True})
    created = orders.create_order(scenes_request("sdk order"))
    assert created["state"] == "queued"
    assert orders.get_order(created["id"])["name"] == "sdk order"

    assert orders.wait(created["id"], delay=0.4) == "success"
    paths = orders.download_order(created["id"], directory=tmp_path)

    order_dir = tmp_path / created["id"]
    assert {p.relative_to(order_dir).as_posix() for p in paths} == {
        "manifest.json",
        "PSScene/20220304_093300_37_2430_3B_AnalyticMS.tif",
        "PSScene/20220304_093300_37_2430_3B_AnalyticMS_metadata.xml",
        "PSScene/20220304_093300_37_2430_3B_udm2.tif",
        "PSScene/20220304_093300_37_2430_metadata.json",
    }
    orders.validate_checksum(order_dir, "MD5")
    orders.validate_checksum(order_dir, "SHA256")


@pytest.mark.usefixtures("sdk_spec_from_fake")
def test_sdk_built_zip_stac_clip_order_downloads_and_validates(
    fake: FakePlanetServer, orders: Any, tmp_path: Path
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    aoi = {"type": "Polygon", "coordinates": [[[6.32, 45.81], [6.35, 45.81], [6.35, 45.83], [6.32, 45.81]]]}
    request = order_request.build_request(
        "sdk zip order",
        products=[
            order_request.product(
                ["20220304_093300_37_fallback", "20220304_093257_90_2430"],
                "analytic_sr_udm2",
                "PSScene",
                fallback_bundle="analytic_udm2",
            )
        ],
        delivery=order_request.delivery(archive_type="zip", single_archive=True),
        tools=[order_request.clip_tool(aoi), order_request.file_format_tool("COG")],
        stac={"stac": {}},
    )

    created = orders.create_order(request)
    assert orders.wait(created["id"], delay=0.2) == "success"
    paths = orders.download_order(created["id"], directory=tmp_path)

    order_dir = tmp_path / created["id"]
    archive_name = f"sdk zip order_{created['id']}.zip"  # the SDK's default "{{name}}_{{order_id}}.zip"
    assert {p.relative_to(order_dir).as_posix() for p in paths} == {"manifest.json", archive_name}
    orders.validate_checksum(order_dir, "SHA256")
    with zipfile.ZipFile(order_dir / archive_name) as archive:
        names = set(archive.namelist())
    assert "PSScene/20220304_093300_37_fallback_3B_AnalyticMS_clip.tif" in names
    assert "PSScene/20220304_093257_90_2430_3B_AnalyticMS_SR_clip.tif" in names
    assert {"manifest.json", "catalog.json", "PSScene/collection.json"} <= names


def test_sdk_checksum_validation_catches_corrupted_download(
    fake: FakePlanetServer, orders: Any, tmp_path: Path
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    order_id = orders.create_order(scenes_request())["id"]
    fake.store.faults.add(FaultRule(op="storage", kind="corrupt", path_contains="udm2"))

    orders.download_order(order_id, directory=tmp_path)

    with pytest.raises(exceptions.ClientError, match="checksums do not match"):
        orders.validate_checksum(tmp_path / order_id, "SHA256")


def test_sdk_list_orders_applies_filters_and_follows_pages(fake: FakePlanetServer, orders: Any) -> None:
    fake.store.update_config({"page_size": 2, "queued_seconds": 60})
    for index in range(3):
        orders.create_order(scenes_request(f"scene {index}"))
    basemap = orders.create_order(basemaps_request("mosaic", quad_ids=["1050-1374"]))
    orders.cancel_order(basemap["id"])

    everything = list(orders.list_orders())
    assert len(everything) == 4, "the SDK asks for source_type=all and pages through `next`"
    assert [o["name"] for o in orders.list_orders(state="cancelled")] == ["mosaic"]
    assert [o["name"] for o in orders.list_orders(name="scene 1")] == ["scene 1"]
    assert [o["name"] for o in orders.list_orders(source_type="basemaps")] == ["mosaic"]
    assert len(list(orders.list_orders(name__contains="scene", limit=2))) == 2
    assert [o["name"] for o in orders.list_orders(sort_by="name ASC", state="queued")] == [
        "scene 0",
        "scene 1",
        "scene 2",
    ]


def test_sdk_cancel_order_then_conflict_and_missing(fake: FakePlanetServer, orders: Any) -> None:
    fake.store.update_config({"queued_seconds": 60})
    order_id = orders.create_order(scenes_request())["id"]

    cancelled = orders.cancel_order(order_id)

    assert cancelled["state"] == "cancelled"
    with pytest.raises(exceptions.Conflict, match="Order not in a cancellable state"):
        orders.cancel_order(order_id)
    with pytest.raises(exceptions.MissingResource, match="Could not load order ID"):
        orders.get_order(str(uuid.uuid4()))


def test_sdk_bulk_cancel_by_ids_and_all(fake: FakePlanetServer, orders: Any) -> None:
    fake.store.update_config({"queued_seconds": 60})
    first, second, third = (orders.create_order(scenes_request())["id"] for _ in range(3))

    by_ids = orders.cancel_orders([first, str(uuid.uuid4())])
    everything = orders.cancel_orders()

    assert by_ids["result"]["succeeded"] == {"count": 1}
    assert by_ids["result"]["failed"]["count"] == 1
    assert everything["result"] == {"failed": {"count": 0, "failures": []}, "succeeded": {"count": 2}}
    assert {orders.get_order(i)["state"] for i in (first, second, third)} == {"cancelled"}


def test_sdk_aggregated_order_stats(fake: FakePlanetServer, orders: Any) -> None:
    fake.store.update_config({"queued_seconds": 60})
    orders.create_order(scenes_request())

    assert orders.aggregated_order_stats() == {
        "organization": {"queued_orders": 1, "running_orders": 0},
        "user": {"queued_orders": 1, "running_orders": 0},
    }


def test_sdk_retries_through_rate_limit_refusals(fake: FakePlanetServer, orders: Any) -> None:
    """The SDK paces itself at 10 requests/s, Planet allows 3 gets/s: it gets 429s and must retry them."""
    order_id = orders.create_order(scenes_request())["id"]
    fake.store.update_config({"rate_limits": True})

    states = [orders.get_order(order_id)["state"] for _ in range(5)]

    log = requests.get(f"{fake.url}/_fake/requests", timeout=10).json()["requests"]
    gets = [entry["status"] for entry in log if entry["op"] == "get"]
    assert len(states) == 5
    assert 429 in gets and gets.count(200) == 5


def test_planet_cli_lists_orders_from_fake(fake: FakePlanetServer, orders: Any, tmp_path: Path) -> None:
    fake.store.update_config({"queued_seconds": 60})
    order_id = orders.create_order(scenes_request("cli order"))["id"]
    cli = Path(sys.executable).with_name("planet")
    env = {**os.environ, "PL_API_KEY": KEY, "HOME": str(tmp_path)}

    completed = subprocess.run(
        [str(cli), "orders", "-u", fake.base_url, "list", "--state", "queued"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    listed = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [(o["id"], o["name"]) for o in listed] == [(order_id, "cli order")]
