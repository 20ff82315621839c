"""Who delivers an order's results: Planet itself (a cloud destination or hosting), or the gateway, which
lands them in its bucket (direct download, including a ``delivery`` with only archive or layout options)."""

from __future__ import annotations

from typing import Any

import pytest
from order_core.models.order import OrderRecord
from order_core.models.planet import CLOUD_DESTINATIONS


def record(**request: Any) -> OrderRecord:
    return OrderRecord(order_id="o", tenant="t", name="n", request={"name": "n", **request})


@pytest.mark.parametrize(
    "delivery",
    [
        {"archive_type": "zip"},
        {"archive_type": "zip", "single_archive": True, "archive_filename": "{{name}}_{{order_id}}.zip"},
        {"layout": {"format": "standard"}},
        {},
    ],
    ids=["zip", "single-zip-named", "layout-only", "empty"],
)
def test_native_delivery_archive_or_layout_options_only_is_landed_by_the_gateway(
    delivery: dict[str, Any],
) -> None:
    assert not record(delivery=delivery).native_delivery


@pytest.mark.parametrize("destination", CLOUD_DESTINATIONS)
def test_native_delivery_any_cloud_destination_is_delivered_by_planet(destination: str) -> None:
    delivery = {"archive_type": "zip", destination: {"bucket": "b"}}

    assert record(delivery=delivery).native_delivery


def test_native_delivery_hosting_is_delivered_by_planet() -> None:
    assert record(hosting={"sentinel_hub": {}}).native_delivery


def test_native_delivery_no_delivery_block_is_landed_by_the_gateway() -> None:
    assert not record().native_delivery
