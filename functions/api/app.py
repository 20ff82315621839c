"""ApiFunction: the Planet-compatible Orders API v2 under /compute/ops.

The routes carry their OpenAPI description (summary, responses, parameters, bodies); ``make openapi`` turns
them into ``docs/openapi.json`` (``gateway_local/openapi.py``). This module is on the API's cold-start path:
it imports nothing heavy itself, and what a request needs (boto3, PyJWT, the idempotency layer) is imported
when that request first needs it (benchmarks/RESULTS.md, "Cold start").
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.config import get_settings
from order_core.errors import (
    BodyTooLarge,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidBody,
    InvalidDownloadToken,
    InvalidIdempotencyKey,
    NotCancellable,
    OrderNotFound,
    PlanetBusy,
    Unauthorized,
)
from order_core.models.api import Message
from order_core.models.planet import MAX_ORDER_BYTES, OrderRequest, invalid_json_body, planet_error_body
from order_core.observability import logger, metrics, tracer
from order_core.services.idempotency import MAX_KEY_LENGTH
from order_core.services.listing import (
    MAX_PAGE_SIZE,
    SORT_FIELDS,
    SOURCE_TYPES,
    STATES,
    ListQueryError,
    page,
    parse_query,
)
from order_core.services.orders import order_view
from pydantic import ValidationError

if TYPE_CHECKING:
    from order_core.models.order import OrderRecord
    from order_core.services.links import DownloadLinks

app = APIGatewayRestResolver(strip_prefixes=[])
PREFIX = "/compute/ops"

#: Bodies over MAX_ORDER_BYTES get 413. A 500-item order is about 15 KB, so this leaves room for detailed
#: clip AOIs. Checked on the body as sent and on the order as stored (``OrderRequest.stored_size``).
#: Planet's order JSON nests about 8 levels (tools → clip → aoi → MultiPolygon coordinates). Deeper bodies
#: are refused before they reach code that recurses over them (pydantic, the redaction of order views).
MAX_BODY_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# --- the contract, as the OpenAPI document shows it ---------------------------------------------------------
# Powertools documents request bodies and query parameters only from typed, validated route arguments. This
# API validates its input itself (Planet's 400 shape, no per-request validation on the cold-start path), so
# bodies and parameters are given here as OpenAPI fragments, which Powertools merges into each operation
# as they are (``openapi_extensions``). The component schemas they name are added by the generator.


def _ref(schema: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _json_content(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema)}}


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Invalid request; `field` names each wrong field (Planet's 400 shape)", "PlanetValidationError"),
    401: ("Missing, malformed, unknown or revoked API key (answered by the API's authorizer)", "Message"),
    403: ("No route matches the path (for example an id containing `/`), as API Gateway answers", "Message"),
    404: ("No such order for this API key's tenant (ids that are not UUIDs included)", "Message"),
    413: (f"Request body larger than {MAX_ORDER_BYTES} bytes", "Message"),
    429: ("Planet is rate limiting this call; retry after `Retry-After` seconds", "Message"),
    503: ("Planet did not answer; retry", "Message"),
}


def _responses(
    success: int, description: str, schema: str | None, *errors: int | tuple[int, str]
) -> dict[int, Any]:
    """Route responses: the success and Planet-shaped errors (a status, or a status with its own text)."""
    responses: dict[int, dict[str, Any]] = {
        success: {"description": description, **({"content": _json_content(schema)} if schema else {})}
    }
    for error in errors:
        status, text = error if isinstance(error, tuple) else (error, _ERRORS[error][0])
        responses[status] = {
            "description": text,
            "content": _json_content(_ERRORS.get(status, ("", "Message"))[1]),
        }
    if 429 in responses:
        responses[429]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return responses


def _query(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _json_body(schema: str, description: str, *, required: bool) -> dict[str, Any]:
    return {"required": required, "description": description, "content": _json_content(schema)}


_AUTHORIZED = (401, 403)
_LIST_PARAMETERS = [
    _query(
        "state",
        "Only orders in one of these states; repeat the parameter or give a comma list.",
        {"type": "array", "items": {"type": "string", "enum": list(STATES)}},
    ),
    _query(
        "source_type",
        "Only these source types; `all` for every one. Default: `scenes` (as upstream).",
        {"type": "array", "items": {"type": "string", "enum": list(SOURCE_TYPES)}},
    ),
    _query("name", "Only orders with exactly this name.", {"type": "string"}),
    _query("name__contains", "Only orders whose name contains this (case-sensitive).", {"type": "string"}),
    _query(
        "created_on",
        "RFC 3339 instant, or interval `start/end`, `start/..`, `../end` (start inclusive, end exclusive).",
        {"type": "string"},
    ),
    _query("last_modified", "Like `created_on`, for the last modification.", {"type": "string"}),
    _query("hosting", "Only orders with (`true`) or without (`false`) a hosting block.", {"type": "boolean"}),
    _query("destination_ref", "Only orders delivered to this Destinations API ref.", {"type": "string"}),
    _query(
        "user_id", "Accepted for compatibility; a key only ever sees its tenant's orders.", {"type": "string"}
    ),
    _query(
        "sort_by",
        f"Comma list of {', '.join(SORT_FIELDS)}, each optionally followed by ` ASC` or ` DESC`. "
        "Default: newest first.",
        {"type": "string"},
    ),
    _query("page_size", "Orders per page.", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
    _query("page_marker", "Opaque; from the previous page's `_links.next`.", {"type": "string"}),
]
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key and body within 24 h: the first response again (same order). Same key, other "
    "body: 422. First request still running: 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


# --- request helpers ----------------------------------------------------------------------------------------


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def _message(status: int, message: str) -> Response:
    return _json(status, Message(message=message).model_dump())


def _body_error(message: str, field: str | None = None) -> dict[str, Any]:
    """Planet's 400 for a body we cannot read: the reason in ``general``, or under its top-level field."""
    if field is None:
        return {"field": {}, "general": [{"message": message}]}
    return {"field": {field: [{"message": message}]}, "general": [{"message": "Invalid request body"}]}


def _reject_constant(name: str) -> Any:
    raise InvalidBody(_body_error(f"Request body is not valid JSON: {name} is not a JSON value"))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which has no JSON form to store or answer with
        raise InvalidBody(_body_error(f"Request body is not valid JSON: number {text[:40]} is out of range"))
    return value


def _too_deep(payload: Any) -> str | None:
    """The top-level field under which ``payload`` nests deeper than MAX_BODY_DEPTH ("" for the body)."""
    stack: list[tuple[Any, int, str]] = [(payload, 0, "")]
    while stack:
        value, depth, top = stack.pop()
        if depth > MAX_BODY_DEPTH:
            return top
        if isinstance(value, dict):
            stack.extend((v, depth + 1, top or str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, top) for v in value)
    return None


def _not_unicode(payload: Any) -> str | None:
    """The dotted path of the first key or string in ``payload`` that is not Unicode text, else None.

    JSON may spell a lone UTF-16 surrogate (``"\\ud800"``), which Python reads into a str that has no
    UTF-8 form: it could be neither stored nor sent to Planet.
    """
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        value, path = stack.pop()
        items: Any = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path
        for key, item in items:
            step = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
            child = f"{path}.{step}" if path else step
            if isinstance(key, str) and step != key:
                return child
            stack.append((item, child))
    return None


def _request_json(when_empty: str) -> tuple[Any, bytes]:
    """The request body parsed as JSON, and its bytes. Raises BodyTooLarge or InvalidBody.

    Read from the raw event rather than Powertools' ``decoded_body``, which raises (a 500) on a body that
    is not UTF-8. Python's json also reads NaN, Infinity and 1e999, which are not JSON and could be neither
    stored nor answered with, and recurses on nesting; all of these are 400s here.
    """
    event = app.current_event
    text = event.body or ""
    try:
        data = (
            base64.b64decode(text, validate=True)
            if event.is_base64_encoded
            else text.encode("utf-8", "surrogatepass")
        )
    except binascii.Error:
        raise InvalidBody(_body_error("Request body is not valid base64")) from None
    if len(data) > MAX_ORDER_BYTES:
        raise BodyTooLarge(len(data))
    try:
        decoded = data.decode("utf-8") or when_empty
    except UnicodeDecodeError as exc:
        raise InvalidBody(_body_error(f"Request body is not valid UTF-8 (byte {exc.start})")) from None
    try:
        payload = json.loads(decoded, parse_constant=_reject_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidBody(invalid_json_body(exc)) from None
    except RecursionError:
        raise InvalidBody(_body_error(f"Request body nests deeper than {MAX_BODY_DEPTH} levels")) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidBody(_body_error(f"Request body is not valid JSON: {exc}")) from None
    too_deep = _too_deep(payload)
    if too_deep is not None:
        raise InvalidBody(_body_error(f"nests deeper than {MAX_BODY_DEPTH} levels", too_deep or None))
    # Only a \uD800-\uDFFF escape can make a surrogate: the text itself was valid UTF-8.
    if _SURROGATE_ESCAPE.search(decoded) and (where := _not_unicode(payload)) is not None:
        message = "is not valid Unicode text: it holds a lone UTF-16 surrogate"
        raise InvalidBody(_body_error(message if where else f"Request body {message}", where or None))
    return payload, data


def base_url() -> str:
    """The public root of this API (…/compute/ops), as the client reached it."""
    configured = get_settings().public_base_url
    if configured:
        return configured.rstrip("/")
    event = app.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    host = headers.get("host") or event.request_context.domain_name or "localhost"
    proto = headers.get("x-forwarded-proto", "https")
    stage = f"/{event.request_context.stage}" if host.endswith(".amazonaws.com") else ""
    return f"{proto}://{host}{stage}{PREFIX}"


def tenant() -> str:
    """The caller's tenant, as the API's Lambda authorizer established it."""
    authorizer = app.current_event.request_context.authorizer
    value = authorizer.get("tenant") if authorizer else None
    if not value:
        raise Unauthorized("no tenant: the request did not pass the API key authorizer")
    return str(value)


def _order_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise OrderNotFound(value) from None


def _header(name: str) -> str | None:
    for key, value in (app.current_event.headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _download_links(record: OrderRecord) -> DownloadLinks | None:
    # Only landed results get links. Building them reads the signing key from Secrets Manager and imports
    # PyJWT, which a GET of an order without results (every order until it ends) never has to pay for.
    return wiring.download_links() if record.results else None


# --- routes -------------------------------------------------------------------------------------------------


@app.post(
    f"{PREFIX}/orders/v2",
    summary="Create an order",
    description="Planet's order request, validated here, recorded, and queued for submission to Planet "
    "(this call never reaches Planet itself). Answers 202 with the order in state `queued`; follow it with "
    "`GET /orders/v2/{order_id}`.",
    operation_id="createOrder",
    tags=["orders"],
    responses=_responses(
        202,
        "Accepted: the order, state `queued`",
        "Order",
        400,
        *_AUTHORIZED,
        (409, "A request with this Idempotency-Key is still being processed; retry shortly"),
        413,
        (422, "This Idempotency-Key was already used with a different request body"),
    ),
    openapi_extensions={
        "requestBody": _json_body("OrderRequest", "Planet's order request (Orders API v2)", required=True),
        "parameters": [_IDEMPOTENCY_KEY],
    },
)
def create_order() -> Response[Any]:
    payload, body = _request_json(when_empty="")
    try:
        request = OrderRequest.model_validate(payload)
    except ValidationError as exc:
        return _json(400, planet_error_body(exc))
    stored = request.stored_size()
    if stored > MAX_ORDER_BYTES:
        raise BodyTooLarge(stored, "The order as stored (its compact JSON plus its name)")
    caller = tenant()
    refusal = wiring.bundles_spec().refusal(request)  # item types and bundles, as Planet's spec has them
    if refusal is not None:
        return _json(400, refusal)

    def create() -> dict[str, Any]:
        return order_view(wiring.order_service().create(request, caller), base_url())

    key = _header("idempotency-key")
    if key is None:
        return _json(202, create())
    from order_core.services.idempotency import run_once

    return _json(202, run_once(get_settings().idempotency_table, caller, key, body, create))


@app.put(
    f"{PREFIX}/orders/v2/<order_id>",
    summary="Cancel an order",
    description="Only a `queued` order can be cancelled (as upstream); the answer is the order, state "
    "`cancelled`. Its completion event follows.",
    operation_id="cancelOrder",
    tags=["orders"],
    responses=_responses(
        200,
        "The order, state `cancelled`",
        "Order",
        *_AUTHORIZED,
        404,
        (409, "Order not in a cancellable state (only queued orders are)"),
        429,
        503,
    ),
)
def cancel_order(order_id: str) -> Response[Any]:
    record = wiring.order_service().cancel(_order_id(order_id), tenant())
    return _json(200, order_view(record, base_url()))


_BULK_CANCEL_RESPONSES = _responses(
    200, "What was cancelled and what was not", "BulkCancelResult", 400, *_AUTHORIZED, 413
)
_BULK_CANCEL_BODY = {
    "requestBody": _json_body(
        "BulkCancelRequest", "Which orders; `{}` or no body: all queued", required=False
    ),
}


@app.post(
    f"{PREFIX}/bulk/orders/v2/cancel",
    summary="Cancel several orders",
    description='`{}` cancels every queued order of the caller; `{"order_ids": [...]}` only those. Orders '
    "that cannot be cancelled are listed under `failed`.",
    operation_id="bulkCancelOrders",
    tags=["orders"],
    responses=_BULK_CANCEL_RESPONSES,
    openapi_extensions=_BULK_CANCEL_BODY,
)
@app.post(
    f"{PREFIX}/orders/v2/cancel",
    summary="Cancel several orders (alias)",
    description="The same as `POST /bulk/orders/v2/cancel`, at the path the seed document's prose names.",
    operation_id="bulkCancelOrdersAlias",
    tags=["orders"],
    responses=_BULK_CANCEL_RESPONSES,
    openapi_extensions=_BULK_CANCEL_BODY,
)
def bulk_cancel() -> Response[Any]:
    payload, _body = _request_json(when_empty="{}")
    order_ids = payload.get("order_ids") if isinstance(payload, dict) else None
    valid = (
        isinstance(payload, dict)
        and set(payload) <= {"order_ids"}
        and (
            "order_ids" not in payload
            or (isinstance(order_ids, list) and order_ids and all(isinstance(i, str) for i in order_ids))
        )
    )
    if not valid:
        return _json(
            400,
            {
                "field": {
                    "order_ids": [
                        {
                            "message": "must be a non-empty list of order ids, or "
                            "omitted to cancel every queued order"
                        }
                    ]
                },
                "general": [{"message": "Unable to cancel orders"}],
            },
        )
    if order_ids is not None:
        order_ids = _bulk_order_ids(order_ids)
    return _json(200, wiring.order_service().cancel_many(tenant(), order_ids))


def _bulk_order_ids(given: list[str]) -> list[str]:
    """Order ids in their canonical form; any that is not a UUID is a 400 naming its position."""
    canonical, wrong = [], {}
    for position, value in enumerate(given):
        try:
            canonical.append(str(uuid.UUID(value)))
        except ValueError:
            wrong[f"order_ids.{position}"] = [{"message": f"{value[:60]!r} is not an order id (a UUID)"}]
    if wrong:
        raise InvalidBody({"field": wrong, "general": [{"message": "Unable to cancel orders"}]})
    return canonical


@app.get(
    f"{PREFIX}/stats/orders/v2",
    summary="Count active orders",
    description="Queued and running orders of the caller's tenant, as both `user` and `organization` "
    "(a tenant is the organisation; no tenant sees another's counts).",
    operation_id="getOrderStats",
    tags=["orders"],
    responses=_responses(200, "The counts", "OrderStats", *_AUTHORIZED),
)
def stats() -> Response[Any]:
    return _json(200, wiring.order_service().stats(tenant()))


@app.get(
    f"{PREFIX}/orders/v2",
    summary="List orders",
    description="The caller's orders, filtered, sorted and paged as upstream: follow `_links.next` "
    "(absent on the last page). List items carry no result links.",
    operation_id="listOrders",
    tags=["orders"],
    responses=_responses(
        200,
        "One page of orders",
        "OrderList",
        (400, "An invalid query parameter; `field` names it"),
        *_AUTHORIZED,
    ),
    openapi_extensions={"parameters": _LIST_PARAMETERS},
)
def list_orders() -> Response[Any]:
    params = app.current_event.multi_value_query_string_parameters or {}
    try:
        query = parse_query(params)
    except ListQueryError as exc:
        return _json(400, exc.body())
    root = base_url()
    views = (
        order_view(record, root, with_results=False) for record in wiring.order_service().orders_of(tenant())
    )
    return _json(200, page(views, query, self_url=f"{root}/orders/v2"))


@app.get(
    f"{PREFIX}/orders/v2/<order_id>",
    summary="Get an order",
    description="The order in Planet's shape. Once it is `success` or `partial`, `_links.results` lists "
    "every landed file with a signed `location` on this API (`GET /download/?token=...`).",
    operation_id="getOrder",
    tags=["orders"],
    responses=_responses(200, "The order", "Order", *_AUTHORIZED, 404),
)
def get_order(order_id: str) -> Response[Any]:
    record = wiring.order_service().get(_order_id(order_id), tenant())
    return _json(200, order_view(record, base_url(), _download_links(record)))


@app.get(
    f"{PREFIX}/download",
    summary="Download a landed result",
    description="A result's `location`. The signed token is the credential (no API key), as with Planet's "
    "own download links; the answer redirects to a presigned S3 URL valid for 5 minutes.",
    operation_id="downloadResult",
    tags=["downloads"],
    responses={
        302: {
            "description": "Redirect to the landed file",
            "headers": {"Location": {"description": "Presigned S3 URL", "schema": {"type": "string"}}},
            "content": {},  # no body (without this key Powertools would document the return type as one)
        },
        401: {"description": "Invalid, forged or expired token", "content": _json_content("Message")},
    },
    openapi_extensions={
        "parameters": [_query("token", "From the result's `location`", {"type": "string"}, required=True)],
        "security": [],
    },
)
def download() -> Response[Any]:
    token = app.current_event.get_query_string_value("token", "") or ""
    if not token.isascii():  # a token is ASCII; PyJWT would fail to encode a lone surrogate (a 500)
        raise InvalidDownloadToken("invalid download token")
    claims = wiring.download_links().verify(token)
    url = wiring.results_store().presigned_get(claims.key, expires_in=300, filename=claims.filename)
    return Response(status_code=302, headers={"Location": url}, body="")


# --- errors -------------------------------------------------------------------------------------------------


@app.exception_handler(InvalidBody)
def invalid_body(exc: InvalidBody) -> Response:
    return _json(400, exc.body)


@app.exception_handler(BodyTooLarge)
def body_too_large(exc: BodyTooLarge) -> Response:
    return _message(413, str(exc))


@app.exception_handler(OrderNotFound)
def order_not_found(exc: OrderNotFound) -> Response:
    return _message(404, f"Could not load order ID: {exc}.")


@app.exception_handler(PlanetBusy)
def planet_busy(exc: PlanetBusy) -> Response:
    if exc.retry_after is None:
        return _message(503, str(exc))
    return _json(429, {"message": str(exc)}, headers={"Retry-After": str(max(1, round(exc.retry_after)))})


@app.exception_handler(NotCancellable)
def not_cancellable(exc: NotCancellable) -> Response:
    return _message(409, str(exc))


@app.exception_handler(IdempotencyKeyReused)
def key_reused(exc: IdempotencyKeyReused) -> Response:
    return _message(422, str(exc))


@app.exception_handler(IdempotencyKeyInFlight)
def key_in_flight(exc: IdempotencyKeyInFlight) -> Response:
    return _message(409, str(exc))


@app.exception_handler(InvalidIdempotencyKey)
def key_invalid(exc: InvalidIdempotencyKey) -> Response:
    # A 400 is Planet's validation shape; the header is the field.
    return _json(
        400,
        {
            "field": {"Idempotency-Key": [{"message": str(exc)}]},
            "general": [{"message": "Unable to accept order"}],
        },
    )


@app.exception_handler(Unauthorized)
def unauthorized(_exc: Unauthorized) -> Response:
    return _message(401, "Invalid or missing API key: use Authorization: api-key <key>")


@app.exception_handler(InvalidDownloadToken)
def bad_token(exc: InvalidDownloadToken) -> Response:
    return _message(401, str(exc))


@app.not_found
def route_not_found(_exc: Exception) -> Response:
    return _message(404, "Not found")


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return _message(500, "Internal server error")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
