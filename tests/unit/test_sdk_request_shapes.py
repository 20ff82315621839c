"""Every request shape Planet's own SDK builds (``planet.order_request``, planet 3.7) passes the validation
the API's create route applies: the request model, then the item type and bundle check against a spec
shaped like Planet's. And the request goes to Planet unchanged: ``to_wire()`` gives back what the SDK built.

The SDK checks item types and bundles against the spec it fetches from Planet; that fetch is replaced by the
same spec-shaped payload, so nothing here touches the network.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from order_core.models.planet import OrderRequest
from order_core.services.bundles import BundlesSpec, check_request_against_spec
from planet import order_request as sdk
from planet import specs as sdk_specs
from test_bundles_spec import planet_spec_payload

PAYLOAD = planet_spec_payload()
SPEC = BundlesSpec.from_planet(PAYLOAD)

AOI = {
    "type": "Polygon",
    "coordinates": [[[37.79, 14.84], [37.90, 14.84], [37.90, 14.94], [37.79, 14.94], [37.79, 14.84]]],
}


@pytest.fixture(autouse=True)
def sdk_spec_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    bundles = PAYLOAD["bundles"]
    cache = {
        "bundles": bundles,
        "bundle_names": bundles.keys(),
        "item_types": {t for b in bundles.values() for t in b["assets"]},
    }
    monkeypatch.setattr(sdk_specs.PRODUCT_BUNDLES, "cache", cache, raising=False)


def products() -> list[dict[str, Any]]:
    return [sdk.product(["20220304_093300_37_2430", "20220305_093440_25_2429"], "analytic_udm2", "PSScene")]


def accepted(request: dict[str, Any]) -> OrderRequest:
    """What the create route does before recording an order: model validation, then the spec check."""
    model = OrderRequest.model_validate(json.loads(json.dumps(request)))  # as it arrives: JSON
    assert check_request_against_spec(model, SPEC) == []
    wire = model.to_wire()
    expected = {"source_type": "scenes", "order_type": "full", **request}
    assert json.dumps(wire, sort_keys=True) == json.dumps(expected, sort_keys=True)
    return model


TOOLS = {
    "clip-polygon": lambda: sdk.clip_tool(AOI),
    "clip-multipolygon": lambda: sdk.clip_tool({"type": "MultiPolygon", "coordinates": [AOI["coordinates"]]}),
    "clip-feature": lambda: sdk.clip_tool({"type": "Feature", "geometry": AOI, "properties": {}}),
    "clip-feature-ref": lambda: sdk.clip_tool("pl:features/my/fields-a1b2c3/field-1"),
    "clip-ref-dict": lambda: sdk.clip_tool(
        {"type": "ref", "content": "pl:features/my/fields-a1b2c3/field-1"}
    ),
    "composite": lambda: sdk.composite_tool(),
    "composite-by-strip": lambda: sdk.composite_tool(group_by="strip_id"),
    "coregister": lambda: sdk.coregister_tool("20220304_093300_37_2430"),
    "file-format-cog": lambda: sdk.file_format_tool("COG"),
    "file-format-nitf": lambda: sdk.file_format_tool("PL_NITF"),
    "reproject": lambda: sdk.reproject_tool("EPSG:4326", resolution=0.00003, kernel="cubic"),
    "tile": lambda: sdk.tile_tool(
        1232,
        origin_x=-180,
        origin_y=-90,
        pixel_size=0.000027056277056,
        name_template="C_{tilex:04d}_{tiley:04d}",
    ),
    "toar": lambda: sdk.toar_tool(scale_factor=10000),
    "toar-default": lambda: sdk.toar_tool(),
    "harmonize": lambda: sdk.harmonize_tool("Sentinel-2"),
    "bandmath": lambda: sdk.band_math_tool(b1="b1", b2="(b4-b3)/(b4+b3)", pixel_type="32R"),
}


@pytest.mark.parametrize("tool", TOOLS.values(), ids=TOOLS.keys())
def test_sdk_tool_builder_output_accepted_unchanged(tool: Any) -> None:
    accepted(sdk.build_request("tool order", products(), tools=[tool()]))


CLOUDS = {
    "amazon_s3": lambda: sdk.amazon_s3("AKIA", "secret", "bucket", "us-east-2", "folder/prefix/"),
    "azure_blob_storage": lambda: sdk.azure_blob_storage(
        "account", "container", "sv=2019&sig=x", storage_endpoint_suffix="core.windows.net", path_prefix="p/"
    ),
    "google_cloud_storage": lambda: sdk.google_cloud_storage("bucket", "eyJjcmVkcyI6IDF9", "p/"),
    "google_earth_engine": lambda: sdk.google_earth_engine("project", "collection"),
    "oracle_cloud_storage": lambda: sdk.oracle_cloud_storage("key", "secret", "bucket", "region", "ns", "p/"),
    "s3_compatible": lambda: sdk.s3_compatible("https://s3.example.net", "bucket", "region", "ak", "sk"),
    "s3_compatible-path-style": lambda: sdk.s3_compatible(
        "https://s3.example.net", "bucket", "region", "ak", "sk", use_path_style=True, path_prefix="p/"
    ),
    "destination": lambda: sdk.destination("pl:destinations/my-bucket-abc", path_prefix="p/"),
    "default-destination": lambda: sdk.default_destination(),
}


@pytest.mark.parametrize("cloud", CLOUDS.values(), ids=CLOUDS.keys())
def test_sdk_cloud_delivery_builder_output_accepted_as_cloud_delivery(cloud: Any) -> None:
    model = accepted(
        sdk.build_request("cloud order", products(), delivery=sdk.delivery(cloud_config=cloud()))
    )

    assert model.delivery is not None and model.delivery.destination_name is not None


def test_sdk_archive_only_delivery_accepted_as_direct_download() -> None:
    delivery = sdk.delivery(archive_type="zip", single_archive=True, archive_filename="{{name}}.zip")

    model = accepted(sdk.build_request("zip order", products(), delivery=delivery))

    assert model.delivery is not None and model.delivery.destination_name is None


def test_sdk_full_build_request_accepted_unchanged() -> None:
    request = sdk.build_request(
        "everything",
        [
            sdk.product(
                ["20220304_093300_37_2430"], "analytic_8b_sr_udm2", "PSScene", fallback_bundle="analytic_udm2"
            )
        ],
        subscription_id=1234,
        delivery=sdk.delivery(archive_type="zip", cloud_config=sdk.amazon_s3("AK", "SK", "b", "us-east-1")),
        notifications=sdk.notifications(
            email=True, webhook_url="https://hooks.example.com/p", webhook_per_order=True
        ),
        order_type="partial",
        tools=[sdk.clip_tool(AOI), sdk.harmonize_tool("Sentinel-2"), sdk.file_format_tool("COG")],
        stac={"stac": {}},
        hosting="sentinel_hub",
        collection_id="collection-1",
        create_configuration=True,
    )

    model = accepted(request)

    assert model.order_type == "partial" and model.subscription_id == 1234
    assert request["products"][0]["product_bundle"] == "analytic_8b_sr_udm2,analytic_udm2"


def test_sdk_hosting_without_collection_accepted() -> None:
    accepted(sdk.build_request("hosted", products(), hosting="sentinel_hub"))


@pytest.mark.parametrize(
    ("item_type", "bundle", "fallback"),
    [
        ("SkySatCollect", "pansharpened_udm2", "pansharpened"),
        ("Sentinel2L1C", "analytic", None),
        ("TanagerScene", "radiance_hdf5", "basic_radiance_hdf5"),
        ("psscene", "Visual", None),  # the SDK corrects the case itself
    ],
)
def test_sdk_product_builder_output_accepted_for_other_item_types(
    item_type: str, bundle: str, fallback: str | None
) -> None:
    accepted(sdk.build_request("o", [sdk.product(["id-1"], bundle, item_type, fallback_bundle=fallback)]))
