"""docs/openapi.json: generated from ApiFunction's routes, committed, and describing what the API answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_local.openapi import DOCUMENT, build_document, render
from gateway_local.template import load_template
from harness import ROOT
from order_core.models.planet import OrderRequest
from order_core.services.listing import STATES

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_openapi_committed_document_matches_a_fresh_generation(document: dict[str, Any]) -> None:
    committed = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""

    assert committed == render(document), "docs/openapi.json is stale: run `make openapi` and commit it"


def test_openapi_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(document)
    assert document["openapi"].startswith("3.1")


def test_openapi_documents_exactly_the_template_routes_of_api_function(document: dict[str, Any]) -> None:
    template = load_template(ROOT / "template.yaml")
    events = template.resources["ApiFunction"].properties["Events"].values()
    api_events = [event["Properties"] for event in events if event["Type"] == "Api"]
    declared = {(event["Method"].upper(), event["Path"]) for event in api_events}

    documented = {(method, path) for method, path, _ in _operations(document)}

    assert documented == declared


def test_openapi_every_error_response_has_planets_shape(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("4"):
                continue
            schema = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            expected = "PlanetValidationError" if status == "400" else "Message"
            assert schema == expected, f"{method} {path} {status}"


def test_openapi_every_keyed_operation_requires_a_key_and_answers_401(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {**schemes["ApiKeyAuth"], "type": "apiKey", "in": "header"}
    assert schemes["BasicAuth"]["scheme"] == "basic"
    assert document["security"] == [{"ApiKeyAuth": []}, {"BasicAuth": []}]
    for method, path, operation in _operations(document):
        if operation.get("security") == []:  # the signed download link is its own credential
            assert operation["operationId"] == "downloadResult"
            continue
        assert "401" in operation["responses"], f"{method} {path}"


def test_openapi_create_order_body_is_the_model_the_api_validates_with(document: dict[str, Any]) -> None:
    create = document["paths"]["/compute/ops/orders/v2"]["post"]
    schemas = document["components"]["schemas"]

    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderRequest"
    }
    expected = OrderRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["OrderRequest"] == {k: v for k, v in expected.items() if k != "$defs"}
    assert {p["name"]: p["in"] for p in create["parameters"]} == {"Idempotency-Key": "header"}
    assert set(create["responses"]) == {"202", "400", "401", "403", "409", "413", "422"}


def test_openapi_list_orders_documents_planets_query_parameters(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/compute/ops/orders/v2"]["get"]["parameters"]}

    assert set(parameters) == {
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
    }
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    assert parameters["state"]["schema"]["items"]["enum"] == list(STATES)
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}


def test_openapi_has_no_schema_the_paths_do_not_use(document: dict[str, Any]) -> None:
    text = json.dumps(document["paths"]) + json.dumps(document["components"]["schemas"])

    unused = [name for name in document["components"]["schemas"] if f'schemas/{name}"' not in text]

    assert unused == []  # e.g. Powertools' own HTTPValidationError, which this API never answers with
