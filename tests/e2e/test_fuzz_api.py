"""Fuzz the API from its OpenAPI document (schemathesis) against the running local stack.

Requests go through the same HTTP front, authorizer and ApiFunction as any client's. For every operation
of ``docs/openapi.json`` schemathesis generates valid requests (``positive``) and requests that break the
document (``negative``: wrong types, missing or extra fields, values out of range, odd strings), and every
answer must pass:

* ``not_a_server_error`` — no 5xx (an unhandled exception in the handler is a 500);
* ``status_code_conformance`` — only statuses the document lists for the operation;
* ``content_type_conformance`` and ``response_schema_conformance`` — the body is what the document says:
  Planet's ``{"field", "general"}`` for a 400, ``{"message"}`` for other errors, the order shapes.

Bounded and reproducible: Hypothesis derandomized (the same examples on every run), ``MAX_EXAMPLES`` per
operation and mode, no example database. ``make fuzz`` runs only this file (``FUZZ_EXAMPLES=500`` to dig
deeper); ``make test`` includes it. A tenant of its own keeps what it creates away from the other tests.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import pytest
import requests
import schemathesis
from gateway_local.openapi import DOCUMENT
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stack_process import new_key

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# The committed document; test_served_openapi_document_is_the_committed_one checks the stack serves it.
# (Loaded here, not through schemathesis' pytest plugin: its lazy fixture loader breaks on pytest 9.)
SCHEMA = schemathesis.openapi.from_path(DOCUMENT)
_DOCUMENT = json.loads(DOCUMENT.read_text(encoding="utf-8"))
OPERATIONS = {
    operation["operationId"]: operation
    for item in _DOCUMENT["paths"].values()
    for method, operation in item.items()
    if method in ("get", "put", "post", "delete", "patch")
}


def _breakable(operation: dict[str, Any]) -> bool:
    """Has input that can break the document: a body or a non-path parameter (any path string is valid)."""
    return "requestBody" in operation or any(p["in"] != "path" for p in operation.get("parameters", []))


CASES = [
    pytest.param(operation_id, mode, id=f"{operation_id}-{mode.value}")
    for operation_id, operation in OPERATIONS.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _breakable(operation)
]


@pytest.fixture(scope="module")
def fuzz_key(local_stack: Any) -> str:
    return new_key(local_stack, "fuzz")


@pytest.fixture(scope="module")
def origin(local_stack: Any) -> str:
    parts = urlsplit(local_stack.api_url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize(("operation_id", "mode"), CASES)
def test_api_fuzzed_from_its_openapi_document_keeps_its_contract(
    operation_id: str, mode: GenerationMode, origin: str, fuzz_key: str
) -> None:
    operation = SCHEMA.find_operation_by_id(operation_id)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_within_the_contract(case: Any) -> None:
        response = case.call(
            base_url=origin,
            headers={"Authorization": f"api-key {fuzz_key}"},
            allow_redirects=False,  # a download's 302 is the answer; S3 behind it is not this API
            timeout=30,
        )
        case.validate_response(response, checks=CHECKS)

    answers_within_the_contract()


# Raw query values as bytes on the wire: anything percent-encoded (invalid UTF-8 and the UTF-8 form of a
# lone surrogate, %ED%A0%80, included) and the values that used to find 500s. The document's string
# parameters accept any text, so schemathesis alone never sends these.
_RAW_VALUES = st.one_of(
    st.binary(max_size=24).map(lambda raw: quote_from_bytes(raw, safe="")),
    st.sampled_from(
        [
            "%ED%A0%80",
            "a%00b",
            "%FF%FE",
            "9" * 5000,
            "1" + "0" * 400,
            "-1",
            "0",
            "2.5",
            "9999-12-31T23:59:59-01:00",
            "..%2F..",
            "name%20DESC%2Cnope",
            "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb",  # base64 of "[[[[..."
            "eyJpZCI6IDUsICJuYW1lIjogW119",  # base64 of JSON with the wrong types
            "A" * 6000,
        ]
    ),
)
_LIST_PARAMETERS = [p["name"] for p in OPERATIONS["listOrders"]["parameters"]]


@settings(max_examples=MAX_EXAMPLES * 4, derandomize=True, database=None, deadline=None)
@given(query=st.lists(st.tuples(st.sampled_from([*_LIST_PARAMETERS, "%ED%A0%80"]), _RAW_VALUES), max_size=4))
def test_api_list_hostile_raw_query_strings_answer_200_or_planets_400(
    query: list[tuple[str, str]], origin: str, fuzz_key: str
) -> None:
    url = f"{origin}/compute/ops/orders/v2?" + "&".join(f"{name}={value}" for name, value in query)

    response = requests.get(url, headers={"Authorization": f"api-key {fuzz_key}"}, timeout=30)

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        body = response.json()
        assert set(body) == {"field", "general"} and len(body["field"]) == 1, body


@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None)
@given(escape=st.integers(min_value=0xD800, max_value=0xDFFF), where=st.sampled_from(["name", "metadata"]))
def test_api_create_with_a_lone_surrogate_escape_answers_400_naming_the_field(
    escape: int, where: str, origin: str, fuzz_key: str
) -> None:
    escaped = f'"x\\u{escape:04x}"'  # the six characters of a JSON escape, not the code point
    name, metadata = (escaped, '"m"') if where == "name" else ('"n"', escaped)
    products = '[{"item_ids": ["a"], "item_type": "PSScene", "product_bundle": "visual"}]'
    body = f'{{"name": {name}, "products": {products}, "metadata": {{"k": {metadata}}}}}'

    response = requests.post(
        f"{origin}/compute/ops/orders/v2",
        data=body.encode(),
        headers={"Authorization": f"api-key {fuzz_key}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 400, response.text
    assert list(response.json()["field"]) == ["name" if where == "name" else "metadata.k"]


def test_fuzz_covers_every_operation_of_the_document() -> None:
    assert set(OPERATIONS) == {
        "createOrder",
        "listOrders",
        "getOrder",
        "cancelOrder",
        "bulkCancelOrders",
        "getOrderStats",
        "downloadResult",
    }


def test_served_openapi_document_is_the_committed_one(origin: str) -> None:
    served = requests.get(f"{origin}/compute/ops/openapi.json", timeout=10)
    ui = requests.get(f"{origin}/compute/ops/docs", timeout=10)
    bundle = requests.get(f"{origin}/compute/ops/docs/swagger-ui-bundle.min.js", timeout=10)

    body = served.json()
    assert served.status_code == 200
    assert body["servers"][0] == {"url": origin, "description": "This local stack"}
    assert {k: v for k, v in body.items() if k != "servers"} == {
        k: v for k, v in _DOCUMENT.items() if k != "servers"
    }
    assert (
        ui.status_code == 200 and "SwaggerUIBundle" in ui.text and "/compute/ops/docs/swagger-ui" in ui.text
    )
    assert bundle.status_code == 200 and bundle.headers["Content-Type"].startswith("application/javascript")
