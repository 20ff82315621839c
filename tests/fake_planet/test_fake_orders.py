"""Create, get (timeline, results, outcomes), cancel, bulk cancel, stats and authentication."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from planet_fake.server import FakePlanetServer
from planet_fake.timefmt import NO_EXPIRY

from .support import KEY, PlanetApi, basemaps_request, fetch, results_by_path, scenes_request

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SCENE_FILES = ("_3B_AnalyticMS.tif", "_3B_AnalyticMS_metadata.xml", "_3B_udm2.tif", "_metadata.json")
AMSTERDAM = {
    "type": "Polygon",
    "coordinates": [
        [
            [4.607406, 52.353994],
            [4.680005, 52.353994],
            [4.680005, 52.395523],
            [4.607406, 52.395523],
            [4.607406, 52.353994],
        ]
    ],
}


def test_create_valid_request_returns_queued_order_echoing_request(api: PlanetApi) -> None:
    request = scenes_request(notifications={"email": True}, tools=[{"file_format": {"format": "COG"}}])
    response = api.session.post(api.url("/orders/v2"), json=request, timeout=10)

    assert response.status_code == 202
    order = response.json()
    assert order["state"] == "queued"
    assert order["last_message"] == "Preparing order"
    assert order["error_hints"] == []
    assert order["_links"] == {"_self": api.url(f"/orders/v2/{order['id']}")}
    assert uuid.UUID(order["id"])
    assert RFC3339_MS.match(order["created_on"]) and order["last_modified"] == order["created_on"]
    assert "order_type" not in order  # not sent, so not echoed
    for key in ("name", "source_type", "products", "notifications", "tools"):
        assert order[key] == request[key]


def test_create_without_source_type_echoes_none_and_lists_as_scenes(api: PlanetApi) -> None:
    request = scenes_request()
    del request["source_type"]

    created = api.create(request)

    assert "source_type" not in created
    listed = api.list(source_type="scenes").json()["orders"]
    assert [order["id"] for order in listed] == [created["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"products": scenes_request()["products"]}, "Name"),
        ({"name": "n", "products": []}, "Products"),
        ({"name": "n", "products": [{"item_ids": ["a"], "product_bundle": "visual"}]}, "Products"),
        ({"name": "n", "source_type": "landsat", "products": scenes_request()["products"]}, "SourceType"),
        ({"name": "n", "source_type": "basemaps", "products": [{"mosaic_name": "m"}]}, "Products"),
        (["not", "an", "object"], "Body"),
    ],
)
def test_create_invalid_request_returns_400_with_field_errors(
    api: PlanetApi, body: object, field: str
) -> None:
    response = api.session.post(api.url("/orders/v2"), json=body, timeout=10)

    assert response.status_code == 400
    errors = response.json()
    assert errors["general"] == [{"message": "Unable to accept order"}]
    assert list(errors["field"]) == [field] and errors["field"][field][0]["message"]


def test_get_order_reaches_success_with_every_result_linked(api: PlanetApi) -> None:
    item_ids = ["20220304_093300_37_2430", "20220304_093257_90_2430"]
    created = api.create(scenes_request(item_ids=item_ids))

    order = api.wait(created["id"])

    assert order["state"] == "success"
    assert order["last_message"] == "Manifest delivery completed"
    assert order["error_hints"] == []
    assert order["created_on"] == created["created_on"] < order["last_modified"]
    results = results_by_path(order)
    expected = {"manifest.json"} | {f"PSScene/{i}{suffix}" for i in item_ids for suffix in SCENE_FILES}
    assert set(results) == expected
    assert next(iter(results)) == "manifest.json"
    for result in results.values():
        assert result["delivery"] == "success"
        assert result["location"].startswith(api.url("/download/?token="))
        assert RFC3339_MS.match(result["expires_at"])
        assert datetime.fromisoformat(result["expires_at"]) > datetime.now(UTC)


def test_order_timeline_runs_items_one_by_one_then_ends(fake: FakePlanetServer, api: PlanetApi) -> None:
    """Read at chosen instants (not wall-clock polls): queued 0.5 s, then three items finish at
    0.625, 0.75 and 0.875 s, then the order ends at 1 s."""
    order = fake.store.find_order(api.create(scenes_request(item_ids=["a", "b", "c"]))["id"])
    assert order is not None

    def at(seconds: float) -> tuple[str, tuple[str, ...] | None, bool]:
        snap = order.snapshot(order.created + timedelta(seconds=seconds))
        return snap.state, snap.item_states, snap.manifest_ready

    assert at(0.45) == ("queued", None, False)
    assert at(0.55) == ("running", ("pending", "pending", "pending"), False)
    assert at(0.70) == ("running", ("success", "pending", "pending"), False)
    assert at(0.95) == ("running", ("success", "success", "success"), False)
    assert at(1.05) == ("success", ("success", "success", "success"), True)


def test_get_running_order_lists_pending_results_without_links(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 60})
    order = api.wait(api.create(scenes_request(item_ids=["a", "b"]))["id"], ("running",))

    results = results_by_path(order)
    assert "manifest.json" not in results
    assert len(results) == 8
    assert all(r["delivery"] == "pending" and "location" not in r for r in results.values())


@pytest.mark.usefixtures("instant_timeline")
def test_get_order_twice_regenerates_links_with_current_ttl(fake: FakePlanetServer, api: PlanetApi) -> None:
    order = api.create_and_wait(scenes_request())
    first = results_by_path(order)["manifest.json"]
    fake.store.update_config({"link_ttl_seconds": 7200})

    second = results_by_path(api.get(order["id"]).json())["manifest.json"]

    gap = datetime.fromisoformat(second["expires_at"]) - datetime.fromisoformat(first["expires_at"])
    assert gap >= timedelta(seconds=3599)
    assert second["location"] != first["location"]


def test_get_unknown_order_returns_404_message(api: PlanetApi) -> None:
    order_id = str(uuid.uuid4())

    response = api.get(order_id)

    assert response.status_code == 404
    assert response.json() == {"message": f"Could not load order ID: {order_id}."}


def test_get_other_keys_order_returns_404(api: PlanetApi, other_api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]

    response = other_api.get(order_id)

    assert response.status_code == 404
    assert response.json() == {"message": f"Could not load order ID: {order_id}."}


@pytest.mark.usefixtures("instant_timeline")
@pytest.mark.parametrize(
    "extra",
    [
        {"delivery": {"amazon_s3": {"bucket": "b", "aws_region": "us-east-1", "aws_access_key_id": "A"}}},
        {"delivery": {"destination": {"ref": "pl:destinations/my-bucket"}}},
        {"hosting": {"sentinel_hub": {"collection_id": "abc"}}},
    ],
)
def test_get_delivered_elsewhere_order_lists_results_without_links(
    api: PlanetApi, extra: dict[str, Any]
) -> None:
    order = api.create_and_wait(scenes_request(**extra))

    results = results_by_path(order)
    assert "manifest.json" in results and len(results) == 5
    for result in results.values():
        assert result == {"name": result["name"], "delivery": "success", "expires_at": NO_EXPIRY}


def test_create_hosting_without_collection_id_returns_generated_id(api: PlanetApi) -> None:
    order = api.create(scenes_request(hosting={"sentinel_hub": {}}))

    collection_id = order["hosting"]["sentinel_hub"]["collection_id"]
    assert uuid.UUID(collection_id)
    assert api.get(order["id"]).json()["hosting"] == order["hosting"]


@pytest.mark.usefixtures("instant_timeline")
def test_basemaps_order_by_quad_ids_delivers_one_file_per_quad(api: PlanetApi) -> None:
    order = api.create_and_wait(basemaps_request(quad_ids=["1050-1374", "1050-1375"]))

    assert set(results_by_path(order)) == {
        "manifest.json",
        "global_monthly_2022_01_mosaic/1050-1374_quad.tif",
        "global_monthly_2022_01_mosaic/1050-1375_quad.tif",
    }


@pytest.mark.usefixtures("instant_timeline")
def test_basemaps_order_by_geometry_delivers_the_two_quads_under_it(api: PlanetApi) -> None:
    order = api.create_and_wait(basemaps_request(geometry=AMSTERDAM))

    assert order["state"] == "success"
    assert set(results_by_path(order)) == {
        "manifest.json",
        "global_monthly_2022_01_mosaic/1050-1374_quad.tif",
        "global_monthly_2022_01_mosaic/1050-1375_quad.tif",
    }


@pytest.mark.usefixtures("instant_timeline")
def test_full_order_with_failing_item_ends_failed_naming_it(api: PlanetApi) -> None:
    order = api.create_and_wait(scenes_request(item_ids=["20220304_good_1", "20220304_fail_1"]))

    assert order["state"] == "failed"
    assert len(order["error_hints"]) == 1 and "20220304_fail_1" in order["error_hints"][0]
    results = results_by_path(order)
    assert "manifest.json" not in results
    for path, result in results.items():
        if "fail" in path:
            assert result["delivery"] == "failed" and "location" not in result
        else:
            assert result["delivery"] == "success" and "location" in result


@pytest.mark.usefixtures("instant_timeline")
def test_partial_order_with_failing_item_ends_partial_delivering_good_items(api: PlanetApi) -> None:
    request = scenes_request(item_ids=["20220304_good_1", "20220304_fail_1"], order_type="partial")
    order = api.create_and_wait(request)

    assert order["state"] == "partial"
    assert any("20220304_fail_1" in hint for hint in order["error_hints"])
    results = results_by_path(order)
    manifest = fetch(results["manifest.json"]["location"]).json()
    assert {f["path"] for f in manifest["files"]} == {f"PSScene/20220304_good_1{s}" for s in SCENE_FILES}
    assert all(r["delivery"] == "failed" for p, r in results.items() if "fail" in p)


@pytest.mark.usefixtures("instant_timeline")
def test_partial_order_with_every_item_failing_ends_failed(api: PlanetApi) -> None:
    order = api.create_and_wait(scenes_request(item_ids=["x_fail_1", "x_fail_2"], order_type="partial"))

    assert order["state"] == "failed"
    assert len(order["error_hints"]) == 2


@pytest.mark.usefixtures("instant_timeline")
@pytest.mark.parametrize(
    ("outcome", "item_ids", "delivered"),
    [
        ("failed", ["a", "b"], set()),
        ("partial", ["a", "b"], {"a"}),
        ("success", ["a", "z_fail_1"], {"a", "z_fail_1"}),
    ],
)
def test_config_outcome_forces_terminal_state(
    fake: FakePlanetServer, api: PlanetApi, outcome: str, item_ids: list[str], delivered: set[str]
) -> None:
    fake.store.update_config({"outcome": outcome})

    order = api.create_and_wait(scenes_request(item_ids=item_ids))

    assert order["state"] == outcome
    results = results_by_path(order)
    succeeded = {
        p.split("/")[1].split("_3B")[0]
        for p, r in results.items()
        if "_3B_udm2" in p and r["delivery"] == "success"
    }
    assert succeeded == delivered


def test_cancel_queued_order_returns_cancelled_order_that_stays_cancelled(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 60})
    order_id = api.create(scenes_request())["id"]

    response = api.cancel(order_id)

    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["id"] == order_id
    assert cancelled["state"] == "cancelled" and cancelled["last_message"] == "Cancel success"
    assert api.get(order_id).json()["state"] == "cancelled"
    stored = fake.store.find_order(order_id)
    assert stored is not None
    assert stored.snapshot(datetime.now(UTC) + timedelta(days=1)).state == "cancelled"


def test_cancel_running_order_returns_409(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 60})
    order_id = api.wait(api.create(scenes_request())["id"], ("running",))["id"]

    response = api.cancel(order_id)

    assert response.status_code == 409
    assert response.json() == {"message": "Order not in a cancellable state"}
    assert api.get(order_id).json()["state"] == "running"


def test_cancel_unknown_order_returns_404(api: PlanetApi) -> None:
    order_id = str(uuid.uuid4())

    response = api.cancel(order_id)

    assert response.status_code == 404
    assert response.json() == {"message": f"No such order ID: {order_id}."}


def test_cancel_other_keys_order_returns_404_and_leaves_it_queued(
    fake: FakePlanetServer, api: PlanetApi, other_api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 60})
    order_id = api.create(scenes_request())["id"]

    assert other_api.cancel(order_id).status_code == 404
    assert api.get(order_id).json()["state"] == "queued"


def _bulk_cancel(api: PlanetApi, body: object) -> requests.Response:
    return api.session.post(api.url("/bulk/orders/v2/cancel"), json=body, timeout=10)


def test_bulk_cancel_empty_body_cancels_all_callers_queued_orders(
    fake: FakePlanetServer, api: PlanetApi, other_api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 60})
    running = api.wait(api.create(scenes_request())["id"], ("running",))["id"]
    fake.store.update_config({"queued_seconds": 60})
    queued = [api.create(scenes_request())["id"] for _ in range(2)]
    others = other_api.create(scenes_request())["id"]

    response = _bulk_cancel(api, {})

    assert response.status_code == 200
    assert response.json() == {"result": {"failed": {"count": 0, "failures": []}, "succeeded": {"count": 2}}}
    assert [api.get(i).json()["state"] for i in queued] == ["cancelled", "cancelled"]
    assert api.get(running).json()["state"] == "running"
    assert other_api.get(others).json()["state"] == "queued"


def test_bulk_cancel_listed_ids_reports_each_failure(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 60})
    running = api.wait(api.create(scenes_request())["id"], ("running",))["id"]
    fake.store.update_config({"queued_seconds": 60})
    queued, untouched = api.create(scenes_request())["id"], api.create(scenes_request())["id"]
    unknown = str(uuid.uuid4())

    response = _bulk_cancel(api, {"order_ids": [queued, running, unknown]})

    assert response.status_code == 200
    assert response.json()["result"] == {
        "failed": {
            "count": 2,
            "failures": [
                {"message": "Order not in a cancellable state", "order_id": running},
                {"message": f"No such order ID: {unknown}.", "order_id": unknown},
            ],
        },
        "succeeded": {"count": 1},
    }
    assert api.get(queued).json()["state"] == "cancelled"
    assert api.get(untouched).json()["state"] == "queued"


@pytest.mark.parametrize("body", [{"order_ids": "not-a-list"}, {"order_ids": [1, 2]}, ["x"]])
def test_bulk_cancel_malformed_body_returns_400(api: PlanetApi, body: object) -> None:
    assert _bulk_cancel(api, body).status_code == 400


def test_stats_counts_active_orders_for_user_and_organization(
    fake: FakePlanetServer, api: PlanetApi, other_api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 60})
    api.wait(api.create(scenes_request())["id"], ("running",))
    fake.store.update_config({"queued_seconds": 60})
    api.create(scenes_request())
    api.cancel(api.create(scenes_request())["id"])
    other_api.create(scenes_request())
    other_api.create(scenes_request())

    response = api.session.get(api.url("/stats/orders/v2"), timeout=10)

    assert response.status_code == 200
    assert response.json() == {
        "organization": {"queued_orders": 3, "running_orders": 1},
        "user": {"queued_orders": 1, "running_orders": 1},
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/orders/v2"),
        ("GET", "/orders/v2"),
        ("GET", f"/orders/v2/{uuid.uuid4()}"),
        ("PUT", f"/orders/v2/{uuid.uuid4()}"),
        ("POST", "/bulk/orders/v2/cancel"),
        ("GET", "/stats/orders/v2"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "api-key ", "Bearer abc"])
def test_api_request_without_valid_credentials_returns_401(
    fake: FakePlanetServer, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = requests.request(method, fake.base_url + path, headers=headers, json={}, timeout=10)

    assert response.status_code == 401
    assert response.json()["message"]


def test_basic_auth_with_key_as_username_sees_the_keys_orders(fake: FakePlanetServer, api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]

    response = requests.get(fake.base_url + f"/orders/v2/{order_id}", auth=(KEY, ""), timeout=10)

    assert response.status_code == 200
    assert response.json()["id"] == order_id


def test_api_key_outside_allow_list_returns_401(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"api_keys": ["some-other-key"]})
    basic = base64.b64encode(f"{KEY}:".encode()).decode()

    by_header = api.list()
    by_basic = requests.get(
        fake.base_url + "/orders/v2", headers={"Authorization": f"Basic {basic}"}, timeout=10
    )

    assert by_header.status_code == by_basic.status_code == 401
    assert json.loads(by_header.text) == {"message": "Invalid API key."}
