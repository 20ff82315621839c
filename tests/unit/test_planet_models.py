"""Planet wire models: the seed create examples, the 400 shape for bad requests, responses, manifest."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from order_core.models.planet import (
    Manifest,
    OrderRequest,
    OrderState,
    PlanetOrder,
    invalid_json_body,
    planet_error_body,
)
from pydantic import ValidationError

EVENTS = Path(__file__).resolve().parents[2] / "events" / "planet"

SEED_EXAMPLES = [
    "create_scenes_gcs_clip.json",
    "create_scenes_direct.json",
    "create_scenes_hosting.json",
    "create_basemaps_geometry.json",
    "create_basemaps_quads.json",
]

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}

# The request build_request() produced in the reference (§3), which has no source_type.
REFERENCE_FULL_REQUEST: dict[str, Any] = {
    "name": "n",
    "products": [{"item_ids": ["x"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
    "delivery": {
        "archive_type": "zip",
        "archive_filename": "{{name}}_{{order_id}}.zip",
        "single_archive": True,
        "amazon_s3": {
            "aws_access_key_id": "AK",
            "aws_secret_access_key": "SK-very-secret",
            "bucket": "bkt",
            "aws_region": "us-east-1",
            "path_prefix": "pre/",
        },
    },
    "notifications": {"webhook": {"url": "https://h/x", "per_order": True}, "email": True},
    "order_type": "partial",
    "tools": [
        {"clip": {"aoi": SQUARE}},
        {"file_format": {"format": "COG"}},
        {"harmonize": {"target_sensor": "Sentinel-2"}},
    ],
    "metadata": {"stac": {}},
    "hosting": {"sentinel_hub": {"collection_id": "abc"}},
}


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def scenes_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "unit order",
        "source_type": "scenes",
        "products": [
            {"item_ids": ["20220304_093300_37_2430"], "item_type": "PSScene", "product_bundle": "visual"}
        ],
    }
    body.update(overrides)
    return body


def basemaps_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "unit basemaps order",
        "source_type": "basemaps",
        "products": [{"mosaic_name": "global_monthly_2022_01_mosaic", "quad_ids": ["1050-1374"]}],
    }
    body.update(overrides)
    return body


def rejection(body: Any) -> dict[str, Any]:
    """Validate ``body``, expect a rejection, and check the parts of the 400 shape every rejection shares."""
    with pytest.raises(ValidationError) as caught:
        OrderRequest.model_validate(body)
    error_body = planet_error_body(caught.value)
    assert set(error_body) == {"field", "general"}
    assert error_body["general"][0] == {"message": "Unable to accept order"}
    for messages in error_body["field"].values():
        for entry in messages:
            assert set(entry) == {"message"}
            assert "pydantic" not in entry["message"]
            assert "Input should" not in entry["message"]
    return error_body


def messages_for(error_body: dict[str, Any], field: str) -> list[str]:
    assert field in error_body["field"], f"{field!r} not among {sorted(error_body['field'])}"
    return [entry["message"] for entry in error_body["field"][field]]


def canonical(data: Any) -> str:
    # json text, not dict equality: {"a": 0} == {"a": 0.0} in Python, but not on the wire.
    return json.dumps(data, sort_keys=True)


# --- good requests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", SEED_EXAMPLES)
def test_order_request_seed_example_accepted_round_trips_to_same_json(event: str) -> None:
    body = load_event(event)

    request = OrderRequest.model_validate(body)

    assert canonical(request.to_wire()) == canonical({**body, "order_type": "full"})
    assert canonical(request.model_dump(mode="json", exclude_none=True, by_alias=True)) == canonical(
        request.to_wire()
    )


def test_order_request_reference_build_request_output_round_trips_with_source_type_added() -> None:
    request = OrderRequest.model_validate(copy.deepcopy(REFERENCE_FULL_REQUEST))

    assert canonical(request.to_wire()) == canonical({**REFERENCE_FULL_REQUEST, "source_type": "scenes"})
    assert request.delivery is not None and request.delivery.destination_name == "amazon_s3"
    assert [tool.name for tool in request.tools or []] == ["clip", "file_format", "harmonize"]


def test_order_request_reference_basemaps_merge_and_bare_clip_accepted() -> None:
    body = basemaps_request(
        order_type="partial",
        products=[{"mosaic_name": "global_monthly_2022_01_mosaic", "geometry": SQUARE}],
        tools=[{"merge": {}}, {"clip": {}}],
    )

    assert OrderRequest.model_validate(body).to_wire()["tools"] == [{"merge": {}}, {"clip": {}}]


def test_order_request_free_tool_params_and_geojson_extras_pass_through_untouched() -> None:
    aoi = {**SQUARE, "bbox": [0, 0, 1, 1]}
    tools = [
        {"clip": {"aoi": aoi}},
        {"reproject": {"projection": "EPSG:4326", "resolution": 3, "kernel": "cubic"}},
        {"tile": {"tile_size": 1232, "origin_x": -180, "name_template": "{tilex}_{tiley}"}},
        {"bandmath": {"b1": "b1", "pixel_type": "32R"}},
    ]

    wire = OrderRequest.model_validate(scenes_request(tools=tools)).to_wire()

    assert canonical(wire["tools"]) == canonical(tools)


def test_order_request_exactly_500_items_accepted() -> None:
    ids = [f"item_{i}" for i in range(250)]
    products = [{"item_ids": ids, "item_type": "PSScene", "product_bundle": "visual"}] * 2

    assert OrderRequest.model_validate(scenes_request(products=products)).item_count == 500


def test_order_request_repr_hides_delivery_credentials() -> None:
    request = OrderRequest.model_validate(copy.deepcopy(REFERENCE_FULL_REQUEST))

    assert "SK-very-secret" not in repr(request)
    assert "bkt" in repr(request)


# --- bad requests ------------------------------------------------------------------------------------------


def test_invalid_json_body_seed_malformed_example_names_line_and_column() -> None:
    text = (EVENTS / "create_scenes_gcs_clip_malformed.txt").read_text()

    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(text)
    body = invalid_json_body(caught.value)

    assert body == {
        "field": {},
        "general": [
            {"message": "Request body is not valid JSON: Expecting ',' delimiter at line 15 column 7"}
        ],
    }


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"name": 5}, "name", "must be a string"),
        ({"subscription_id": "12"}, "subscription_id", "must be an integer"),
        ({"delivery": {"single_archive": "true"}}, "delivery.single_archive", "must be true or false"),
        ({"products": {"item_ids": ["x"]}}, "products", "must be a list"),
        ({"notifications": ["email"]}, "notifications", "must be an object"),
        ({"order_type": "fast"}, "order_type", "must be 'full' or 'partial'; got 'fast'"),
    ],
)
def test_order_request_wrong_type_rejected_naming_field(
    overrides: dict[str, Any], field: str, expected: str
) -> None:
    error_body = rejection(scenes_request(**overrides))

    assert messages_for(error_body, field) == [expected]


def test_order_request_unknown_source_type_rejected_listing_valid_ones() -> None:
    error_body = rejection(scenes_request(source_type="tasks"))

    assert messages_for(error_body, "source_type") == ["must be 'scenes' or 'basemaps'; got 'tasks'"]


def test_order_request_more_than_500_items_rejected() -> None:
    ids = [f"item_{i}" for i in range(300)]
    products = [{"item_ids": ids, "item_type": "PSScene", "product_bundle": "visual"}] * 2

    error_body = rejection(scenes_request(products=products))

    assert messages_for(error_body, "products") == [
        "an order may contain at most 500 items (item ids plus quad ids); this one has 600"
    ]


def test_order_request_quad_ids_count_towards_500_item_limit() -> None:
    quads = [f"{i}-1374" for i in range(501)]

    error_body = rejection(basemaps_request(products=[{"mosaic_name": "m", "quad_ids": quads}]))

    assert "this one has 501" in messages_for(error_body, "products")[0]


def test_order_request_empty_product_list_rejected() -> None:
    error_body = rejection(scenes_request(products=[]))

    assert messages_for(error_body, "products") == ["must contain at least one product"]


def test_order_request_empty_item_ids_rejected() -> None:
    products = [{"item_ids": [], "item_type": "PSScene", "product_bundle": "visual"}]

    error_body = rejection(scenes_request(products=products))

    assert messages_for(error_body, "products.0.item_ids") == ["must contain at least one item id"]


def test_order_request_missing_name_rejected() -> None:
    body = scenes_request()
    del body["name"]

    assert messages_for(rejection(body), "name") == ["is required"]


def test_order_request_blank_name_rejected() -> None:
    assert messages_for(rejection(scenes_request(name="   ")), "name") == ["must not be empty"]


def test_order_request_unclosed_clip_ring_rejected() -> None:
    open_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5]]]}

    error_body = rejection(scenes_request(tools=[{"clip": {"aoi": open_ring}}]))

    [message] = messages_for(error_body, "tools.0.clip.aoi.coordinates.0")
    assert message.startswith("linear ring is not closed")


def test_order_request_longitude_past_the_antimeridian_accepted_as_planets_tools_page_sends_it() -> None:
    # Planet's tools docs clip with a longitude of 181.76: coordinates are not range-checked (structure only).
    aoi = {
        "type": "Polygon",
        "coordinates": [[[179.9, -16.1], [181.76, -16.1], [181.76, -15.8], [179.9, -15.8], [179.9, -16.1]]],
    }

    request = OrderRequest.model_validate(scenes_request(tools=[{"clip": {"aoi": aoi}}]))

    assert request.to_wire()["tools"] == [{"clip": {"aoi": aoi}}]


def test_order_request_basemaps_geometry_latitude_outside_90_left_to_planet() -> None:
    geometry = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 95], [0, 0]]]]}

    request = OrderRequest.model_validate(
        basemaps_request(products=[{"mosaic_name": "m", "geometry": geometry}])
    )

    assert request.to_wire()["products"][0]["geometry"] == geometry


def test_order_request_clip_aoi_feature_reference_accepted() -> None:
    aoi = {"type": "ref", "content": "pl:features/my/fields-abc/field-1"}

    request = OrderRequest.model_validate(scenes_request(tools=[{"clip": {"aoi": aoi}}]))

    assert request.to_wire()["tools"] == [{"clip": {"aoi": aoi}}]


def test_order_request_clip_aoi_reference_without_content_rejected_naming_it() -> None:
    error_body = rejection(scenes_request(tools=[{"clip": {"aoi": {"type": "ref"}}}]))

    assert messages_for(error_body, "tools.0.clip.aoi.content") == ["is required"]


def test_order_request_s3_compatible_without_use_path_style_accepted() -> None:
    delivery = {
        "s3_compatible": {
            "endpoint": "https://s3.example.net",
            "bucket": "b",
            "region": "r",
            "access_key_id": "AK",
            "secret_access_key": "SK",
        }
    }

    request = OrderRequest.model_validate(scenes_request(delivery=delivery))

    assert request.to_wire()["delivery"] == delivery


@pytest.mark.parametrize(
    ("aoi", "field", "fragment"),
    [
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            "coordinates.0",
            "at least 4 positions",
        ),
        ({"type": "Polygon", "coordinates": []}, "coordinates", "non-empty list of linear rings"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1], [1, 1], [0, 0]]]},
            "coordinates.0.1",
            "[longitude, latitude]",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, "0"], [1, 1], [0, 0]]]},
            "coordinates.0.1",
            "numbers",
        ),
        (
            {"type": "Point", "coordinates": [0, 0]},
            "type",
            "must be 'Polygon' or 'MultiPolygon'; got 'Point'",
        ),
    ],
)
def test_order_request_malformed_geojson_rejected(aoi: dict[str, Any], field: str, fragment: str) -> None:
    error_body = rejection(scenes_request(tools=[{"clip": {"aoi": aoi}}]))

    assert fragment in messages_for(error_body, f"tools.0.clip.aoi.{field}")[0]


def test_order_request_unknown_tool_rejected_listing_scenes_tools() -> None:
    error_body = rejection(scenes_request(tools=[{"clip": {"aoi": SQUARE}}, {"blur": {"radius": 3}}]))

    assert messages_for(error_body, "tools.1") == [
        "unknown tool 'blur'; scenes orders accept: bandmath, clip, composite, coregister, file_format, "
        "harmonize, reproject, tile, toar"
    ]


def test_order_request_basemaps_tool_in_scenes_order_rejected() -> None:
    error_body = rejection(scenes_request(tools=[{"merge": {}}]))

    assert messages_for(error_body, "tools.0")[0].startswith(
        "tool 'merge' is only available for basemaps orders"
    )


def test_order_request_tool_with_two_keys_rejected() -> None:
    error_body = rejection(scenes_request(tools=[{"clip": {"aoi": SQUARE}, "toar": {}}]))

    assert "exactly one key" in messages_for(error_body, "tools.0")[0]


def test_order_request_scenes_clip_without_aoi_rejected() -> None:
    error_body = rejection(scenes_request(tools=[{"clip": {}}]))

    assert messages_for(error_body, "tools.0.clip.aoi")[0].startswith("is required for scenes orders")


@pytest.mark.parametrize(
    ("tool", "field", "expected"),
    [
        (
            {"file_format": {"format": "PNG"}},
            "tools.0.file_format.format",
            "must be 'COG' or 'PL_NITF'; got 'PNG'",
        ),
        ({"reproject": {"resolution": 3}}, "tools.0.reproject.projection", "is required"),
        ({"harmonize": {}}, "tools.0.harmonize.target_sensor", "is required"),
        (
            {"reproject": {"projection": "EPSG:4326", "resolution": "3"}},
            "tools.0.reproject.resolution",
            "must be a number",
        ),
    ],
)
def test_order_request_bad_tool_params_rejected(tool: dict[str, Any], field: str, expected: str) -> None:
    assert messages_for(rejection(scenes_request(tools=[tool])), field) == [expected]


def test_order_request_scenes_product_in_basemaps_order_rejected() -> None:
    products = [{"item_ids": ["x"], "item_type": "PSScene", "product_bundle": "visual"}]

    error_body = rejection(basemaps_request(products=products))

    [message] = messages_for(error_body, "products.0")
    assert "scenes product" in message and "source_type 'basemaps'" in message


def test_order_request_basemaps_product_without_source_type_rejected_with_hint() -> None:
    body = basemaps_request()
    del body["source_type"]

    [message] = messages_for(rejection(body), "products.0")
    assert "set source_type to 'basemaps'" in message


def test_order_request_basemaps_product_with_geometry_and_quads_rejected() -> None:
    products = [{"mosaic_name": "m", "geometry": SQUARE, "quad_ids": ["1-1"]}]

    error_body = rejection(basemaps_request(products=products))

    assert messages_for(error_body, "products.0") == [
        "a basemaps product needs exactly one of geometry or quad_ids"
    ]


def test_order_request_unknown_top_level_field_rejected_suggesting_closest() -> None:
    error_body = rejection(scenes_request(notification={"email": True}))

    [message] = messages_for(error_body, "notification")
    assert message.startswith("unknown field; did you mean 'notifications'?")


def test_order_request_misspelt_destination_field_rejected() -> None:
    delivery = {"google_cloud_storage": {"bucket": "b", "credentials": "c", "path_prefx": "p/"}}

    error_body = rejection(scenes_request(delivery=delivery))

    [message] = messages_for(error_body, "delivery.google_cloud_storage.path_prefx")
    assert "did you mean 'path_prefix'?" in message


def test_order_request_flat_webhook_fields_rejected_with_wire_format_hint() -> None:
    error_body = rejection(scenes_request(notifications={"webhook_url": "https://example.com/hook"}))

    assert messages_for(error_body, "notifications.webhook_url") == [
        "unknown field; use notifications.webhook.url"
    ]


def test_order_request_two_cloud_destinations_rejected() -> None:
    delivery = {
        "google_cloud_storage": {"bucket": "b", "credentials": "c"},
        "google_earth_engine": {"project": "p", "collection": "c"},
    }

    error_body = rejection(scenes_request(delivery=delivery))

    assert messages_for(error_body, "delivery") == [
        "at most one cloud destination is allowed; got google_cloud_storage, google_earth_engine"
    ]


def test_order_request_non_http_webhook_rejected() -> None:
    error_body = rejection(scenes_request(notifications={"webhook": {"url": "ftp://example.com/hook"}}))

    assert messages_for(error_body, "notifications.webhook.url") == ["must be an http:// or https:// URL"]


def test_order_request_body_not_an_object_rejected_in_general() -> None:
    error_body = rejection([scenes_request()])

    assert error_body == {
        "field": {},
        "general": [{"message": "Unable to accept order"}, {"message": "Request body must be a JSON object"}],
    }


# --- responses ---------------------------------------------------------------------------------------------

SUCCESS_ORDER: dict[str, Any] = {
    "_links": {
        "_self": "https://api.planet.com/compute/ops/orders/v2/193e5bd1-dedc-4c65-a539-6bc70e55d928",
        "results": [
            {
                "delivery": "success",
                "expires_at": "2022-06-30T02:57:15.492Z",
                "location": "https://api.planet.com/compute/ops/download/?token=T1",
                "name": "193e5bd1-dedc-4c65-a539-6bc70e55d928/manifest.json",
            },
            {
                "delivery": "success",
                "expires_at": "2022-06-30T02:57:15.498Z",
                "location": "https://api.planet.com/compute/ops/download/?token=T2",
                "name": "193e5bd1-dedc-4c65-a539-6bc70e55d928/PSScene/20210821_161925_80_2453_3B_Visual.tif",
            },
        ],
    },
    "created_on": "2022-05-04T01:01:57.864Z",
    "error_hints": [],
    "id": "193e5bd1-dedc-4c65-a539-6bc70e55d928",
    "last_message": "Manifest delivery completed",
    "last_modified": "2022-05-04T01:09:36.037Z",
    "name": "test",
    "products": [
        {"item_ids": ["20210821_161925_80_2453"], "item_type": "PSScene", "product_bundle": "visual"}
    ],
    "state": "success",
    "a_field_planet_added_later": {"x": 1},
}


def test_planet_order_success_response_parsed_with_results() -> None:
    order = PlanetOrder.model_validate(SUCCESS_ORDER)

    assert order.state is OrderState.success and order.is_final
    assert [r.name.rsplit("/", 1)[-1] for r in order.results] == [
        "manifest.json",
        "20210821_161925_80_2453_3B_Visual.tif",
    ]
    assert isinstance(order.results[0].expires_at, datetime)
    assert order.links.self_url == SUCCESS_ORDER["_links"]["_self"]


def test_planet_order_list_item_without_results_has_empty_results() -> None:
    item = {k: v for k, v in SUCCESS_ORDER.items() if k != "_links"} | {"_links": {"_self": "u"}}

    assert PlanetOrder.model_validate(item).results == []


def test_planet_order_dump_by_alias_uses_planet_link_names() -> None:
    dumped = PlanetOrder.model_validate(SUCCESS_ORDER).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )

    assert dumped["_links"]["_self"] == SUCCESS_ORDER["_links"]["_self"]
    assert "a_field_planet_added_later" not in dumped


def test_planet_order_unknown_state_read_as_running_keeping_planets_word() -> None:
    order = PlanetOrder.model_validate({**SUCCESS_ORDER, "state": "archived"})

    assert order.state is OrderState.running and not order.is_final
    assert order.reported_state == "archived" and not order.state_is_known


def test_planet_order_known_state_is_known() -> None:
    order = PlanetOrder.model_validate(SUCCESS_ORDER)

    assert order.state_is_known and order.reported_state == "success"


def test_planet_order_nulls_for_lists_and_links_read_as_absent() -> None:
    nulls = {"error_hints": None, "_links": None, "products": None, "name": None, "tools": None}

    order = PlanetOrder.model_validate({**SUCCESS_ORDER, **nulls})

    assert order.error_hints == [] and order.results == [] and order.products == [] and order.name == ""


def test_planet_order_odd_hints_and_timestamps_do_not_fail_the_parse() -> None:
    order = PlanetOrder.model_validate(
        {
            **SUCCESS_ORDER,
            "error_hints": ["item x unavailable", None, {"code": 7}],
            "created_on": "yesterday-ish",
            "last_modified": "2025-03-04T05:06:21.52333Z",
            "subscription_id": "1234",
        }
    )

    assert order.error_hints == ["item x unavailable", '{"code": 7}']
    assert order.created_on is None and order.last_modified is not None


def test_planet_order_unreadable_result_entry_left_out_not_failing_the_order() -> None:
    links = {"results": [{"name": "o/a.tif", "location": "u"}, {"location": "no name"}, None, "junk"]}

    order = PlanetOrder.model_validate({"id": "o", "state": "running", "_links": links})

    assert [r.name for r in order.results] == ["o/a.tif"]


@pytest.mark.parametrize(
    "body",
    [
        {"state": "running"},
        {"id": "o"},
        {"id": "o", "state": None},
        {"id": "", "state": "running"},
        {"id": "o", "state": 3},
        ["not", "an", "object"],
    ],
)
def test_planet_order_without_usable_id_or_state_rejected(body: Any) -> None:
    with pytest.raises(ValidationError):
        PlanetOrder.model_validate(body)


def test_result_link_unparseable_expiry_kept_as_text() -> None:
    order = PlanetOrder.model_validate(
        {"id": "o", "state": "running", "_links": {"results": [{"name": "o/f.tif", "expires_at": "soon"}]}}
    )

    assert order.results[0].expires_at == "soon"


@pytest.mark.parametrize(
    ("state", "final"),
    [
        ("queued", False),
        ("running", False),
        ("failed", True),
        ("success", True),
        ("partial", True),
        ("cancelled", True),
    ],
)
def test_order_state_is_final_only_after_running(state: str, final: bool) -> None:
    assert OrderState(state).is_final is final


def test_order_state_has_reached_follows_sdk_sequence() -> None:
    assert OrderState.running.has_reached("queued")
    assert not OrderState.queued.has_reached(OrderState.running)
    # The SDK's sequence is queued, running, failed, success, partial, cancelled; only position counts.
    assert OrderState.cancelled.has_reached(OrderState.success)
    assert not OrderState.failed.has_reached(OrderState.success)


def test_order_state_only_queued_is_cancellable() -> None:
    assert [s.value for s in OrderState if s.is_cancellable] == ["queued"]


# --- manifest ----------------------------------------------------------------------------------------------

MANIFEST: dict[str, Any] = {
    "name": "",
    "files": [
        {
            "path": "PSScene/20240909_021318_75_24ee_3B_AnalyticMS_SR_8b_clip.tif",
            "media_type": "image/tiff",
            "size": 83470,
            "digests": {
                "md5": "889710783E3D9CB23DA30A66B0169CA4",
                "sha256": "05f234406c8bb97df3ad364a2ec72db34af1e018c278d1af0423ead7a5138384",
            },
            "annotations": {
                "planet/asset_type": "ortho_analytic_8b_sr",
                "planet/bundle_type": "analytic_8b_sr_udm2",
                "planet/item_id": "20240909_021318_75_24ee",
                "planet/item_type": "PSScene",
            },
        },
        {
            "path": "PSScene4Band/20180205_181923_1031_metadata.json",
            "media_type": "application/json",
            "size": 900,
            "digests": {"md5": "468c53baa4e985ca076500e6e9e99e7f", "sha256": "ab"},
            "unexpected": True,
        },
    ],
}


def test_manifest_reference_sample_parsed() -> None:
    manifest = Manifest.model_validate(MANIFEST)

    first, second = manifest.files
    assert first.digests.md5 == "889710783e3d9cb23da30a66b0169ca4"
    assert (first.item_id, first.item_type, first.asset_type) == (
        "20240909_021318_75_24ee",
        "PSScene",
        "ortho_analytic_8b_sr",
    )
    assert second.annotations == {} and second.asset_type is None


@pytest.mark.parametrize(
    "path", ["../other-order/file.tif", "/etc/passwd", "PSScene/../../x", "a\\b.tif", ""]
)
def test_manifest_file_path_escaping_order_directory_rejected(path: str) -> None:
    with pytest.raises(ValidationError):
        Manifest.model_validate({"files": [{"path": path}]})


# --- what Planet refuses at create, refused by the gateway too (else a 202 that fails minutes later) -------

_ITEM = "20220304_093300_37_2430"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        pytest.param(
            {"tools": [{"toar": {}}, {"toar": {}}]}, "tools.1", "appears more than once", id="tool-twice"
        ),
        pytest.param(
            {"tools": [{"coregister": {"anchor_item": "20220101_x"}}]},
            "tools.0.coregister.anchor_item",
            "must be one of the order's item ids",
            id="coregister-anchor-not-in-order",
        ),
        pytest.param(
            {"tools": [{"tile": {}}]}, "tools.0.tile.tile_size", "positive integer", id="tile-no-size"
        ),
        pytest.param(
            {"tools": [{"bandmath": {"b2": "b2"}}]}, "tools.0.bandmath.b1", "is required", id="no-b1"
        ),
        pytest.param(
            {"tools": [{"composite": {"group_by": "day"}}]},
            "tools.0.composite.group_by",
            "must be one of 'order', 'strip_id'; got 'day'",
            id="composite-group-by-day",
        ),
        pytest.param(
            {"tools": [{"toar": {"scale_factor": -1}}]},
            "tools.0.toar.scale_factor",
            "positive integer",
            id="toar-negative-scale",
        ),
        pytest.param(
            {"delivery": {"single_archive": True}},
            "delivery.archive_type",
            "single_archive",
            id="single-archive",
        ),
        pytest.param(
            {"delivery": {"archive_filename": "a.zip"}},
            "delivery.archive_type",
            "archive_filename",
            id="archive-filename",
        ),
        pytest.param(
            {
                "products": [
                    {
                        "item_ids": [f"{_ITEM}_{n}" for n in range(51)],
                        "item_type": "SkySatCollect",
                        "product_bundle": "x",
                    }
                ],
                "delivery": {"archive_type": "zip"},
            },
            "products",
            "at most 50 items",
            id="zip-51-skysat",
        ),
    ],
)
def test_order_request_planet_refuses_at_create_rejected_naming_field(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    messages = messages_for(rejection(scenes_request(**overrides)), field)

    assert any(fragment in message for message in messages), messages


def test_order_request_zip_limit_counts_limited_item_types_across_products() -> None:
    def product(item_type: str, count: int) -> dict[str, Any]:
        return {
            "item_ids": [f"{_ITEM}_{n}" for n in range(count)],
            "item_type": item_type,
            "product_bundle": "x",
        }

    zip_delivery = {"archive_type": "zip"}
    at_limit = [product("SkySatCollect", 25), product("TanagerScene", 25), product("PSScene", 400)]
    over = [product("SkySatCollect", 25), product("PelicanScene", 26)]

    OrderRequest.model_validate(scenes_request(products=at_limit, delivery=zip_delivery))
    OrderRequest.model_validate(scenes_request(products=over))  # no zip: only the 500 limit applies
    assert (
        "this one has 51"
        in messages_for(rejection(scenes_request(products=over, delivery=zip_delivery)), "products")[0]
    )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"tools": [{"coregister": {"anchor_item": _ITEM}}]}, id="anchor-in-order"),
        pytest.param(
            {"tools": [{"tile": {"tile_size": 1232}}, {"toar": {"scale_factor": 10000}}]}, id="tile-toar"
        ),
        pytest.param({"tools": [{"composite": {"group_by": "strip_id"}}]}, id="composite-strip"),
        pytest.param(
            {"tools": [{"composite": {}}, {"bandmath": {"b1": "b1", "b2": "b2"}}]}, id="composite-bandmath"
        ),
        pytest.param({"delivery": {"archive_type": "zip", "single_archive": True}}, id="single-archive-zip"),
    ],
)
def test_order_request_what_planet_accepts_still_accepted(overrides: dict[str, Any]) -> None:
    OrderRequest.model_validate(scenes_request(**overrides))
