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
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from gateway_local.openapi import DOCUMENT
from hypothesis import HealthCheck, Phase, given, settings
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
