"""The OpenAPI document of the gateway's HTTP API, generated from ApiFunction's own resolver.

    make openapi                                          # writes docs/openapi.json
    .venv/bin/python -m gateway_local.openapi --check     # exit 1 when docs/openapi.json is stale

Nothing in the document is written by hand:

* paths, operations, parameters, request bodies, responses, tags and security come from the routes of
  ``functions/api/app.py`` through Powertools' ``app.get_openapi_schema()``;
* the request body schema is the pydantic model the API validates with (``OrderRequest``);
* the response and error schemas are the models of ``order_core/models/api.py``, the same ones the API
  builds its answers with (``order_view``, the error answers); the fuzz test (``tests/e2e/test_fuzz_api.py``)
  also checks every response it provokes against them.

``tests/unit/test_openapi.py`` fails when the committed file differs from a fresh generation. The local
stack serves the document and a Swagger UI (``gateway_local.api_docs``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from order_core.models.api import (
    BulkCancelRequest,
    BulkCancelResult,
    Message,
    Order,
    OrderList,
    OrderStats,
    PlanetValidationError,
)
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = PROJECT_ROOT / "docs" / "openapi.json"
API_HANDLER = PROJECT_ROOT / "functions" / "api" / "app.py"
REF_PREFIX = "#/components/schemas/"

TITLE = "Planet Orders Gateway"
DESCRIPTION = (
    "Planet's Orders API v2, self-hosted on AWS: the same paths under `/compute/ops`, the same JSON and the "
    "same error shapes, so curl, the `planet` SDK and the `planet` CLI work with only the base URL changed. "
    "Orders are submitted to Planet exactly once, followed by a Step Functions workflow, and their results "
    "land in the gateway's S3 bucket, verified against Planet's manifest.\n\n"
    "Authenticate with `Authorization: api-key <key>`, or Basic auth with the key as user name. Errors: "
    '400 `{"field": {"<field>": [{"message": ...}]}, "general": [{"message": ...}]}`, every other status '
    '`{"message": ...}`.'
)
SERVERS = [
    {"url": "http://127.0.0.1:8000", "description": "`make up` (the local stack)"},
    {
        "url": "https://{api_id}.execute-api.{region}.amazonaws.com/v1",
        "description": "Deployed with SAM: the stack output `ApiBaseUrl` without `/compute/ops`",
        "variables": {"api_id": {"default": "abc123"}, "region": {"default": "us-east-1"}},
    },
]
SECURITY_SCHEMES = {
    "ApiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Authorization: api-key <key>` (keys: `python -m gateway_local keys create`)",
    },
    "BasicAuth": {"type": "http", "scheme": "basic", "description": "The API key as user name, no password"},
}
TAGS = [
    {"name": "orders", "description": "Planet's Orders API v2"},
    {"name": "downloads", "description": "Landed result files, through signed links"},
]


# --- the contract of the responses: the models the API answers with (order_core/models/api.py) ------------

_RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Message,
    PlanetValidationError,
    Order,
    OrderList,
    BulkCancelResult,
    OrderStats,
)


# --- generation ---------------------------------------------------------------------------------------------


def load_api() -> ModuleType:
    """``functions/api/app.py``, under the module name the test harness gives it (every handler is app.py)."""
    name = "functions_api_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, API_HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_document() -> dict[str, Any]:
    """The OpenAPI document: the resolver's, plus the component schemas its routes refer to."""
    from order_core.models.planet import OrderRequest

    api = load_api()
    document: dict[str, Any] = json.loads(
        api.app.get_openapi_json_schema(
            title=TITLE,
            version=metadata.version("planet-orders-gateway"),
            description=DESCRIPTION,
            servers=SERVERS,
            security_schemes=SECURITY_SCHEMES,
            security=[{"ApiKeyAuth": []}, {"BasicAuth": []}],
            tags=TAGS,
        )
    )
    models = [(OrderRequest, "validation"), (BulkCancelRequest, "validation")]
    models += [(model, "serialization") for model in _RESPONSE_MODELS]
    _, definitions = models_json_schema(models, ref_template=REF_PREFIX + "{model}")  # type: ignore[arg-type]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions["$defs"].items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"two different schemas are called {name}")
        schemas[name] = schema
    document["components"]["schemas"] = _reachable(document, schemas)
    return document


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"].removeprefix(REF_PREFIX)} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def _reachable(document: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Only the schemas the paths use, sorted by name; a reference to a missing one is an error.

    Powertools always adds the schemas of its own validation errors, which this API never answers with.
    """
    seen: set[str] = set()
    todo = _refs(document["paths"])
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise ValueError(f"a route refers to the schema {name!r}, which does not exist")
        seen.add(name)
        todo |= _refs(schemas[name])
    return {name: schemas[name] for name in sorted(seen)}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/openapi.json from ApiFunction's routes.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed document is stale")
    parser.add_argument("--output", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.check:
        if not args.output.exists() or args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is stale: run `make openapi` and commit it", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
