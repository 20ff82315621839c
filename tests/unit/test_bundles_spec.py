"""Item types and bundles checked against Planet's bundles spec (``order_core.services.bundles``).

Planet's answer to ``GET /bundles/spec`` is mocked with ``responses`` behind the real ``PlanetClient``; the
payload is shaped like Planet's and built from the published spec's facts (which item types each bundle
offers), here taken from the generated fallback table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from order_core.adapters.planet_client import PlanetClient
from order_core.models.planet import OrderRequest
from order_core.services import bundles_fallback
from order_core.services.bundles import (
    BundlesSpec,
    BundlesSpecSource,
    FieldError,
    UnusableSpec,
    check_request_against_spec,
    refusal_body,
)

BASE = "https://api.planet.test/compute/ops"
SPEC_URL = f"{BASE}/bundles/spec"
PUBLISHED_SPEC = Path("/work/shared/reference/planet-bundles-spec-2024-08-12.json")


def planet_spec_payload(extra_bundle: str | None = None) -> dict[str, Any]:
    """Shaped like Planet's answer: descriptive fields, and per bundle the assets of each item type."""
    table = {name: list(types) for name, types in bundles_fallback.ITEM_TYPES_BY_BUNDLE.items()}
    if extra_bundle:
        table[extra_bundle] = ["PSScene"]
    return {
        "version": "2026-11-01",
        "bundles": {
            name: {
                "name": name.replace("_", " ").title(),
                "description": "…",
                "fileType": "GeoTIFF",
                "assets": {item_type: [f"{name}_asset"] for item_type in item_types},
            }
            for name, item_types in table.items()
        },
    }


PLANET = BundlesSpec.from_planet(planet_spec_payload())
FALLBACK = BundlesSpec.fallback()


def scenes(item_type: str, bundle: str, *more: dict[str, Any]) -> OrderRequest:
    products = [{"item_ids": ["20220304_093300_37_2430"], "item_type": item_type, "product_bundle": bundle}]
    return OrderRequest.model_validate({"name": "o", "products": products + list(more)})


def fields(errors: list[FieldError]) -> dict[str, list[str]]:
    return refusal_body(errors)["field"]


# --- Planet's own spec: authoritative --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_type", "bundle"),
    [
        ("PSScene", "analytic_udm2"),
        ("PSScene", "visual"),
        ("SkySatCollect", "pansharpened_udm2"),
        ("Sentinel2L1C", "analytic"),
        ("psscene", "VISUAL"),  # the SDK matches names whatever their case
        ("PSScene", "analytic_8b_sr_udm2,analytic_sr_udm2,analytic_udm2"),  # the SDK's fallback list
    ],
)
def test_check_planet_spec_offered_combination_accepted(item_type: str, bundle: str) -> None:
    assert check_request_against_spec(scenes(item_type, bundle), PLANET) == []


def test_check_planet_spec_unknown_item_type_refused_naming_it_with_a_suggestion() -> None:
    errors = fields(check_request_against_spec(scenes("PSScen", "visual"), PLANET))

    [message] = [m["message"] for m in errors["products.0.item_type"]]
    assert message.startswith("unknown item type 'PSScen'; did you mean 'PSScene'?")
    assert list(errors) == ["products.0.item_type"]


def test_check_planet_spec_bundle_not_offered_for_item_type_refused_listing_what_is() -> None:
    errors = fields(check_request_against_spec(scenes("PSScene", "analytic"), PLANET))

    [message] = [m["message"] for m in errors["products.0.product_bundle"]]
    assert message.startswith("product bundle 'analytic' is not available for item type PSScene; it offers:")
    assert "analytic_udm2" in message


def test_check_planet_spec_each_fallback_bundle_checked_and_named() -> None:
    request = scenes("PSScene", "analytic_sr_udm2,pansharpened,no_such_bundle")

    messages = [
        m["message"] for m in fields(check_request_against_spec(request, PLANET))["products.0.product_bundle"]
    ]

    assert messages[0].startswith("fallback bundle 'pansharpened' is not available for item type PSScene")
    assert messages[1].startswith("unknown fallback bundle 'no_such_bundle'")
    assert len(messages) == 2


def test_check_planet_spec_empty_name_in_the_comma_list_refused() -> None:
    errors = fields(check_request_against_spec(scenes("PSScene", "visual,"), PLANET))

    assert errors["products.0.product_bundle"][0]["message"].startswith("empty fallback bundle name")


def test_check_planet_spec_names_the_position_of_the_wrong_product() -> None:
    second = {"item_ids": ["x"], "item_type": "PSScene", "product_bundle": "basic_l1a_dn"}

    errors = fields(check_request_against_spec(scenes("PSScene", "visual", second), PLANET))

    assert list(errors) == ["products.1.product_bundle"]


def test_check_bundle_planet_added_after_the_fallback_table_accepted_from_planets_spec() -> None:
    spec = BundlesSpec.from_planet(planet_spec_payload(extra_bundle="analytic_16b_udm3"))

    assert check_request_against_spec(scenes("PSScene", "analytic_16b_udm3"), spec) == []


def test_check_basemaps_and_raw_sqs_shaped_requests() -> None:
    basemaps = OrderRequest.model_validate(
        {"name": "b", "source_type": "basemaps", "products": [{"mosaic_name": "m", "quad_ids": ["1-2"]}]}
    )
    raw = {"products": [{"item_type": "PSScene", "product_bundle": "analytic"}, "junk", {"item_type": 5}]}

    assert check_request_against_spec(basemaps, PLANET) == []
    assert [e.field for e in check_request_against_spec(raw, PLANET)] == ["products.0.product_bundle"]
    assert check_request_against_spec({"products": None}, PLANET) == []


def test_refusal_body_is_planets_400_shape() -> None:
    body = refusal_body([FieldError("products.0.item_type", "unknown item type 'x'")])

    assert body == {
        "field": {"products.0.item_type": [{"message": "unknown item type 'x'"}]},
        "general": [{"message": "Unable to accept order"}],
    }


# --- the fallback table: refuses only what it knows ------------------------------------------------------


def test_check_fallback_table_refuses_a_pair_it_knows_do_not_go_together() -> None:
    errors = fields(check_request_against_spec(scenes("PSScene", "analytic"), FALLBACK))

    assert list(errors) == ["products.0.product_bundle"]


@pytest.mark.parametrize(
    ("item_type", "bundle"),
    [
        ("PelicanScene2", "visual"),  # an item type newer than the table
        ("PSScene", "analytic_16b_udm3"),  # a bundle newer than the table
        ("PSScene", "visual,analytic_16b_udm3"),
        ("PSScene", "visual,"),
    ],
)
def test_check_fallback_table_accepts_what_it_does_not_know(item_type: str, bundle: str) -> None:
    assert check_request_against_spec(scenes(item_type, bundle), FALLBACK) == []


def test_fallback_table_matches_the_published_spec_it_was_generated_from() -> None:
    if not PUBLISHED_SPEC.exists():
        pytest.skip(reason=f"the published spec is not on this machine ({PUBLISHED_SPEC})")
    published = BundlesSpec.from_planet(json.loads(PUBLISHED_SPEC.read_text()))

    assert FALLBACK.item_types_by_bundle == published.item_types_by_bundle
    assert FALLBACK.version == published.version


# --- reading Planet's answer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {},
        {"bundles": []},
        {"bundles": {"visual": {"name": "Visual"}}},
        {"bundles": {"v": {"assets": {}}}},
    ],
)
def test_bundles_spec_answer_without_bundles_and_item_types_is_unusable(payload: Any) -> None:
    with pytest.raises(UnusableSpec):
        BundlesSpec.from_planet(payload)


def test_bundles_spec_reads_only_names_ignoring_new_fields_and_odd_entries() -> None:
    payload = {
        "bundles": {"visual": {"assets": {"PSScene": ["ortho_visual"]}, "new": 1}, "odd": None, "": {}},
        "generated": "now",
    }

    spec = BundlesSpec.from_planet(payload)

    assert dict(spec.item_types_by_bundle) == {"visual": frozenset({"PSScene"})} and spec.version is None


# --- fetching and caching --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def clock() -> Clock:
    return Clock()


def source(clock: Clock) -> BundlesSpecSource:
    client = PlanetClient(BASE, "PLAK-unit")
    return BundlesSpecSource(client.get_bundles_spec, ttl_seconds=3600, retry_seconds=300, clock=clock)


def test_source_fetches_planets_spec_once_per_ttl(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.get(SPEC_URL, json=planet_spec_payload())
    specs = source(clock)

    first, second = specs.current(), specs.current()
    clock.now += 3601
    third = specs.current()

    assert first.authoritative and first.version == "2026-11-01" and second is first
    assert third.authoritative and len(mocked.calls) == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 404, "json": {"message": "Not found"}},
        {"status": 503, "body": "unavailable"},
        {"status": 200, "body": "<html>"},
        {"status": 200, "json": {"bundles": "soon"}},
        {"body": ConnectionError("refused")},
    ],
)
def test_source_planet_unreachable_or_unreadable_uses_the_fallback_and_retries_later(
    mocked: responses.RequestsMock, clock: Clock, answer: dict[str, Any]
) -> None:
    mocked.get(SPEC_URL, **answer)
    specs = source(clock)

    spec = specs.current()
    specs.current()
    clock.now += 301
    mocked.replace(responses.GET, SPEC_URL, json=planet_spec_payload())
    later = specs.current()

    assert spec.origin == "fallback" and spec.version == bundles_fallback.SPEC_VERSION
    assert later.authoritative
    # The failed fetch is not repeated for every order in between.
    assert len(mocked.calls) == 2


def test_source_keeps_planets_last_spec_when_a_refresh_fails(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.get(SPEC_URL, json=planet_spec_payload(extra_bundle="analytic_16b_udm3"))
    specs = source(clock)
    first = specs.current()
    clock.now += 3601
    mocked.replace(responses.GET, SPEC_URL, status=503)

    assert specs.current() is first


def test_source_any_failure_to_fetch_falls_back_instead_of_failing_the_create(clock: Clock) -> None:
    def secret_unreadable() -> Any:
        raise RuntimeError("AccessDeniedException reading the Planet key")

    specs = BundlesSpecSource(secret_unreadable, clock=clock)

    assert specs.current().origin == "fallback"


def test_source_refusal_is_planets_400_or_none(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.get(SPEC_URL, json=planet_spec_payload())
    specs = source(clock)

    refused = specs.refusal(scenes("PSScene", "analytic"))

    assert specs.refusal(scenes("PSScene", "visual")) is None
    assert refused is not None and list(refused["field"]) == ["products.0.product_bundle"]
