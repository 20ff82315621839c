"""Planet's request space: what each bundle delivers, fallback bundles, what create refuses, tools, zip
archives, STAC metadata and the bundles spec."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
import requests
from planet import specs
from planet_fake.server import FakePlanetServer

from .support import PlanetApi, basemaps_request, fetch, results_by_path, scenes_request

SCENE = "20220304_093300_37_2430"
OTHER_SCENE = "20220304_093257_90_2430"
CLIP_AOI = {
    "type": "Polygon",
    "coordinates": [
        [[6.3296, 45.8269], [6.3296, 45.8174], [6.3414, 45.8174], [6.3414, 45.8269], [6.3296, 45.8269]]
    ],
}
EVENTS = Path(__file__).resolve().parents[2] / "events" / "planet"


def _order(item_type: str, bundle: str, item_ids: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    request = scenes_request(item_ids=item_ids or [SCENE], **extra)
    request["products"][0].update(item_type=item_type, product_bundle=bundle)
    return request


def _manifest(order: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = fetch(results_by_path(order)["manifest.json"]["location"]).json()
    return manifest


def _paths(order: dict[str, Any]) -> set[str]:
    return set(results_by_path(order)) - {"manifest.json"}


def _refusal(api: PlanetApi, request: dict[str, Any]) -> dict[str, Any]:
    response = api.session.post(api.url("/orders/v2"), json=request, timeout=10)
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["general"] == [{"message": "Unable to accept order"}]
    return body


@pytest.mark.usefixtures("instant_timeline")
@pytest.mark.parametrize(
    ("item_type", "bundle", "expected"),
    [
        ("PSScene", "visual", {"_3B_Visual.tif", "_metadata.json"}),
        (
            "PSScene",
            "analytic_8b_sr_udm2",
            {"_3B_AnalyticMS_SR_8b.tif", "_3B_AnalyticMS_8b_metadata.xml", "_3B_udm2.tif", "_metadata.json"},
        ),
        (
            "PSScene",
            "analytic_sr_udm2",
            {"_3B_AnalyticMS_SR.tif", "_3B_AnalyticMS_metadata.xml", "_3B_udm2.tif", "_metadata.json"},
        ),
    ],
)
def test_create_scene_order_delivers_the_bundles_assets_under_planets_names(
    api: PlanetApi, item_type: str, bundle: str, expected: set[str]
) -> None:
    order = api.create_and_wait(_order(item_type, bundle))

    assert order["state"] == "success"
    assert _paths(order) == {f"{item_type}/{SCENE}{suffix}" for suffix in expected}
    bundles = {f["annotations"]["planet/bundle_type"] for f in _manifest(order)["files"]}
    assert bundles == {bundle}


@pytest.mark.usefixtures("instant_timeline")
def test_create_sentinel2_analytic_delivers_one_file_per_band(api: PlanetApi) -> None:
    item_id = "S2A_MSIL1C_20220304T103021_N0400_R108_T32TLR_20220304T123809"

    order = api.create_and_wait(_order("Sentinel2L1C", "analytic", [item_id]))

    asset_types = {f["annotations"].get("planet/asset_type") for f in _manifest(order)["files"]}
    assert {"analytic_b1", "analytic_b8a", "analytic_b12", "metadata_aux"} <= asset_types
    assert len(_paths(order)) == 15  # 14 assets + the item's metadata.json


@pytest.mark.usefixtures("instant_timeline")
def test_fallback_bundle_is_delivered_when_the_first_bundle_is_incomplete(api: PlanetApi) -> None:
    item_id = "20220304_093300_37_fallback"

    order = api.create_and_wait(_order("PSScene", "analytic_sr_udm2,analytic_udm2", [item_id, SCENE]))

    assert order["state"] == "success"
    bundle_of = {
        (f["annotations"]["planet/item_id"], f["annotations"]["planet/bundle_type"])
        for f in _manifest(order)["files"]
    }
    assert bundle_of == {(item_id, "analytic_udm2"), (SCENE, "analytic_sr_udm2")}
    assert f"PSScene/{item_id}_3B_AnalyticMS.tif" in _paths(order)


@pytest.mark.usefixtures("instant_timeline")
def test_incomplete_bundle_without_fallback_fails_the_item_naming_the_bundle(api: PlanetApi) -> None:
    order = api.create_and_wait(_order("PSScene", "analytic_sr_udm2", ["20220304_093300_37_fallback"]))

    assert order["state"] == "failed"
    assert order["error_hints"] == [
        "Unable to deliver PSScene item 20220304_093300_37_fallback: "
        "assets of bundle analytic_sr_udm2 are not available"
    ]


def _many(count: int) -> list[str]:
    return [f"20220304_0933{n:04d}_ssc1" for n in range(count)]


@pytest.mark.parametrize(
    ("request_body", "field", "message"),
    [
        (
            _order("PSScene4Banana", "analytic_udm2"),
            "Products",
            "Bad item type 'PSScene4Banana' for bundle type 'analytic_udm2'",
        ),
        (_order("PSScene", "no_such_bundle"), "Products", "Unknown product bundle 'no_such_bundle'"),
        (_order("PSScene", "analytic"), "Products", "Bad item type 'PSScene' for bundle type 'analytic'"),
        (
            _order("PSScene", "analytic_udm2,basic_l1a_dn"),
            "Products",
            "Bad item type 'PSScene' for bundle type 'basic_l1a_dn'",
        ),
        (
            _order("PSScene", "analytic_udm2", [f"{SCENE}_nonexistent"]),
            "Details",
            f"Item ID {SCENE}_nonexistent / Item Type PSScene doesn't exist",
        ),
        (_order("PSScene", "analytic_udm2", _many(501)), "Products", "An order may hold at most 500 items"),
        (
            _order("SkySatCollect", "analytic_udm2", _many(51), delivery={"archive_type": "zip"}),
            "Products",
            "Orders with zip delivery may hold at most 50 items of item types "
            "PelicanScene, SkySatCollect, TanagerScene",
        ),
        (
            _order("PSScene", "analytic_udm2", delivery={"archive_type": "tar"}),
            "Delivery",
            "Unsupported archive_type 'tar': only 'zip'",
        ),
        (
            _order("PSScene", "analytic_udm2", tools=[{"sharpen": {}}]),
            "Tools",
            "Unsupported tool 'sharpen' for scenes orders",
        ),
        (
            _order("PSScene", "analytic_udm2", tools=[{"clip": {}}]),
            "Tools",
            "clip: aoi must be a GeoJSON Polygon or MultiPolygon",
        ),
        (
            _order("PSScene", "analytic_udm2", tools=[{"file_format": {"format": "JPEG"}}]),
            "Tools",
            "file_format: format must be one of COG, PL_NITF",
        ),
        (
            _order(
                "PSScene", "analytic_udm2", tools=[{"clip": {"aoi": CLIP_AOI}, "tile": {"tile_size": 256}}]
            ),
            "Tools",
            "each tool must be an object with exactly one key, the tool's name",
        ),
        (
            _order("PSScene", "analytic_udm2", tools=[{"bandmath": {"b1": "b1", "b3": "b3"}}]),
            "Tools",
            "bandmath: b1 is required and bands may not be skipped",
        ),
        (
            _order("PSScene", "analytic_udm2", tools=[{"coregister": {"anchor_item": "elsewhere"}}]),
            "Tools",
            "coregister: anchor_item must name an item of the order",
        ),
        (
            {**basemaps_request(quad_ids=["1050-1374"]), "tools": [{"composite": {}}]},
            "Tools",
            "Unsupported tool 'composite' for basemaps orders",
        ),
    ],
)
def test_create_refused_request_returns_400_in_planets_shape_and_creates_nothing(
    fake: FakePlanetServer, api: PlanetApi, request_body: dict[str, Any], field: str, message: str
) -> None:
    body = _refusal(api, request_body)

    assert body["field"] == {field: [{"message": message}]}
    assert fake.store.orders() == []


def test_create_zip_delivery_of_psscene_allows_more_than_50_items(api: PlanetApi) -> None:
    created = api.create(_order("PSScene", "analytic_udm2", _many(51), delivery={"archive_type": "zip"}))

    assert created["state"] == "queued"


def test_create_accepts_every_seed_document(api: PlanetApi) -> None:
    for path in sorted(EVENTS.glob("*.json")):
        created = api.create(json.loads(path.read_text()))
        assert created["state"] == "queued", path.name


def test_create_accepts_order_type_and_subscription_id_and_refuses_a_non_integer_subscription(
    api: PlanetApi,
) -> None:
    created = api.create(_order("PSScene", "visual", order_type="partial", subscription_id=1234))
    assert (created["order_type"], created["subscription_id"]) == ("partial", 1234)

    body = _refusal(api, _order("PSScene", "visual", subscription_id="1234"))
    assert body["field"] == {"SubscriptionId": [{"message": "subscription_id must be an integer"}]}


@pytest.mark.usefixtures("instant_timeline")
def test_zip_delivery_gives_one_archive_per_item_with_a_manifest_inside(api: PlanetApi) -> None:
    order = api.create_and_wait(
        _order("PSScene", "analytic_udm2", [SCENE, OTHER_SCENE], delivery={"archive_type": "zip"})
    )

    assert _paths(order) == {f"{SCENE}_analytic_udm2.zip", f"{OTHER_SCENE}_analytic_udm2.zip"}
    manifest = {f["path"]: f for f in _manifest(order)["files"]}
    body = fetch(results_by_path(order)[f"{SCENE}_analytic_udm2.zip"]["location"]).content
    assert manifest[f"{SCENE}_analytic_udm2.zip"]["digests"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest[f"{SCENE}_analytic_udm2.zip"]["media_type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        inner = json.loads(archive.read("manifest.json"))
        members = set(archive.namelist()) - {"manifest.json"}
        assert members == {f["path"] for f in inner["files"]}
        assert f"PSScene/{SCENE}_3B_AnalyticMS.tif" in members
        for entry in inner["files"]:
            assert (
                hashlib.md5(archive.read(entry["path"]), usedforsecurity=False).hexdigest()
                == entry["digests"]["md5"]
            )


@pytest.mark.usefixtures("instant_timeline")
def test_single_archive_is_named_from_the_archive_filename_template(api: PlanetApi) -> None:
    delivery = {
        "archive_type": "zip",
        "single_archive": True,
        "archive_filename": "{{name}}_{{order_id}}.zip",
    }
    order = api.create_and_wait(
        _order("PSScene", "analytic_udm2", [SCENE, OTHER_SCENE], name="bulk", delivery=delivery)
    )

    archive_path = f"bulk_{order['id']}.zip"
    assert _paths(order) == {archive_path}
    body = fetch(results_by_path(order)[archive_path]["location"]).content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        items = {
            name.split("/")[1].split("_3B")[0].removesuffix("_metadata.json")
            for name in archive.namelist()
            if "/" in name
        }
    assert items == {SCENE, OTHER_SCENE}


@pytest.mark.usefixtures("instant_timeline")
def test_partial_single_archive_holds_only_the_delivered_items(api: PlanetApi) -> None:
    delivery = {"archive_type": "zip", "single_archive": True}
    order = api.create_and_wait(
        _order(
            "PSScene", "analytic_udm2", [SCENE, "20220304_fail_1"], order_type="partial", delivery=delivery
        )
    )

    assert order["state"] == "partial"
    body = fetch(results_by_path(order)[f"{order['id']}.zip"]["location"]).content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert not any("fail" in name for name in archive.namelist())


@pytest.mark.usefixtures("instant_timeline")
def test_stac_metadata_adds_item_collection_and_catalog_documents(api: PlanetApi) -> None:
    order = api.create_and_wait(_order("PSScene", "analytic_udm2", [SCENE], metadata={"stac": {}}))

    paths = _paths(order)
    assert {"catalog.json", "PSScene/collection.json", f"PSScene/{SCENE}.json"} <= paths
    stac_item = fetch(results_by_path(order)[f"PSScene/{SCENE}.json"]["location"]).json()
    assert stac_item["stac_version"] == "1.0.0" and stac_item["id"] == SCENE
    assert pystac.Item.from_dict(stac_item).datetime == datetime(2022, 3, 4, tzinfo=UTC)  # a valid STAC Item
    assert stac_item["assets"]["ortho_udm2"]["href"] == f"./{SCENE}_3B_udm2.tif"
    assert {f["path"] for f in _manifest(order)["files"]} == paths


@pytest.mark.usefixtures("instant_timeline")
def test_clip_tool_appends_clip_to_every_asset_file_but_not_the_item_metadata(api: PlanetApi) -> None:
    order = api.create_and_wait(_order("PSScene", "analytic_udm2", tools=[{"clip": {"aoi": CLIP_AOI}}]))

    assert _paths(order) == {
        f"PSScene/{SCENE}_3B_AnalyticMS_clip.tif",
        f"PSScene/{SCENE}_3B_AnalyticMS_metadata_clip.xml",
        f"PSScene/{SCENE}_3B_udm2_clip.tif",
        f"PSScene/{SCENE}_metadata.json",
    }


@pytest.mark.usefixtures("instant_timeline")
def test_composite_tool_delivers_one_composite_at_the_order_root(api: PlanetApi) -> None:
    order = api.create_and_wait(
        _order("PSScene", "analytic_udm2", [SCENE, OTHER_SCENE], tools=[{"composite": {}}])
    )

    assert _paths(order) == {
        "composite.tif",
        "composite_udm.tif",
        f"{SCENE}_metadata.json",
        f"{SCENE}_3B_AnalyticMS_metadata.xml",
        f"{OTHER_SCENE}_metadata.json",
        f"{OTHER_SCENE}_3B_AnalyticMS_metadata.xml",
    }
    composite = next(f for f in _manifest(order)["files"] if f["path"] == "composite.tif")
    assert "planet/asset_type" not in composite["annotations"]


@pytest.mark.usefixtures("instant_timeline")
def test_tile_tool_splits_each_raster_into_tiles_named_by_the_template(api: PlanetApi) -> None:
    tools = [{"tile": {"tile_size": 256, "name_template": "{tilex:04d}_{tiley:04d}.tif"}}]
    order = api.create_and_wait(_order("PSScene", "analytic_udm2", tools=tools))

    tiles = {p for p in _paths(order) if p.startswith(f"PSScene/{SCENE}_3B_AnalyticMS/")}
    assert tiles == {f"PSScene/{SCENE}_3B_AnalyticMS/{x:04d}_{y:04d}.tif" for x in (0, 1) for y in (0, 1)}
    assert len([p for p in _paths(order) if p.endswith(".tif")]) == 8


@pytest.mark.usefixtures("instant_timeline")
def test_bandmath_and_harmonize_rename_only_the_analytic_raster(api: PlanetApi) -> None:
    tools = [
        {"harmonize": {"target_sensor": "Sentinel-2"}},
        {"bandmath": {"b1": "b4-b3", "pixel_type": "32R"}},
    ]
    order = api.create_and_wait(_order("PSScene", "analytic_sr_udm2", tools=tools))

    assert f"PSScene/{SCENE}_3B_AnalyticMS_SR_harmonized_bandmath.tif" in _paths(order)
    assert f"PSScene/{SCENE}_3B_udm2.tif" in _paths(order)


def test_hosting_order_gets_planets_cog_tool_appended(api: PlanetApi) -> None:
    created = api.create(_order("PSScene", "analytic_udm2", hosting={"sentinel_hub": {}}))

    assert created["tools"] == [{"file_format": {"format": "COG"}}]


@pytest.mark.usefixtures("instant_timeline")
def test_basemaps_merge_delivers_one_raster_per_mosaic(api: PlanetApi) -> None:
    order = api.create_and_wait(
        {**basemaps_request(quad_ids=["1050-1374", "1050-1375"]), "tools": [{"merge": {}}]}
    )

    assert _paths(order) == {"global_monthly_2022_01_mosaic/global_monthly_2022_01_mosaic_merged.tif"}


@pytest.mark.usefixtures("sdk_spec_from_fake")
def test_bundles_spec_is_served_in_the_spec_shape_the_sdk_reads(fake: FakePlanetServer) -> None:
    assert specs.validate_bundle("PSScene", "ANALYTIC_SR_UDM2") == "analytic_sr_udm2"
    assert "visual" in specs.get_product_bundles("SkySatCollect")
    assert "ortho_udm2" in specs.get_supported_assets("PSScene")
    with pytest.raises(specs.SpecificationException):
        specs.validate_bundle("PSScene", "analytic")
    spec = requests.get(fake.base_url + "/bundles/spec", timeout=10).json()
    assert spec["bundles"]["visual"]["assets"]["PSScene"] == ["ortho_visual"]


@pytest.mark.parametrize(
    "delivery", [{"archive_type": "zip"}, {"archive_type": "zip", "single_archive": True}]
)
def test_zip_orders_survive_the_stores_export_and_import_with_identical_archives(
    delivery: dict[str, Any],
) -> None:
    # The local stack snapshots the fake's orders (pickled) after every API call; a zip order used to break
    # every snapshot, and so every later API call, because its lazily built archive could not be pickled.
    from planet_fake.config import FakePlanetConfig
    from planet_fake.orders import Order
    from planet_fake.store import FakePlanetStore

    config = FakePlanetConfig(queued_seconds=0, running_seconds=0)
    before = FakePlanetStore(config)
    order = Order.create(
        "key", _order("PSScene", "analytic_udm2", delivery=delivery), config, datetime.now(UTC)
    )
    before.add_order(order)
    built = [f.data() for f in order.delivered_files() if f.path.endswith(".zip")]

    after = FakePlanetStore(config)
    assert after.import_state(before.export_state()) == 1
    restored = after.order_of(order.id, "key")

    assert restored is not None and built
    assert [f.data() for f in restored.delivered_files() if f.path.endswith(".zip")] == built
