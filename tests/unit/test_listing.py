"""Planet's list semantics (order_core.services.listing) on plain Planet-shaped order dicts."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from order_core.services.listing import ListQueryError, page, parse_query

SELF_URL = "https://gateway.example/compute/ops/orders/v2"
T0 = "2024-03-01T12:00:00.000Z"


def _at(second: int, ms: int = 0) -> str:
    return f"2024-03-01T12:00:{second:02d}.{ms:03d}Z"


def _order(
    order_id: str,
    name: str = "order",
    *,
    created_on: str = T0,
    last_modified: str | None = None,
    state: str = "queued",
    **extra: Any,
) -> dict[str, Any]:
    """An order as Planet's API returns it, with GET's `results` links."""
    return {
        "_links": {
            "_self": f"{SELF_URL}/{order_id}",
            "results": [{"name": f"{order_id}/manifest.json", "location": "https://example/dl"}],
        },
        "id": order_id,
        "name": name,
        "state": state,
        "created_on": created_on,
        "last_modified": last_modified or created_on,
        "products": [{"item_ids": ["a"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
        **extra,
    }


def _params(query: dict[str, str | list[str]]) -> dict[str, list[str]]:
    return {key: [value] if isinstance(value, str) else value for key, value in query.items()}


def _list(orders: list[dict[str, Any]], **query: str | list[str]) -> dict[str, Any]:
    return page(orders, parse_query(_params(query)), self_url=SELF_URL)


def _ids(orders: list[dict[str, Any]], **query: str | list[str]) -> list[str]:
    return [o["id"] for o in _list(orders, **query)["orders"]]


def _follow(next_url: str, orders: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client following `_links.next` gets: the URL's query, parsed as API Gateway would."""
    parts = urlsplit(next_url)
    query = parse_qs(parts.query, keep_blank_values=True)
    return page(orders, parse_query(query), self_url=f"{parts.scheme}://{parts.netloc}{parts.path}")


def _all_pages(orders: list[dict[str, Any]], **query: str | list[str]) -> list[list[str]]:
    body = _list(orders, **query)
    pages = [[o["id"] for o in body["orders"]]]
    while "next" in body["_links"]:
        assert len(pages) <= len(orders), "paging does not come to an end"
        body = _follow(body["_links"]["next"], orders)
        pages.append([o["id"] for o in body["orders"]])
    return pages


# --- filters ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("queued", {"q"}),
        (["queued", "running"], {"q", "r"}),
        ("success,running", {"s", "r"}),
        (" success , running ", {"s", "r"}),
        ("failed", set()),
    ],
)
def test_page_state_filter_matches_any_given_state(state: str | list[str], expected: set[str]) -> None:
    orders = [_order("q", state="queued"), _order("r", state="running"), _order("s", state="success")]

    assert set(_ids(orders, state=state)) == expected


def test_page_without_source_type_lists_scenes_orders_only() -> None:
    orders = [
        _order("explicit", source_type="scenes"),
        _order("implicit"),
        _order("mosaic", source_type="basemaps"),
    ]

    assert set(_ids(orders)) == {"explicit", "implicit"}


@pytest.mark.parametrize(
    ("source_type", "expected"),
    [
        ("basemaps", {"mosaic"}),
        ("all", {"scene", "mosaic"}),
        ("scenes,basemaps", {"scene", "mosaic"}),
        (["scenes", "basemaps"], {"scene", "mosaic"}),
        (["basemaps", "all"], {"scene", "mosaic"}),
    ],
)
def test_page_source_type_filter_selects_source_types(
    source_type: str | list[str], expected: set[str]
) -> None:
    orders = [_order("scene"), _order("mosaic", source_type="basemaps")]

    assert set(_ids(orders, source_type=source_type)) == expected


def test_page_name_filter_matches_whole_name_only() -> None:
    orders = [_order("1", "alpha"), _order("2", "alpha order"), _order("3", "beta")]

    assert _ids(orders, name="alpha") == ["1"]


def test_page_name_contains_filter_matches_case_sensitive_substring() -> None:
    orders = [_order("1", "alpha order"), _order("2", "beta order"), _order("3", "alpha")]

    assert set(_ids(orders, name__contains="order")) == {"1", "2"}
    assert _ids(orders, name__contains="ORDER") == []


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (f"{_at(2)}/{_at(3)}", {"2"}),
        (f"{_at(2)}/..", {"2", "3"}),
        (f"../{_at(2)}", {"1"}),
        (f"{_at(2)}/", {"2", "3"}),
        (f"/{_at(2)}", {"1"}),
        ("../..", {"1", "2", "3"}),
        (_at(2), {"2"}),
        (f"{_at(2)}/{_at(2)}", set()),
        (f"{_at(1, 1)}/{_at(2, 1)}", {"2"}),
        (f"{_at(3)}/{_at(1)}", set()),
    ],
)
def test_page_created_on_interval_includes_start_and_excludes_end(interval: str, expected: set[str]) -> None:
    orders = [_order(str(s), created_on=_at(s)) for s in (1, 2, 3)]

    assert set(_ids(orders, created_on=interval)) == expected


@pytest.mark.parametrize(
    ("instant", "matches"),
    [
        ("2024-03-01T12:00:00.123Z", True),
        ("2024-03-01T13:00:00.123+01:00", True),
        ("2024-03-01T12:00:00.123", True),
        ("2024-03-01T12:00:00.124Z", False),
        ("2024-03-01T12:00:00Z", False),
    ],
)
def test_page_created_on_single_instant_matches_that_millisecond_only(instant: str, matches: bool) -> None:
    orders = [_order("x", created_on="2024-03-01T12:00:00.123Z")]

    assert _ids(orders, created_on=instant) == (["x"] if matches else [])


def test_page_last_modified_filter_uses_last_modified_not_created_on() -> None:
    orders = [
        _order("touched", created_on=_at(1), last_modified=_at(5), state="cancelled"),
        _order("untouched", created_on=_at(2)),
    ]

    assert _ids(orders, last_modified=f"{_at(5)}/..") == ["touched"]
    assert _ids(orders, last_modified=f"../{_at(5)}") == ["untouched"]
    assert _ids(orders, created_on=f"{_at(2)}/..") == ["untouched"]


def test_page_hosting_filter_separates_orders_with_hosting_block() -> None:
    orders = [
        _order("hosted", hosting={"sentinel_hub": {"collection_id": "c"}}),
        _order("downloaded"),
        _order("null hosting", hosting=None),
    ]

    assert _ids(orders, hosting="true") == ["hosted"]
    assert set(_ids(orders, hosting="FALSE")) == {"downloaded", "null hosting"}
    assert len(_ids(orders)) == 3


def test_page_destination_ref_filter_matches_delivery_destination() -> None:
    ref = "pl:destinations/archive-bucket"
    orders = [
        _order("to destination", delivery={"destination": {"ref": ref}}),
        _order("to bucket", delivery={"amazon_s3": {"bucket": "b"}}),
        _order("downloaded"),
    ]

    assert _ids(orders, destination_ref=ref) == ["to destination"]


def test_page_filters_combine_with_and() -> None:
    orders = [
        _order("1", "wanted", state="queued", created_on=_at(1)),
        _order("2", "wanted", state="success", created_on=_at(2)),
        _order("3", "other", state="queued", created_on=_at(3)),
    ]

    assert _ids(orders, state="queued", name__contains="want", created_on=f"{_at(1)}/..") == ["1"]


def test_parse_query_ignores_unknown_parameters() -> None:
    orders = [_order("1"), _order("2")]

    assert set(_ids(orders, colour="blue", limit="1")) == {"1", "2"}


def test_parse_query_passes_user_id_through_for_caller_to_scope() -> None:
    assert parse_query({"user_id": ["all"]}).user_id == "all"
    assert parse_query({}).user_id is None


def test_parse_query_takes_bare_string_as_single_value() -> None:
    assert parse_query({"state": "queued,running"}).states == {"queued", "running"}


# --- sorting ------------------------------------------------------------------------------------------------


def test_page_without_sort_by_lists_newest_first() -> None:
    orders = [
        _order("old", created_on=_at(1)),
        _order("new", created_on=_at(3)),
        _order("mid", created_on=_at(2)),
    ]

    assert _ids(orders) == ["new", "mid", "old"]


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("created_on", ["b1", "a2", "c3", "a4"]),
        ("created_on ASC", ["b1", "a2", "c3", "a4"]),
        ("created_on DESC", ["a4", "c3", "a2", "b1"]),
        ("name", ["a2", "a4", "b1", "c3"]),
        ("name desc", ["c3", "b1", "a2", "a4"]),
        ("name ASC,created_on DESC", ["a4", "a2", "b1", "c3"]),
        ("name DESC, created_on DESC", ["c3", "b1", "a4", "a2"]),
        ("state,name", ["b1", "c3", "a2", "a4"]),
        ("state", ["c3", "b1", "a2", "a4"]),  # alone: each state newest first
        ("state DESC", ["a4", "a2", "c3", "b1"]),
        ("last_modified DESC", ["b1", "a4", "c3", "a2"]),
    ],
)
def test_page_sort_by_orders_by_each_key_in_its_direction(sort_by: str, expected: list[str]) -> None:
    orders = [
        _order("b1", "b", created_on=_at(1), last_modified=_at(9), state="cancelled"),
        _order("a2", "a", created_on=_at(2), state="queued"),
        _order("c3", "c", created_on=_at(3), state="cancelled"),
        _order("a4", "a", created_on=_at(4), state="running"),
    ]

    assert _ids(orders, sort_by=sort_by) == expected


def test_page_sort_ties_are_broken_by_ascending_id() -> None:
    orders = [_order(order_id, "same") for order_id in ("c", "a", "b")]

    assert _ids(orders, sort_by="name DESC") == ["a", "b", "c"]
    assert _ids(orders) == ["a", "b", "c"]


def test_page_sort_compares_timestamps_as_instants_whatever_their_format() -> None:
    orders = [
        _order("second", created_on="2024-03-01T12:00:00.500Z"),
        _order("first", created_on="2024-03-01T12:00:00Z"),
        _order("third", created_on="2024-03-01T13:00:00.600+01:00"),
    ]

    assert _ids(orders, sort_by="created_on") == ["first", "second", "third"]


# --- paging -------------------------------------------------------------------------------------------------


def test_page_size_limits_the_page_and_defaults_to_callers_choice() -> None:
    orders = [_order(str(i), created_on=_at(i)) for i in range(5)]

    assert len(_list(orders, page_size="2")["orders"]) == 2
    default = page(orders, parse_query({}, default_page_size=3), self_url=SELF_URL)
    assert len(default["orders"]) == 3
    assert len(_list(orders, page_size="1000")["orders"]) == 5


def test_page_following_next_links_lists_every_order_once_in_order() -> None:
    orders = [_order(f"id{i}", "wanted", created_on=_at(i)) for i in range(7)]
    orders += [_order("noise", "noise", created_on=_at(30))]

    pages = _all_pages(orders, name="wanted", page_size="3")

    assert pages == [["id6", "id5", "id4"], ["id3", "id2", "id1"], ["id0"]]


def test_page_marker_keeps_its_place_when_orders_sharing_sort_values_span_pages() -> None:
    orders = [_order(order_id, "same", created_on=T0) for order_id in ("d", "b", "a", "c", "e")]

    pages = _all_pages(orders, sort_by="name", page_size="2")

    assert pages == [["a", "b"], ["c", "d"], ["e"]]


def test_page_marker_is_stable_when_new_orders_arrive_between_pages() -> None:
    orders = [_order(f"old{i}", created_on=_at(i)) for i in range(4)]
    first = _list(orders, page_size="2")
    orders += [_order("newer", created_on=_at(10)), _order("aaa-same-time", created_on=_at(2))]

    second = _follow(first["_links"]["next"], orders)

    assert [o["id"] for o in first["orders"]] == ["old3", "old2"]
    assert [o["id"] for o in second["orders"]] == ["old1", "old0"]
    assert "next" not in second["_links"]


def test_page_last_page_has_no_next_link_even_when_exactly_full() -> None:
    orders = [_order(str(i), created_on=_at(i)) for i in range(4)]

    first = _list(orders, page_size="2")
    second = _follow(first["_links"]["next"], orders)

    assert len(second["orders"]) == 2
    assert second["_links"] == {"_self": SELF_URL}
    assert _list(orders, page_size="4")["_links"] == {"_self": SELF_URL}


def test_page_next_url_repeats_every_query_parameter_with_new_marker() -> None:
    orders = [_order(str(i), f"name {i}", created_on=_at(i)) for i in range(6)]
    query: dict[str, str | list[str]] = {
        "state": ["queued", "running"],
        "sort_by": "name DESC,created_on",
        "created_on": f"{_at(0)}/..",
        "page_size": "2",
        "custom": "kept & encoded",
    }
    first = _list(orders, **query)

    next_url = first["_links"]["next"]
    second = _follow(next_url, orders)
    third = _follow(second["_links"]["next"], orders)

    assert next_url.startswith(f"{SELF_URL}?")
    assert "+" not in next_url and " " not in next_url
    repeated = parse_qs(urlsplit(next_url).query)
    assert repeated.pop("page_marker")
    assert repeated == _params(query)
    assert len(parse_qs(urlsplit(second["_links"]["next"]).query)["page_marker"]) == 1
    assert "next" not in third["_links"]
    assert [o["name"] for o in first["orders"] + second["orders"] + third["orders"]] == [
        f"name {i}" for i in range(5, -1, -1)
    ]


def test_page_self_link_is_the_given_url() -> None:
    body = _list([_order("1")], state="queued")

    assert body["_links"]["_self"] == SELF_URL


def test_page_list_items_keep_only_self_link_and_leave_input_unchanged() -> None:
    order = _order("1", hosting={"sentinel_hub": {}})
    before = copy.deepcopy(order)

    (listed,) = _list([order])["orders"]

    assert listed["_links"] == {"_self": f"{SELF_URL}/1"}
    assert {k: v for k, v in listed.items() if k != "_links"} == {
        k: v for k, v in before.items() if k != "_links"
    }
    assert order == before


def test_page_accepts_any_iterable_of_orders() -> None:
    orders = (_order(str(i), created_on=_at(i)) for i in range(3))

    body = page(orders, parse_query({}), self_url=SELF_URL)

    assert [o["id"] for o in body["orders"]] == ["2", "1", "0"]


# --- invalid queries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("state", "done"),
        ("state", "queued,done"),
        ("source_type", "landsat"),
        ("created_on", "yesterday"),
        ("created_on", ".."),
        ("created_on", "2024-01-01T00:00:00Z/tomorrow"),
        ("last_modified", "2024-01-01T00:00:00Z/later"),
        ("hosting", "maybe"),
        ("hosting", ""),
        ("sort_by", "colour"),
        ("sort_by", "name SIDEWAYS"),
        ("sort_by", "name ASC DESC"),
        ("sort_by", "name,"),
        ("page_size", "0"),
        ("page_size", "-1"),
        ("page_size", "1001"),
        ("page_size", "ten"),
        ("page_size", "2.5"),
        ("page_size", ""),
        ("page_size", "\u00b2"),
        ("page_marker", "not-a-marker"),
        ("page_marker", "eyJpZCI6ICJ4In0"),  # {"id": "x"}: JSON, but not a marker
    ],
)
def test_parse_query_invalid_value_raises_planet_400_body_naming_parameter(
    parameter: str, value: str
) -> None:
    with pytest.raises(ListQueryError) as caught:
        parse_query({parameter: [value]})

    body = caught.value.body()
    assert list(body["field"]) == [parameter]
    assert body["field"][parameter][0]["message"]
    assert body["general"] == [{"message": "Invalid query parameters"}]
    assert caught.value.parameter == parameter


def test_parse_query_error_body_has_planets_exact_shape() -> None:
    with pytest.raises(ListQueryError) as caught:
        parse_query({"hosting": ["maybe"]})

    assert caught.value.body() == {
        "field": {"hosting": [{"message": "expected true or false"}]},
        "general": [{"message": "Invalid query parameters"}],
    }


def test_parse_query_empty_optional_values_mean_no_filter() -> None:
    orders = [_order("1", created_on=_at(1)), _order("2", created_on=_at(2))]

    assert _ids(orders, created_on="", last_modified="", sort_by="", page_marker="") == ["2", "1"]
