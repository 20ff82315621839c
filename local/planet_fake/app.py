"""The Flask app: the Orders API v2 under /compute/ops, signed storage under /storage, admin under /_fake."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, current_app, g, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import catalog
from .config import FakePlanetConfig
from .content import iter_generated, iter_inline
from .faults import FaultMiddleware, FaultRule
from .listing import ListQueryError, list_page
from .orders import LinkSigner, Order, OrderRequestError
from .outputs import MANIFEST_PATH
from .store import NOT_CANCELLABLE, CancelOutcome, FakePlanetStore, no_such_order
from .timefmt import format_time, utcnow_ms
from .tokens import (
    LinkError,
    StorageUrlExpired,
    check_storage_signature,
    issue_download_token,
    read_download_token,
    storage_signature,
)
from .webhooks import WebhookSender

API_PREFIX = "/compute/ops"
EXTENSION_KEY = "planet_fake"
# Operations that need an API key. Download links carry their own token ("no authentication is
# required", Planet's mechanics doc) and storage URLs their own signature.
AUTHENTICATED_OPS = frozenset({"create", "get", "list", "cancel", "bulk_cancel", "stats"})
MISSING_KEY_MESSAGE = "Please enter your API key, or email and password."
INVALID_KEY_MESSAGE = "Invalid API key."

ChunkSource = Callable[[int, int], Iterator[bytes]]


def get_store(app: Flask | None = None) -> FakePlanetStore:
    store: FakePlanetStore = (app or current_app).extensions[EXTENSION_KEY]
    return store


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> ResponseReturnValue:
    return jsonify(message=message), status, headers or {}


def _api_root() -> str:
    return request.host_url.rstrip("/") + API_PREFIX


def _order_url(order: Order) -> str:
    return f"{_api_root()}/orders/v2/{order.id}"


def api_key_from_header(header: str | None) -> str | None:
    """The key from `Authorization: api-key KEY`, or from Basic auth with the key as user name."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "api-key":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            user, _, _password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


def _throttle(api_key: str, op: str) -> ResponseReturnValue | None:
    store = get_store()
    if store.config.rate_limits and not store.rate_limiter.admit(api_key, op):
        return _message(429, "Rate limit exceeded: slow down", {"Retry-After": "1"})
    return None


def _authenticate() -> ResponseReturnValue | None:
    """Before every request: API key check, then the rate limit of the operation."""
    op = request.endpoint
    if op not in AUTHENTICATED_OPS:
        return None
    api_key = api_key_from_header(request.headers.get("Authorization"))
    if api_key is None:
        return _message(401, MISSING_KEY_MESSAGE)
    allowed = get_store().config.api_keys
    if allowed and api_key not in allowed:
        return _message(401, INVALID_KEY_MESSAGE)
    g.api_key = api_key
    return _throttle(api_key, op)


def _link_signer(order: Order, now: datetime) -> LinkSigner:
    config = get_store().config
    # JWT expiry has whole seconds, so expires_at is rounded down to match it exactly.
    expires = int(now.timestamp() + config.link_ttl_seconds)
    expires_at = format_time(datetime.fromtimestamp(expires, UTC))
    download_url = f"{_api_root()}/download/"

    def sign(path: str) -> tuple[str, str]:
        token = issue_download_token(config.token_secret, order.id, path, expires)
        return f"{download_url}?{urlencode({'token': token})}", expires_at

    return sign


def create_order() -> ResponseReturnValue:
    store = get_store()
    try:
        order = Order.create(g.api_key, request.get_json(force=True, silent=True), store.config, utcnow_ms())
    except OrderRequestError as exc:
        return jsonify(exc.body()), 400
    store.add_order(order)
    return jsonify(order.document(order.accepted_snapshot(), _order_url(order), None)), 202


def get_order(order_id: str) -> ResponseReturnValue:
    order = get_store().order_of(order_id, g.api_key)
    if order is None:
        return _message(404, f"Could not load order ID: {order_id}.")
    now = utcnow_ms()
    return jsonify(order.document(order.snapshot(now), _order_url(order), _link_signer(order, now)))


def list_orders() -> ResponseReturnValue:
    try:
        body = list_page(
            get_store(),
            g.api_key,
            request.args.to_dict(flat=False),
            self_url=request.base_url,
            order_url=_order_url,
            now=utcnow_ms(),
        )
    except ListQueryError as exc:
        return jsonify(exc.body()), 400
    return jsonify(body)


def cancel_order(order_id: str) -> ResponseReturnValue:
    store = get_store()
    now = utcnow_ms()
    outcome = store.cancel(order_id, g.api_key, now)
    if outcome is CancelOutcome.NOT_FOUND:
        return _message(404, no_such_order(order_id))
    if outcome is CancelOutcome.NOT_CANCELLABLE:
        return _message(409, NOT_CANCELLABLE)
    order = store.order_of(order_id, g.api_key)
    if order is None:  # reset by the admin API in between
        return _message(404, no_such_order(order_id))
    return jsonify(order.document(order.snapshot(now), _order_url(order), None))


def _bulk_cancel_error(message: str) -> ResponseReturnValue:
    body = {
        "field": {"order_ids": [{"message": message}]},
        "general": [{"message": "Unable to cancel orders"}],
    }
    return jsonify(body), 400


def bulk_cancel() -> ResponseReturnValue:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _bulk_cancel_error("expected a JSON object")
    if "order_ids" not in body:
        return jsonify({"result": get_store().bulk_cancel(g.api_key, None, utcnow_ms())})
    order_ids = body["order_ids"]
    if not isinstance(order_ids, list) or not all(isinstance(i, str) for i in order_ids):
        return _bulk_cancel_error("order_ids must be a list of order ids")
    return jsonify({"result": get_store().bulk_cancel(g.api_key, order_ids, utcnow_ms())})


def order_stats() -> ResponseReturnValue:
    return jsonify(get_store().stats(g.api_key, utcnow_ms()))


def bundles_spec() -> ResponseReturnValue:
    return jsonify(catalog.bundles_spec())


def download() -> ResponseReturnValue:
    store = get_store()
    config = store.config
    try:
        claim = read_download_token(config.token_secret, request.args.get("token", ""))
    except LinkError as exc:
        return _message(401, str(exc))
    order = store.find_order(claim.order_id)
    if order is None or (claim.path != MANIFEST_PATH and order.find_file(claim.path) is None):
        return _message(404, "The ordered file no longer exists")
    # Download requests carry no API key; the limit applies to the key that owns the order.
    throttled = _throttle(order.api_key, "download")
    if throttled is not None:
        return throttled
    object_path = f"{order.id}/{claim.path}"
    signature = storage_signature(config.token_secret, object_path, claim.expires)
    storage_root = config.storage_base_url or request.host_url.rstrip("/")
    query = urlencode({"expires": claim.expires, "signature": signature})
    return redirect(f"{storage_root}/storage/{quote(object_path)}?{query}", 302)


def _body_source(order: Order, path: str) -> tuple[ChunkSource, int, str] | None:
    """How to produce a file's bytes, its size and media type; None if the order has no such file."""
    if path == MANIFEST_PATH:
        manifest = get_store().manifest(order)
        return (lambda start, end: iter_inline(manifest, start, end)), len(manifest), "application/json"
    output = order.find_file(path)
    if output is None:
        return None
    body = output.data()
    if body is not None:
        return (lambda start, end: iter_inline(body, start, end)), len(body), output.media_type
    return (lambda start, end: iter_generated(order.id, path, start, end)), output.size, output.media_type


def _storage_error(status: int, code: str, message: str, details: str) -> ResponseReturnValue:
    """Errors as Google Cloud Storage answers a signed URL: XML `<Error><Code>…`."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message><Details>{details}</Details></Error>"
    )
    return Response(body, status=status, content_type="application/xml; charset=UTF-8")


def storage(object_path: str) -> ResponseReturnValue:
    """A signed-URL object store. Always a Content-Length (the SDK needs it), never chunked encoding."""
    store = get_store()
    try:
        check_storage_signature(
            store.config.token_secret,
            object_path,
            request.args.get("expires", ""),
            request.args.get("signature", ""),
            time.time(),
        )
    except StorageUrlExpired as exc:
        # GCS: HTTP 400 ExpiredToken, "The provided token has expired. Request signature expired at: …".
        return _storage_error(
            400, "ExpiredToken", "Invalid argument.", f"The provided token has expired. {exc}"
        )
    except LinkError as exc:
        return _storage_error(
            403,
            "SignatureDoesNotMatch",
            "Access denied.",
            f"The request signature we calculated does not match. {exc}",
        )
    order_id, _, path = object_path.partition("/")
    order = store.find_order(order_id)
    source = _body_source(order, path) if order is not None else None
    if source is None:
        return _message(404, "No such object")
    chunks, size, media_type = source

    status, start, end = 200, 0, size
    requested = request.range
    # Several ranges are answered with the whole file, which RFC 9110 allows.
    if requested is not None and len(requested.ranges) == 1:
        satisfiable = requested.range_for_length(size)
        if satisfiable is None:
            return _message(416, "Requested range not satisfiable", {"Content-Range": f"bytes */{size}"})
        status, (start, end) = 206, satisfiable
    response = Response(chunks(start, end), status=status, content_type=media_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(end - start)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Disposition"] = _attachment(path.rsplit("/", 1)[-1])
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return response


def _attachment(name: str) -> str:
    """Content-Disposition for a file name (RFC 6266): headers are latin-1, so a name that is not plain
    ASCII (an archive named after a non-English order name) gets an ASCII fallback and ``filename*``."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    if plain == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _json_error(exc: HTTPException) -> ResponseReturnValue:
    """Unknown paths and wrong methods answer JSON like the rest of the API."""
    response = exc.get_response()
    response.set_data(jsonify(message=exc.description).get_data())
    response.content_type = "application/json"
    return response


def _admin_add_fault() -> ResponseReturnValue:
    try:
        rule = FaultRule.model_validate(request.get_json(force=True, silent=True))
    except ValidationError as exc:
        return _message(400, str(exc))
    return jsonify(get_store().faults.add(rule).model_dump()), 201


def _admin_list_faults() -> ResponseReturnValue:
    return jsonify({"faults": [rule.model_dump() for rule in get_store().faults.pending()]})


def _admin_clear_faults() -> ResponseReturnValue:
    get_store().faults.clear()
    return "", 204


def _admin_get_config() -> ResponseReturnValue:
    return jsonify(get_store().config.model_dump(mode="json"))


def _admin_update_config() -> ResponseReturnValue:
    changes = request.get_json(force=True, silent=True)
    if not isinstance(changes, dict):
        return _message(400, "expected a JSON object of config fields")
    try:
        config = get_store().update_config(changes)
    except ValidationError as exc:
        return _message(400, str(exc))
    return jsonify(config.model_dump(mode="json"))


def _admin_orders() -> ResponseReturnValue:
    return jsonify(get_store().dump(utcnow_ms()))


def _admin_requests() -> ResponseReturnValue:
    return jsonify({"requests": get_store().requests.dump()})


def _admin_clear_requests() -> ResponseReturnValue:
    get_store().requests.clear()
    return "", 204


def _admin_webhooks() -> ResponseReturnValue:
    sender = get_store().webhooks
    return jsonify({"webhooks": sender.calls() if sender is not None else []})


def _admin_reset() -> ResponseReturnValue:
    get_store().reset()
    return "", 204


def create_app(config: FakePlanetConfig | None = None) -> Flask:
    app = Flask(__name__)
    store = FakePlanetStore(config or FakePlanetConfig())
    app.extensions[EXTENSION_KEY] = store

    # Endpoint names are the operation names that rate limits and fault rules refer to (faults.OPS).
    api: list[tuple[str, str, str, Callable[..., Any]]] = [
        ("/orders/v2", "POST", "create", create_order),
        ("/orders/v2", "GET", "list", list_orders),
        ("/orders/v2/<order_id>", "GET", "get", get_order),
        ("/orders/v2/<order_id>", "PUT", "cancel", cancel_order),
        ("/bulk/orders/v2/cancel", "POST", "bulk_cancel", bulk_cancel),
        ("/stats/orders/v2", "GET", "stats", order_stats),
        ("/bundles/spec", "GET", "spec", bundles_spec),
        ("/download/", "GET", "download", download),
    ]
    for path, method, endpoint, view in api:
        app.add_url_rule(API_PREFIX + path, endpoint, view, methods=[method])
    app.add_url_rule("/storage/<path:object_path>", "storage", storage, methods=["GET"])

    admin: list[tuple[str, str, Callable[..., Any]]] = [
        ("/faults", "POST", _admin_add_fault),
        ("/faults", "GET", _admin_list_faults),
        ("/faults", "DELETE", _admin_clear_faults),
        ("/config", "GET", _admin_get_config),
        ("/config", "POST", _admin_update_config),
        ("/orders", "GET", _admin_orders),
        ("/requests", "GET", _admin_requests),
        ("/requests", "DELETE", _admin_clear_requests),
        ("/webhooks", "GET", _admin_webhooks),
        ("/reset", "POST", _admin_reset),
    ]
    for path, method, view in admin:
        app.add_url_rule("/_fake" + path, view.__name__.lstrip("_"), view, methods=[method])

    app.before_request(_authenticate)
    app.register_error_handler(HTTPException, _json_error)
    app.wsgi_app = FaultMiddleware(app.wsgi_app, app.url_map, store.faults, store.requests)  # type: ignore[method-assign]
    return app


def start_webhooks(app: Flask, api_root: str) -> WebhookSender:
    """Start calling the orders' webhooks (``api_root``: the /compute/ops URL order links in bodies use)."""
    store = get_store(app)

    def document(order: Order, now: datetime) -> dict[str, Any]:
        return order.document(order.snapshot(now), f"{api_root}/orders/v2/{order.id}", None)

    sender = WebhookSender(
        lambda: store.orders(None), store.faults, document, utcnow_ms, lambda: store.config.webhooks
    )
    store.webhooks = sender
    sender.start()
    return sender
