"""The kinds of order a new user tries first, with curl and with the `planet` CLI, against the local stack.

A zip order (an archive per item, and one archive for the order), a STAC order, a composite order and a
clipped order are each created once with curl and once with ``planet orders create`` (only the base URL and
the key changed), all created first and then awaited together. Each must land with every file of Planet's
manifest verified byte for byte in the order's folder, zips intact member by member, one completion event,
and a STAC catalog that pystac opens straight from S3. An unknown bundle is a 400 at once, from curl, the
CLI and the SDK alike, and queues nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pystac
import pytest
from order_checks import (
    CompletionEvents,
    Gateway,
    S3StacIO,
    bucket_name,
    open_catalog,
    planet_side,
    read_folder,
    verify_landed,
)
from stack_process import new_key

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed on this machine")

PLANET = Path(sys.executable).with_name("planet")
SCENES = ["20220304_093300_37_2430", "20220304_093257_90_2430"]
AMSTERDAM = {
    "type": "Polygon",
    "coordinates": [[[4.85, 52.35], [4.95, 52.35], [4.95, 52.40], [4.85, 52.40], [4.85, 52.35]]],
}


def _scenes(name: str, bundle: str = "analytic_udm2", **extra: Any) -> dict[str, Any]:
    products = [{"item_ids": SCENES, "item_type": "PSScene", "product_bundle": bundle}]
    return {"name": name, "source_type": "scenes", "products": products, **extra}


KINDS: dict[str, dict[str, Any]] = {
    "zip per item": _scenes("zip per item", delivery={"archive_type": "zip"}),
    "zip single archive": _scenes(
        "zip single archive",
        delivery={
            "archive_type": "zip",
            "single_archive": True,
            "archive_filename": "scenes_{{order_id}}.zip",
        },
    ),
    "stac": _scenes("stac", bundle="analytic_sr_udm2", metadata={"stac": {}}),
    "composite": _scenes("composite", tools=[{"composite": {}}]),
    "clipped": _scenes("clipped", tools=[{"clip": {"aoi": AMSTERDAM}}]),
}
CLIENTS = ("curl", "cli")
UNKNOWN_BUNDLE = _scenes("unknown bundle", bundle="analytic_udm9")


def curl_create(api_url: str, key: str, body: dict[str, Any]) -> tuple[int, Any]:
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            f"{api_url}/orders/v2",
            "-H",
            f"Authorization: api-key {key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(text)


def cli_create(api_url: str, key: str, body: dict[str, Any], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PL_API_KEY": key, "HOME": str(home)}
    return subprocess.run(
        [str(PLANET), "orders", "-u", api_url, "create", json.dumps(body)],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def kinds_gateway(local_stack: Any) -> Gateway:
    return Gateway(local_stack.api_url, new_key(local_stack, "first-orders"), "first-orders")


@pytest.fixture(scope="module")
def landed_kinds(
    local_stack: Any,
    kinds_gateway: Gateway,
    completion_events: CompletionEvents,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], tuple[dict[str, Any], list[Any]]]:
    """Every kind created with each client, then awaited together: (kind, client) -> (order, its events)."""
    home = tmp_path_factory.mktemp("cli-home")
    created = {}
    for kind, body in KINDS.items():
        status, order = curl_create(
            kinds_gateway.api_url, kinds_gateway.key, body | {"name": f"{kind} (curl)"}
        )
        assert status == 202, order
        created[(kind, "curl")] = order["id"]
        done = cli_create(kinds_gateway.api_url, kinds_gateway.key, body | {"name": f"{kind} (cli)"}, home)
        assert done.returncode == 0, done.stderr
        created[(kind, "cli")] = json.loads(done.stdout)["id"]
    finished = kinds_gateway.wait_all(list(created.values()))
    events = completion_events.for_orders(list(created.values()))
    return {key: (finished[order_id], events[order_id]) for key, order_id in created.items()}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_first_order_kind_lands_every_file_verified_with_a_stac_catalog_pystac_opens(
    local_stack: Any,
    kinds_gateway: Gateway,
    landed_kinds: dict[tuple[str, str], tuple[dict[str, Any], list[Any]]],
    kind: str,
    client: str,
) -> None:
    order, events = landed_kinds[(kind, client)]
    assert order["state"] == "success", order.get("error_hints")
    assert [e["state"] for e in events] == ["success"]

    landed = read_folder(local_stack, kinds_gateway.tenant, order["id"])
    planet = planet_side(local_stack, order["id"])
    assert planet.manifest is not None
    problems, members = verify_landed(landed, planet)
    assert problems == []
    catalog, items = open_catalog(local_stack, landed)
    assert isinstance(catalog, pystac.Catalog)
    item_ids = {item.id for item in items}
    assert set(SCENES) <= item_ids, item_ids

    paths = set(planet.files)
    if kind == "zip per item":
        assert paths == {f"{scene}_analytic_udm2.zip" for scene in SCENES}
        assert {m.split("/")[-1] for m in members} >= {f"{s}_3B_AnalyticMS.tif" for s in SCENES}
    elif kind == "zip single archive":
        (archive,) = paths
        assert archive.startswith("scenes_") and archive.endswith(".zip")
        assert {f"PSScene/{s}_metadata.json" for s in SCENES} <= set(members)
    elif kind == "stac":
        # Planet's own STAC documents land too, and pystac opens Planet's catalog from S3 as well.
        assert {"catalog.json", "PSScene/collection.json"} | {f"PSScene/{s}.json" for s in SCENES} <= paths
        theirs = pystac.Catalog.from_file(
            f"s3://{bucket_name(local_stack)}/{landed.prefix}catalog.json",
            stac_io=S3StacIO(local_stack.client("s3")),
        )
        assert {item.id for item in theirs.get_items(recursive=True)} == set(SCENES)
    elif kind == "composite":
        assert {"composite.tif", "composite_udm.tif"} <= paths
        assert not any(path.startswith("PSScene/") and path.endswith(".tif") for path in paths)
    elif kind == "clipped":
        rasters = [path for path in paths if path.endswith(".tif")]
        assert rasters and all(path.endswith("_clip.tif") for path in rasters), rasters


def test_unknown_bundle_is_a_400_at_once_from_curl_the_cli_and_the_sdk(
    local_stack: Any, tmp_path: Path
) -> None:
    gateway = Gateway(local_stack.api_url, new_key(local_stack, "unknown-bundle"), "unknown-bundle")

    status, body = curl_create(gateway.api_url, gateway.key, UNKNOWN_BUNDLE)
    cli = cli_create(gateway.api_url, gateway.key, UNKNOWN_BUNDLE, tmp_path)
    sdk_error = _sdk_create_error(local_stack.api_url, gateway.key, UNKNOWN_BUNDLE)

    assert status == 400
    assert "analytic_udm9" in body["field"]["products.0.product_bundle"][0]["message"]
    assert cli.returncode != 0 and "analytic_udm9" in cli.stderr and "products.0.product_bundle" in cli.stderr
    assert "analytic_udm9" in sdk_error
    assert gateway.list_ids() == set()


def _sdk_create_error(api_url: str, key: str, request: dict[str, Any]) -> str:
    """The SDK's error for ``create_order`` (a raw request, as the SDK sends what it is given)."""
    from planet import Auth, Planet, Session
    from planet.exceptions import APIError

    client = Planet(session=Session(auth=Auth.from_key(key)), base_url=api_url.removesuffix("/compute/ops"))
    try:
        client.orders.create_order(request)
    except APIError as exc:
        return str(exc)
    raise AssertionError("the SDK created an order with an unknown bundle")
