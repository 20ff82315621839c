"""Each HTTP shape is one model (order_core/models/api.py): the API answers through it and the OpenAPI
generator documents it, so a shape the API sends cannot be missing from docs/openapi.json."""

from __future__ import annotations

from typing import get_args

import pytest
from order_core.models import api
from order_core.models.order import OrderRecord
from order_core.models.planet import OrderState
from order_core.services.orders import order_view
from pydantic import ValidationError

BASE = "https://gateway.example.com/v1"


def test_http_contract_openapi_documents_the_models_the_api_answers_with() -> None:
    from gateway_local import openapi

    for name in ("Message", "PlanetValidationError", "Order", "OrderList", "BulkCancelResult", "OrderStats"):
        assert getattr(openapi, name) is getattr(api, name)
    assert openapi.BulkCancelRequest is api.BulkCancelRequest


def test_http_contract_order_states_are_planets() -> None:
    assert set(get_args(api.OrderStateName)) == {state.value for state in OrderState}


def test_http_contract_order_refused_before_its_request_was_read_is_still_an_order() -> None:
    # An SQS body that is no order: recorded with an empty request, shown failed with its hints.
    record = OrderRecord(
        order_id="3f0b1f62-9a55-4e4a-8a54-0c7d9a0e4a11",
        tenant="acme",
        name="(invalid order request)",
        request={},
        state=OrderState.failed,
        error_hints=["Message body is not valid Unicode text"],
        rejected=True,
    )

    view = order_view(record, BASE)

    assert view["state"] == "failed" and "products" not in view and "order_type" not in view
    assert view["_links"] == {"_self": f"{BASE}/orders/v2/{record.order_id}"}


def test_http_contract_order_view_keeps_the_request_fields_it_does_not_name() -> None:
    record = OrderRecord(
        order_id="3f0b1f62-9a55-4e4a-8a54-0c7d9a0e4a11",
        tenant="acme",
        name="n",
        request={"name": "n", "products": [{"item_ids": ["a"]}], "order_type": "partial", "future": {"x": 1}},
    )

    view = order_view(record, BASE)

    assert view["order_type"] == "partial" and view["future"] == {"x": 1} and "delivery" not in view


def test_http_contract_an_answer_outside_the_contract_is_refused_not_sent() -> None:
    with pytest.raises(ValidationError):
        api.answer(api.Order, {"id": "x", "name": "n", "state": "lost"})
