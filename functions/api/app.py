"""ApiFunction: the Planet-compatible Orders API v2 under /compute/ops."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.config import get_settings
from order_core.errors import InvalidDownloadToken, OrderNotFound
from order_core.models.planet import OrderRequest, invalid_json_body, planet_error_body
from order_core.observability import logger, metrics, tracer
from order_core.services.auth import Unauthorized
from order_core.services.idempotency import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from order_core.services.listing import ListQueryError, page, parse_query
from order_core.services.orders import NotCancellable, PlanetBusy, order_view
from pydantic import ValidationError

app = APIGatewayRestResolver(strip_prefixes=[])
PREFIX = "/compute/ops"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def _message(status: int, message: str) -> Response:
    return _json(status, {"message": message})


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


@app.post(f"{PREFIX}/orders/v2")
def create_order() -> Response:
    body = app.current_event.decoded_body or ""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        return _json(400, invalid_json_body(exc))
    try:
        request = OrderRequest.model_validate(payload)
    except ValidationError as exc:
        return _json(400, planet_error_body(exc))
    caller = tenant()

    def create() -> dict[str, Any]:
        return order_view(wiring.order_service().create(request, caller), base_url())

    key = _header("idempotency-key")
    if key is None:
        return _json(202, create())
    from order_core.services.idempotency import run_once

    return _json(202, run_once(get_settings().idempotency_table, caller, key, body, create))


@app.put(f"{PREFIX}/orders/v2/<order_id>")
def cancel_order(order_id: str) -> Response:
    record = wiring.order_service().cancel(_order_id(order_id), tenant())
    return _json(200, order_view(record, base_url()))


@app.post(f"{PREFIX}/bulk/orders/v2/cancel")
def bulk_cancel() -> Response:
    body = app.current_event.decoded_body or "{}"
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        return _json(400, invalid_json_body(exc))
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
    return _json(200, wiring.order_service().cancel_many(tenant(), order_ids))


@app.get(f"{PREFIX}/stats/orders/v2")
def stats() -> Response:
    return _json(200, wiring.order_service().stats(tenant()))


def _header(name: str) -> str | None:
    for key, value in (app.current_event.headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


@app.get(f"{PREFIX}/orders/v2")
def list_orders() -> Response:
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


@app.get(f"{PREFIX}/orders/v2/<order_id>")
def get_order(order_id: str) -> Response:
    record = wiring.order_service().get(_order_id(order_id), tenant())
    return _json(200, order_view(record, base_url(), wiring.download_links()))


@app.get(f"{PREFIX}/download")
def download() -> Response:
    token = app.current_event.get_query_string_value("token", "") or ""
    claims = wiring.download_links().verify(token)
    url = wiring.results_store().presigned_get(claims.key, expires_in=300, filename=claims.filename)
    return Response(status_code=302, headers={"Location": url}, body="")


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
    return _message(400, str(exc))


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
