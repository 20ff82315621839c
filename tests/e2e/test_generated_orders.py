"""Proof by generated orders: Hypothesis draws orders from the fake Planet's bundles table and runs each
through the local stack over HTTP, as a client would.

Valid draws (``order_draws.py``): item types with the bundles they offer and comma fallbacks, ids the fake
fails (``fail``) or serves with the fallback bundle (``fallback``), ``full`` and ``partial`` orders, scenes
and basemaps tools and their chains, zip archives per item or one for the order (``archive_filename`` with
``{{name}}``/``{{order_id}}``), ``metadata.stac``, basemaps by quad ids or geometry; never notifications.
Each must end as the fake decides: ``success`` with every file of Planet's manifest landed, byte-identical, in
``{prefix}/{tenant}/{order id}/`` and nothing outside it, zips intact member by member, a STAC catalog pystac
opens from S3 and one completion event; ``partial``/``failed`` with a hint naming each failed item; never
``success`` with a file missing.

Refused draws: requests Planet refuses (unknown item type or bundle, a bundle the item type does not offer,
more than 500 items, malformed tools, an archive type other than zip) are each a 400 at create naming the
field, and nothing is queued.

Bounded for CI: ``EXAMPLES`` orders (default 10) in batches created together, then awaited together (each
order takes seconds at the fake); Hypothesis derandomized, no example database, no shrinking (a failure
reports the drawn batch as is: shrinking against a live stack would take minutes per step).
``make fuzz-orders EXAMPLES=500`` digs deeper, with a random seed Hypothesis prints on failure.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pystac
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from order_checks import (
    CompletionEvents,
    Gateway,
    S3StacIO,
    bucket_name,
    hints_name,
    open_catalog,
    planet_side,
    read_folder,
    verify_landed,
)
from order_draws import Drawn, Refused, refused_orders, valid_orders
from stack_process import new_key

EXAMPLES = int(os.environ.get("EXAMPLES", "10"))
BATCH = min(5, EXAMPLES)
#: Reproducible in CI; `make fuzz-orders` sets EXAMPLES and gets fresh draws on every run.
DERANDOMIZE = "EXAMPLES" not in os.environ
LIVE_STACK = settings(
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)


@pytest.fixture(scope="module")
def gateway(local_stack: Any) -> Gateway:
    return Gateway(local_stack.api_url, new_key(local_stack, "generated"), "generated")


@pytest.fixture(scope="module")
def refusals(local_stack: Any) -> Gateway:
    return Gateway(local_stack.api_url, new_key(local_stack, "refused"), "refused")


def check_order(
    stack: Any, gateway: Gateway, drawn: Drawn, order: dict[str, Any], events: list[Any]
) -> list[str]:
    """Everything wrong with one terminal order, from outside; empty when it is what it should be."""
    problems: list[str] = []
    state, expected = order["state"], drawn.expected_state
    if state != expected:
        return [f"ended {state}, expected {expected}; hints {order.get('error_hints')}"]
    if [e["state"] for e in events] != [state]:
        problems.append(f"completion events {[e['state'] for e in events]}, expected exactly one {state!r}")
    problems += [f"no error hint names {name}" for name in hints_name(order, drawn.failing)]
    landed = read_folder(stack, gateway.tenant, order["id"])
    if state == "failed":
        return problems + landed.problems  # whatever landed before the failure must still be intact
    planet = planet_side(stack, order["id"])
    if planet.manifest is None:
        return [*problems, f"Planet served no manifest.json for a {state} order"]
    verified, members = verify_landed(landed, planet)
    problems += verified
    delivered = " ".join([*planet.files, *members])
    annotated = {str(f.get("annotations", {}).get("planet/item_id")) for f in planet.files.values()}
    for item in drawn.represented:
        if item in drawn.failing:
            leaked = [p for p in landed.planet_files if item in p]
            problems += [f"{p}: a file of failed item {item} was landed" for p in leaked]
        elif item not in delivered and item not in annotated:
            problems.append(f"requested item {item} is in no delivered file")
    for item, bundle in drawn.fallbacks.items():
        used = {
            f["annotations"].get("planet/bundle_type")
            for f in planet.files.values()
            if f.get("annotations", {}).get("planet/item_id") == item
        } - {None}
        if used and used != {bundle}:
            problems.append(f"{item} was delivered with {sorted(used)}, not its fallback bundle {bundle}")
    results = {r["name"].split("/", 1)[-1] for r in order.get("_links", {}).get("results", [])}
    if not set(planet.files) | {"manifest.json"} <= results:
        problems.append(f"the order's results lack {sorted(set(planet.files) - results)}")
    if events and events[0].get("files") != len(planet.files):
        problems.append(
            f"completion event counts {events[0].get('files')} files, Planet delivered {len(planet.files)}"
        )
    if landed.delivery is not None and landed.delivery.get("stac_catalog"):
        try:
            _, items = open_catalog(stack, landed)
            if not items:
                problems.append("the STAC catalog has no Item")
        except AssertionError as exc:
            problems.append(f"STAC catalog: {exc}")
    else:
        problems.append("delivery.json names no STAC catalog")
    # Planet's own STAC delivery, when not zipped (with an archive per item the fake leaves the catalog and
    # collections at the root while the Items are inside the archives, so its links do not resolve).
    if "catalog.json" in planet.files and "delivery" not in drawn.body:
        try:
            theirs = pystac.Catalog.from_file(
                f"s3://{bucket_name(stack)}/{landed.prefix}catalog.json", stac_io=S3StacIO(stack.client("s3"))
            )
            stac_ids = {item.id for item in theirs.get_items(recursive=True)}
            if not stac_ids or not stac_ids <= set(drawn.requested):
                problems.append(f"Planet's STAC catalog lists {sorted(stac_ids)}")
        except pystac.STACError as exc:
            problems.append(f"Planet's STAC catalog does not open: {exc}")
    return problems


@settings(LIVE_STACK, max_examples=math.ceil(EXAMPLES / BATCH))
@given(batch=st.lists(valid_orders, min_size=BATCH, max_size=BATCH))
def test_generated_orders_end_as_planet_decides_with_every_file_landed_and_verified(
    local_stack: Any, gateway: Gateway, completion_events: CompletionEvents, batch: list[Drawn]
) -> None:
    created = []
    for drawn in batch:
        event(f"expected {drawn.expected_state}")
        event(drawn.kind.split("+")[0] + (" zip" if "zip" in drawn.kind else " files"))
        response = gateway.create(drawn.body)
        assert response.status_code == 202, (
            f"{drawn.kind}: {response.status_code} {response.text}\n{drawn.body}"
        )
        created.append((drawn, response.json()["id"]))
    finished = gateway.wait_all([order_id for _, order_id in created])
    published = completion_events.for_orders([order_id for _, order_id in created])

    failures = {}
    for drawn, order_id in created:
        problems = check_order(local_stack, gateway, drawn, finished[order_id], published[order_id])
        if problems:
            failures[order_id] = {"kind": drawn.kind, "request": drawn.body, "problems": problems}
    assert not failures, "\n".join(
        f"{order_id} ({failure['kind']}): {failure['problems']}\n  request: {json.dumps(failure['request'])}"
        for order_id, failure in failures.items()
    )


@settings(LIVE_STACK, max_examples=max(20, 3 * EXAMPLES))
@given(refused=refused_orders())
def test_requests_planet_refuses_are_400_at_create_naming_the_field_and_nothing_is_queued(
    refusals: Gateway, refused: Refused
) -> None:
    event(refused.why)
    response = refusals.create(refused.body)

    assert response.status_code == 400, f"{refused.why}: {response.status_code} {response.text[:500]}"
    body = response.json()
    assert body["general"], body
    assert any(name.startswith(refused.field) for name in body["field"]), (refused.why, refused.field, body)
    assert refusals.list_ids() == set(), f"{refused.why}: an order was queued"


def test_item_id_planet_does_not_know_is_accepted_then_fails_with_planets_refusal_naming_it(
    local_stack: Any, completion_events: CompletionEvents
) -> None:
    # Only Planet's catalogue knows which ids exist: the gateway queues the order and Planet refuses it.
    gateway = Gateway(local_stack.api_url, new_key(local_stack, "unknown-item"), "unknown-item")
    item = "20220304_093300_nonexistent_2430"
    body = {
        "name": "unknown item",
        "products": [{"item_ids": [item], "item_type": "PSScene", "product_bundle": "visual"}],
    }

    created = gateway.create(body)
    order = gateway.wait_all([created.json()["id"]])[created.json()["id"]]

    assert created.status_code == 202
    assert order["state"] == "failed" and hints_name(order, [item]) == [], order["error_hints"]
    assert [e["state"] for e in completion_events.for_orders([order["id"]])[order["id"]]] == ["failed"]


_SCENE = {"item_ids": ["20220304_093300_37_2430"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}
#: Requests the fake Planet refuses (as Planet's docs describe): the gateway refuses them at create with a 400
#: naming the field, instead of a 202 that ends `failed` with Planet's refusal as its hint.
QUEUED_THOUGH_PLANET_REFUSES = {
    "a tool twice": ({"tools": [{"toar": {}}, {"toar": {}}]}, "tools.1"),
    "coregister anchor not in the order": (
        {"tools": [{"coregister": {"anchor_item": "20220101_x"}}]},
        "tools.0",
    ),
    "tile without tile_size": ({"tools": [{"tile": {}}]}, "tools.0"),
    "bandmath without b1": ({"tools": [{"bandmath": {"b2": "b2"}}]}, "tools.0"),
    "composite group_by not order or strip_id": ({"tools": [{"composite": {"group_by": "day"}}]}, "tools.0"),
    "toar scale_factor not positive": ({"tools": [{"toar": {"scale_factor": -1}}]}, "tools.0"),
    "single_archive without archive_type": ({"delivery": {"single_archive": True}}, "delivery"),
    "archive_filename without archive_type": ({"delivery": {"archive_filename": "a.zip"}}, "delivery"),
    "zip with 51 SkySatCollect items": (
        {
            "products": [
                {**_SCENE, "item_type": "SkySatCollect", "item_ids": [f"20220304_{n:06d}" for n in range(51)]}
            ],
            "delivery": {"archive_type": "zip"},
        },
        "products",
    ),
}


@pytest.fixture(scope="module")
def refused_later(local_stack: Any) -> Gateway:
    """A tenant of its own: should one of these requests be queued, it must not count against other tests."""
    return Gateway(local_stack.api_url, new_key(local_stack, "refused-later"), "refused-later")


@pytest.mark.parametrize("case", list(QUEUED_THOUGH_PLANET_REFUSES))
def test_request_planet_refuses_for_tool_parameters_or_archive_options_is_a_400_at_create(
    refused_later: Gateway, case: str
) -> None:
    extra, field_name = QUEUED_THOUGH_PLANET_REFUSES[case]

    response = refused_later.create({"name": case, "products": [_SCENE]} | extra)

    assert response.status_code == 400, response.text
    assert any(name.startswith(field_name) for name in response.json()["field"])
