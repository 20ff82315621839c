"""Hostile list queries against Planet's list semantics (order_core.services.listing).

Whatever a client puts in the query string, parsing it either succeeds or raises ``ListQueryError`` (a
Planet-shaped 400 naming a parameter the query has), and a parsed query always pages: nothing else may
escape, since anything else is a 500 of the gateway's list endpoint and of the fake Planet's.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_core.services.listing import ListQueryError, page, parse_query

SELF_URL = "https://gateway.example/compute/ops/orders/v2"
PARAMETERS = [
    "state",
    "source_type",
    "name",
    "name__contains",
    "created_on",
    "last_modified",
    "hosting",
    "destination_ref",
    "user_id",
    "sort_by",
    "page_size",
    "page_marker",
]
ORDERS = [
    {
        "_links": {"_self": f"{SELF_URL}/{n}"},
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "name": name,
        "state": state,
        "created_on": f"2024-03-01T12:00:{n:02d}.000Z",
        "last_modified": f"2024-03-01T12:01:{n:02d}.000Z",
    }
    for n, (name, state) in enumerate(
        [("a", "queued"), ("b\x00", "running"), ("é" * 30, "success"), ("", "failed"), ("a", "cancelled")]
    )
]


def _marker(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


LONE_SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=12,
)
MARKER_FIELDS = ("id", "name", "created_on", "state", "last_modified")
HOSTILE_VALUES = st.one_of(
    st.text(max_size=40),  # any Unicode, NUL included
    st.builds(
        lambda head, s, tail: head + s + tail, st.text(max_size=5), LONE_SURROGATES, st.text(max_size=5)
    ),
    st.from_regex(r"[-+]?[0-9]{0,12}(\.[0-9]*)?(e[-+]?[0-9]{1,4})?", fullmatch=True),
    st.integers(min_value=0, max_value=6000).map(lambda n: "0" * n + "1"),  # 1 after n zeros
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),  # int() refuses > 4300 digits
    st.sampled_from(
        [
            "10**400",
            "1" + "0" * 400,
            "queued,running",
            "all",
            "name DESC,created_on",
            "created_on ASC DESC",
            "..",
            "../..",
            "/",
            "2024-03-01T12:00:00Z/..",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00/..",
            "2024-02-30T00:00:00Z",
            "true",
            "FALSE",
            "\x00",
        ]
    ),
    st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    JSON_VALUES.map(_marker),
    st.fixed_dictionaries({k: JSON_VALUES for k in MARKER_FIELDS}).map(_marker),
    st.text(max_size=8).map(lambda s: "[" * 5000 + s),
)
QUERIES = st.dictionaries(
    st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=8), LONE_SURROGATES),
    st.lists(HOSTILE_VALUES, min_size=1, max_size=3),
    max_size=4,
)


@settings(max_examples=400, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=QUERIES)
def test_parse_query_hostile_values_are_refused_by_name_or_listed(query: dict[str, list[str]]) -> None:
    try:
        parsed = parse_query(query)
    except ListQueryError as exc:
        named = {key.encode("utf-8", "backslashreplace").decode() for key in query}
        assert exc.parameter in named
        assert exc.body()["general"] == [{"message": "Invalid query parameters"}]
        json.dumps(exc.body()).encode("utf-8")  # an answer that can be sent
        return
    body = page(ORDERS, parsed, self_url=SELF_URL)
    json.dumps(body).encode("utf-8")
    if "next" in body["_links"]:  # the link a client follows parses again
        parse_query(parse_qs(urlsplit(body["_links"]["next"]).query, keep_blank_values=True))


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        pytest.param("page_size", "9" * 5000, id="page-size-5000-digits"),
        pytest.param("page_size", "10**400", id="page-size-expression"),
        pytest.param("page_size", "1.0", id="page-size-float"),
        pytest.param("page_size", "-1", id="page-size-negative"),
        pytest.param("page_marker", _marker({k: 5 for k in MARKER_FIELDS}), id="marker-wrong-types"),
        pytest.param("page_marker", _marker(dict.fromkeys(MARKER_FIELDS, "x")), id="marker-not-our-values"),
        pytest.param("page_marker", base64.urlsafe_b64encode(b"[" * 100_000).decode(), id="marker-deep"),
        pytest.param("page_marker", "A" * 600_000, id="marker-huge"),
        pytest.param("page_marker", "\u00e9t\u00e9", id="marker-not-ascii"),
        pytest.param("created_on", "9999-12-31T23:59:59-01:00", id="created-on-past-year-9999-in-utc"),
        pytest.param("created_on", "../0001-01-01T00:00:00+01:00", id="created-on-before-year-1-in-utc"),
        pytest.param("name", "a\ud800", id="name-lone-surrogate"),
        pytest.param("name__contains", "\udfff", id="name-contains-lone-surrogate"),
        pytest.param("sort_by", "name\ud800", id="sort-by-lone-surrogate"),
    ],
)
def test_parse_query_hostile_value_raises_400_naming_the_parameter(parameter: str, value: str) -> None:
    with pytest.raises(ListQueryError) as raised:
        parse_query({parameter: [value]})

    assert raised.value.parameter == parameter


def test_parse_query_page_size_with_5000_leading_zeros_is_that_number() -> None:
    assert parse_query({"page_size": ["0" * 5000 + "7"]}).page_size == 7


def test_parse_query_lone_surrogate_in_a_parameter_name_is_refused_with_it_escaped() -> None:
    with pytest.raises(ListQueryError) as raised:
        parse_query({"x\ud800": ["1"]})

    assert raised.value.parameter == "x\\ud800"


def test_parse_query_error_quotes_at_most_60_characters_of_a_value() -> None:
    with pytest.raises(ListQueryError) as raised:
        parse_query({"sort_by": ["x" * 10_000]})

    assert len(raised.value.message) < 200


def test_page_marker_of_our_own_page_is_accepted_by_another_query_of_the_same_sort() -> None:
    first = page(ORDERS, parse_query({"page_size": ["2"]}), self_url=SELF_URL)
    marker = parse_qs(urlsplit(first["_links"]["next"]).query)["page_marker"][0]

    second = page(ORDERS, parse_query({"page_size": ["2"], "page_marker": [marker]}), self_url=SELF_URL)

    assert [o["id"] for o in second["orders"]] == [ORDERS[2]["id"], ORDERS[1]["id"]]
