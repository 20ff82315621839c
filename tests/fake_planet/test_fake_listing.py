"""GET /orders/v2: filters, sorting and paging through `_links.next`."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from planet_fake.server import FakePlanetServer

from .support import PlanetApi, basemaps_request, scenes_request


def _names(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [order["name"] for order in response.json()["orders"]]


def _create_spaced(api: PlanetApi, names: list[str], **extra: Any) -> list[dict[str, Any]]:
    """Orders created a few milliseconds apart, so each has its own created_on."""
    orders = []
    for name in names:
        orders.append(api.create(scenes_request(name, **extra)))
        time.sleep(0.005)
    return orders


def _states_fixture(fake: FakePlanetServer, api: PlanetApi) -> None:
    """One order in each of success, running and queued."""
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    api.create(scenes_request("done"))
    fake.store.update_config({"running_seconds": 60})
    api.create(scenes_request("busy"))
    fake.store.update_config({"queued_seconds": 60})
    api.create(scenes_request("waiting"))


def test_list_orders_carry_only_self_link(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    order = api.create(scenes_request())

    listed = api.list().json()["orders"]

    assert [o["id"] for o in listed] == [order["id"]]
    assert listed[0]["state"] == "success"
    assert listed[0]["_links"] == {"_self": api.url(f"/orders/v2/{order['id']}")}


def test_list_returns_only_callers_orders_unless_user_id_all(api: PlanetApi, other_api: PlanetApi) -> None:
    api.create(scenes_request("mine"))
    other_api.create(scenes_request("theirs"))

    assert _names(api.list()) == ["mine"]
    assert sorted(_names(api.list(user_id="all"))) == ["mine", "theirs"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "queued"}, {"waiting"}),
        ({"state": ["queued", "running"]}, {"waiting", "busy"}),
        ({"state": "success,running"}, {"done", "busy"}),
        ({"state": "failed"}, set()),
    ],
)
def test_list_state_filter_matches_any_given_state(
    fake: FakePlanetServer, api: PlanetApi, query: dict[str, Any], expected: set[str]
) -> None:
    _states_fixture(fake, api)

    assert set(_names(api.list(**query))) == expected


def test_list_name_filters_match_exactly_or_by_substring(api: PlanetApi) -> None:
    _create_spaced(api, ["alpha order", "alpha", "beta order"])

    assert _names(api.list(name="alpha")) == ["alpha"]
    assert set(_names(api.list(name__contains="order"))) == {"alpha order", "beta order"}
    assert _names(api.list(name__contains="ORDER")) == []


def test_list_created_on_intervals_include_start_and_exclude_end(api: PlanetApi) -> None:
    first, second, third = (o["created_on"] for o in _create_spaced(api, ["first", "second", "third"]))

    assert set(_names(api.list(created_on=f"{second}/{third}"))) == {"second"}
    assert set(_names(api.list(created_on=f"{second}/.."))) == {"second", "third"}
    assert set(_names(api.list(created_on=f"../{second}"))) == {"first"}
    assert set(_names(api.list(created_on=second))) == {"second"}
    assert set(_names(api.list(created_on=f"{first}/{first}"))) == set()


def test_list_last_modified_filter_uses_current_state_time(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"queued_seconds": 60})
    waiting = api.create(scenes_request("waiting"))
    time.sleep(0.005)
    cancelled = api.cancel(api.create(scenes_request("cancelled"))["id"]).json()

    assert cancelled["last_modified"] > waiting["last_modified"]
    assert _names(api.list(last_modified=f"{cancelled['last_modified']}/..")) == ["cancelled"]
    assert _names(api.list(last_modified=f"../{cancelled['last_modified']}")) == ["waiting"]


def test_list_hosting_filter_separates_hosted_orders(api: PlanetApi) -> None:
    api.create(scenes_request("hosted", hosting={"sentinel_hub": {}}))
    api.create(scenes_request("downloaded"))

    assert _names(api.list(hosting="true")) == ["hosted"]
    assert _names(api.list(hosting="false")) == ["downloaded"]


def test_list_destination_ref_filter_matches_delivery_destination(api: PlanetApi) -> None:
    ref = "pl:destinations/archive-bucket"
    api.create(scenes_request("to destination", delivery={"destination": {"ref": ref}}))
    api.create(scenes_request("downloaded"))

    assert _names(api.list(destination_ref=ref)) == ["to destination"]


def test_list_source_type_defaults_to_scenes_and_all_includes_basemaps(api: PlanetApi) -> None:
    api.create(scenes_request("scenes"))
    api.create(basemaps_request("basemaps", quad_ids=["1050-1374"]))

    assert _names(api.list()) == ["scenes"]
    assert _names(api.list(source_type="basemaps")) == ["basemaps"]
    assert set(_names(api.list(source_type="all"))) == {"scenes", "basemaps"}
    assert set(_names(api.list(source_type="scenes,basemaps"))) == {"scenes", "basemaps"}


def test_list_sort_by_defaults_to_newest_first_and_accepts_keys(api: PlanetApi) -> None:
    _create_spaced(api, ["b", "a", "c", "a"])

    assert _names(api.list()) == ["a", "c", "a", "b"]
    assert _names(api.list(sort_by="created_on ASC")) == ["b", "a", "c", "a"]
    assert _names(api.list(sort_by="name")) == ["a", "a", "b", "c"]
    assert _names(api.list(sort_by="name DESC")) == ["c", "b", "a", "a"]
    by_name_then_newest = api.list(sort_by="name ASC,created_on DESC").json()["orders"]
    first_a, second_a = by_name_then_newest[:2]
    assert first_a["name"] == second_a["name"] == "a"
    assert first_a["created_on"] > second_a["created_on"]


def test_list_paging_follows_absolute_next_links_keeping_filters(api: PlanetApi) -> None:
    wanted = [o["id"] for o in _create_spaced(api, [f"wanted {i}" for i in range(5)])]
    _create_spaced(api, ["noise 1", "noise 2"])

    response = api.list(name__contains="wanted", page_size=2)
    pages = []
    while True:
        body = response.json()
        pages.append([o["id"] for o in body["orders"]])
        if "next" not in body["_links"]:
            break
        assert body["_links"]["next"].startswith(api.url("/orders/v2?"))
        response = api.session.get(body["_links"]["next"], timeout=10)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [order_id for page in pages for order_id in page] == wanted[::-1]


def test_list_paging_is_stable_when_orders_arrive_between_pages(api: PlanetApi) -> None:
    older = [o["id"] for o in _create_spaced(api, ["1", "2", "3", "4"])]
    first_page = api.list(page_size=2).json()
    _create_spaced(api, ["newer"])

    second_page = api.session.get(first_page["_links"]["next"], timeout=10).json()

    seen = [o["id"] for o in first_page["orders"] + second_page["orders"]]
    assert seen == older[::-1]
    assert "next" not in second_page["_links"]


def test_list_page_size_defaults_to_config(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"page_size": 3})
    _create_spaced(api, [str(i) for i in range(4)])

    body = api.list().json()

    assert len(body["orders"]) == 3 and "next" in body["_links"]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("state", "done"),
        ("source_type", "landsat"),
        ("created_on", "yesterday"),
        ("last_modified", "2024-01-01T00:00:00Z/later"),
        ("hosting", "maybe"),
        ("sort_by", "colour"),
        ("sort_by", "name SIDEWAYS"),
        ("page_size", "0"),
        ("page_marker", "not-a-marker"),
        ("user_id", "42"),
    ],
)
def test_list_invalid_query_value_returns_400_naming_parameter(
    api: PlanetApi, parameter: str, value: str
) -> None:
    response = api.list(**{parameter: value})

    assert response.status_code == 400
    assert list(response.json()["field"]) == [parameter]
