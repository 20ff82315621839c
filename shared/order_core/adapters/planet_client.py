"""The one place that talks to Planet's Orders API v2 over HTTP."""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlsplit

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from urllib3.util.retry import Retry

from order_core.errors import (
    PacingUnavailable,
    UpstreamAuthError,
    UpstreamClientError,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.planet import OrderRequest, PlanetOrder
from order_core.observability import logger, metrics

if TYPE_CHECKING:
    from types import TracebackType

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

    from order_core.services.pacing import Pacer

__all__ = ["LIST_FILTERS", "PlanetClient", "key_fingerprint", "parse_retry_after"]

LIST_FILTERS = frozenset(
    {
        "state",
        "source_type",
        "name",
        "name__contains",
        "created_on",
        "last_modified",
        "hosting",
        "sort_by",
        "destination_ref",
        "user_id",
        "page_size",
        "page_marker",
    }
)
"""Query parameters ``GET /orders/v2`` understands (reference §2.3)."""

_MESSAGE_LIMIT = 500


class _Redacted:
    """Holds a secret so that ``repr``/``vars`` of its owner never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class _IdempotentOnlyRetry(Retry):
    """urllib3 retries connect failures for every method, ``allowed_methods`` notwithstanding; this does not.

    A POST (create, bulk cancel) gets exactly one attempt, so the caller alone decides whether to send it
    again, after reconciling if the outcome was ambiguous.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if (
            method is not None
            and self.allowed_methods is not None
            and method.upper() not in self.allowed_methods
        ):
            # Count this failure against a budget of zero: urllib3 gives up exactly as with retries disabled.
            return Retry.increment(self.new(total=0), method, url, response, error, _pool, _stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


class PlanetClient:
    """Planet's Orders API v2: create, get, list, cancel, bulk cancel, stats, and the bundles spec.

    Every call has a timeout, and every failure becomes one of ``order_core.errors``: 401/403
    ``UpstreamAuthError``, 404 ``UpstreamNotFound``, 409 ``UpstreamConflict``, other 4xx
    ``UpstreamClientError``, 429 ``UpstreamRateLimited`` (with Retry-After), 5xx and transport failures
    ``UpstreamUnavailable``. A failed POST whose request may have reached Planet is marked ``ambiguous``.

    With a ``pacer`` (services/pacing.py), every request first reserves a slot of its endpoint (``create``,
    ``get``, ``list`` for each page, ``cancel``, ``bulk_cancel``, ``stats``, ``spec``) shared by the whole
    deployment. A slot at most ``pace_max_wait_seconds`` away is waited for here, the one short sleep this
    client takes; a later one is not taken and the call raises ``UpstreamRateLimited`` (``deferred``, with
    the wait as ``retry_after``) without sending anything. A 429 from Planet holds the endpoint for the
    whole fleet before it is raised. If the pace store itself fails, the request is sent unpaced (Planet's
    own 429 still protects the key).

    Otherwise it does not wait. It runs inside Lambda, where a sleep is billed time that also holds an SQS
    message or a Step Functions task; longer waits belong to SQS visibility timeouts and Step Functions
    ``Wait`` states. So it does not honour Retry-After itself (it reports it) and does not retry 429/5xx.
    The only retries are immediate, idempotent ones: a GET or PUT whose connection could not be opened
    (refused, reset while connecting, connect timeout) is tried again at once, up to twice, since the
    request never left this process (they are not paced again: Planet never saw them). POST is never
    retried in-process: an order created twice is billed twice.

    The API key is only ever put in the ``Authorization`` header of each request; it is not in ``repr``,
    exception text or the session's default headers.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        user_agent: str = "planet-orders-gateway",
        *,
        pacer: Pacer | None = None,
        pace_max_wait_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``base_url`` is the ``…/compute/ops`` root; pass ``session`` to share a pool (it is used as is).

        ``pacer`` paces every request with the rest of the deployment; ``pace_max_wait_seconds`` is the
        longest this client sleeps for a slot before deferring instead.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self._authorization = _Redacted(f"api-key {api_key}")
        self._session = session if session is not None else self.build_session()
        self._timeout = timeout
        self._user_agent = user_agent
        self._pacer = pacer
        self._pace_max_wait = max(0.0, pace_max_wait_seconds)
        self._sleep = sleep

    @staticmethod
    def build_session() -> requests.Session:
        """A session whose adapter retries only unopened GET/PUT connections, immediately."""
        retry = _IdempotentOnlyRetry(
            total=2,
            connect=2,
            read=0,
            status=0,
            backoff_factor=0,
            allowed_methods={"GET", "PUT"},
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def __repr__(self) -> str:
        return f"PlanetClient(base_url={self.base_url!r})"

    # --- operations --------------------------------------------------------------------------------------

    def create_order(self, request: OrderRequest | Mapping[str, Any]) -> PlanetOrder:
        """``POST /orders/v2``. A dict is sent as given, unvalidated."""
        body = request.to_wire() if isinstance(request, OrderRequest) else dict(request)
        return self._order("create", "POST", self._url("orders/v2"), json_body=body)

    def get_order(self, order_id: str) -> PlanetOrder:
        """``GET /orders/v2/{order_id}``, the only call that returns ``_links.results``."""
        return self._order("get", "GET", self._url("orders/v2", order_id))

    def cancel_order(self, order_id: str) -> PlanetOrder:
        """``PUT /orders/v2/{order_id}``; Planet answers 409 unless the order is still queued."""
        return self._order("cancel", "PUT", self._url("orders/v2", order_id))

    def cancel_orders(self, order_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """``POST /bulk/orders/v2/cancel``: the listed orders, or with None every queued order.

        An empty list is refused rather than sent: Planet's SDK turns it into ``{}``, which cancels
        everything, and that is never what an empty selection means.
        """
        if order_ids is not None and len(order_ids) == 0:
            raise ValueError("order_ids is empty; pass None to cancel every queued order")
        body = {} if order_ids is None else {"order_ids": list(order_ids)}
        return self._object("bulk_cancel", "POST", self._url("bulk/orders/v2/cancel"), json_body=body)

    def get_bundles_spec(self, timeout: tuple[float, float] | None = None) -> dict[str, Any]:
        """``GET /bundles/spec``: Planet's product bundles spec (``{"bundles": {name: {"assets": ...}}}``).

        Returned as the JSON object Planet sent; reading it is ``services.bundles``' job. ``timeout``
        overrides the client's own, for callers that must answer quickly.
        """
        return self._object("spec", "GET", self._url("bundles/spec"), timeout=timeout)

    def aggregated_order_stats(self) -> dict[str, Any]:
        """``GET /stats/orders/v2``: queued and running counts for the organisation and the user."""
        return self._object("stats", "GET", self._url("stats/orders/v2"))

    def list_orders(self, **filters: Any) -> Iterator[PlanetOrder]:
        """``GET /orders/v2``, following ``_links.next`` until it is absent or repeats.

        Filters are ``LIST_FILTERS``; a list value repeats the parameter (``state=["queued", "running"]``),
        booleans go as ``true``/``false``. ``source_type`` defaults to ``"all"`` (Planet's own default is
        scenes only, which would hide basemaps orders from a reconciliation by name). Lazy: errors are
        raised while iterating.
        """
        unknown = sorted(set(filters) - LIST_FILTERS)
        if unknown:
            # A misspelt filter would be ignored by Planet and silently widen the listing.
            raise TypeError(f"unknown list_orders filter(s): {', '.join(unknown)}")
        params: dict[str, Any] | None = {"source_type": "all", **_query_params(filters)}
        return self._pages(self._url("orders/v2"), params)

    # --- plumbing ----------------------------------------------------------------------------------------

    def _pages(self, url: str, params: dict[str, Any] | None) -> Iterator[PlanetOrder]:
        requested: set[str] = set()
        while True:
            response = self._send("list", "GET", url, params=params)
            requested.add(response.url or url)
            page = self._decode(response)
            if not isinstance(page, dict):
                raise self._unreadable(response, "a page that is not a JSON object")
            for raw in page.get("orders") or []:
                yield self._validate_order(response, raw)
            links = page.get("_links")
            next_url = links.get("next") if isinstance(links, dict) else None
            if not isinstance(next_url, str) or not next_url or next_url in requested:
                return
            parts = urlsplit(next_url)
            if (parts.scheme, parts.netloc) != self._origin:
                # The next request carries our API key; only send it where base_url points.
                raise UpstreamError(
                    f"Planet sent a next-page link to another host ({parts.netloc}); not followed"
                )
            url, params = next_url, None  # the next link is complete, page_marker included

    def _order(self, endpoint: str, method: str, url: str, json_body: Any = None) -> PlanetOrder:
        response = self._send(endpoint, method, url, json_body=json_body)
        return self._validate_order(response, self._decode(response))

    def _object(
        self,
        endpoint: str,
        method: str,
        url: str,
        json_body: Any = None,
        timeout: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        response = self._send(endpoint, method, url, json_body=json_body, timeout=timeout)
        data = self._decode(response)
        if not isinstance(data, dict):
            raise self._unreadable(response, "a body that is not a JSON object")
        return data

    def _url(self, path: str, order_id: str | None = None) -> str:
        if order_id is None:
            return f"{self.base_url}/{path}"
        if not order_id:
            raise ValueError("order_id must not be empty")
        # Quoted whole, so an id can never add path segments ("../stats").
        return f"{self.base_url}/{path}/{quote(order_id, safe='')}"

    def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        self._pace(endpoint, method, url)
        headers = {
            "Authorization": self._authorization.reveal(),
            "User-Agent": self._user_agent,
            "Accept": "application/json",
        }
        try:
            response = self._session.request(
                method, url, params=params, json=json_body, headers=headers, timeout=timeout or self._timeout
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise self._transport_error(method, url, exc) from exc
        if not 200 <= response.status_code < 300:
            error = self._status_error(method, url, response)
            if isinstance(error, UpstreamRateLimited):
                self._hold(endpoint, error.retry_after)
            raise error
        return response

    def _pace(self, endpoint: str, method: str, url: str) -> None:
        """Wait for ``endpoint``'s slot of the deployment's pace, or raise a deferral without sending."""
        if self._pacer is None:
            return
        from order_core.services.pacing import MAX_LATE_RETAKES

        for _ in range(1 + MAX_LATE_RETAKES):
            try:
                reservation = self._pacer.reserve(endpoint, self._pace_max_wait)
            except PacingUnavailable as exc:
                metrics.add_metric(name="PacingUnavailable", unit="Count", value=1)
                logger.warning("Planet request sent unpaced", extra={"endpoint": endpoint, "error": str(exc)})
                return
            if not reservation.taken:
                break
            if reservation.wait_seconds > 0:
                self._sleep(reservation.wait_seconds)
            if self._pacer.on_time(reservation):
                return
            # Woke after the slot was over (a busy process): sent now, it would crowd the next slots.
        metrics.add_metric(name="UpstreamDeferred", unit="Count", value=1)
        wait = reservation.wait_seconds if not reservation.taken else self._pacer.interval(endpoint)
        raise UpstreamRateLimited(
            f"Planet {method} {urlsplit(url).path} deferred, not sent: the deployment's {endpoint} "
            f"requests are paced to Planet's limit and the next free slot is {wait:.1f} s away",
            retry_after=wait,
            deferred=True,
        )

    def _hold(self, endpoint: str, retry_after: float | None) -> None:
        """Planet answered 429: the whole deployment waits out its Retry-After, not only this caller."""
        if self._pacer is None:
            return
        try:
            self._pacer.rate_limited(endpoint, retry_after)
        except PacingUnavailable as exc:
            logger.warning("429 not shared with the fleet", extra={"endpoint": endpoint, "error": str(exc)})

    def _transport_error(self, method: str, url: str, exc: requests.RequestException) -> UpstreamUnavailable:
        never_sent = _never_sent(exc)
        what = "could not connect" if never_sent else "failed before a complete answer"
        detail = _truncate(f"{type(exc).__name__}: {exc}")
        return UpstreamUnavailable(
            f"Planet {method} {urlsplit(url).path} {what}: {detail}",
            ambiguous=method == "POST" and not never_sent,
        )

    def _status_error(self, method: str, url: str, response: requests.Response) -> UpstreamError:
        status = response.status_code
        body = response.text
        message = f"Planet {method} {urlsplit(url).path} returned HTTP {status}"
        detail = _planet_message(body)
        if detail:
            message = f"{message}: {detail}"
        if status in (401, 403):
            metrics.add_metric(name="UpstreamAuthErrors", unit="Count", value=1)
            return UpstreamAuthError(message, status=status, body=body)
        if status == 404:
            return UpstreamNotFound(message, status=status, body=body)
        if status == 409:
            return UpstreamConflict(message, status=status, body=body)
        if status == 429:
            metrics.add_metric(name="UpstreamThrottled", unit="Count", value=1)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return UpstreamRateLimited(message, retry_after=retry_after, body=body)
        if 400 <= status < 500:
            return UpstreamClientError(message, status=status, body=body)
        # 5xx (and any stray 1xx/3xx): Planet may have acted on a POST before failing to answer.
        metrics.add_metric(name="UpstreamServerErrors", unit="Count", value=1)
        return UpstreamUnavailable(message, status=status, body=body, ambiguous=method == "POST")

    def _decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self._unreadable(response, "a body that is not JSON") from exc

    def _validate_order(self, response: requests.Response, data: Any) -> PlanetOrder:
        try:
            return PlanetOrder.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise self._unreadable(response, f"an order we cannot read ({problems})") from exc

    @staticmethod
    def _unreadable(response: requests.Response, what: str) -> UpstreamUnavailable:
        # A 2xx we cannot read: for a POST the order (or cancellation) probably happened, so reconcile.
        method = response.request.method or "?"
        path = urlsplit(response.request.url or "").path
        return UpstreamUnavailable(
            _truncate(f"Planet {method} {path} returned HTTP {response.status_code} with {what}"),
            status=response.status_code,
            body=response.text,
            ambiguous=method == "POST",
        )


def key_fingerprint(api_key: str) -> str:
    """A short, stable name for an API key (the first 12 hex digits of its SHA-256), never the key: the
    scope of the key's request slots, which every function using that key shares."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never opened, so Planet cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = exc.args[0]
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        # NewConnectionError (refused, DNS failure) is a ConnectTimeoutError subclass in urllib3.
        return isinstance(reason, ConnectTimeoutError)
    return False


def _planet_message(body: str) -> str | None:
    """Planet's ``message``, or the messages of its 400 ``field``/``general`` shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("message"), str):
        return _truncate(data["message"])
    parts: list[str] = []
    general = data.get("general")
    if isinstance(general, list):
        parts.extend(str(g["message"]) for g in general if isinstance(g, dict) and "message" in g)
    fields = data.get("field")
    if isinstance(fields, dict):
        for name, entries in fields.items():
            if isinstance(entries, list):
                parts.extend(
                    f"{name}: {e['message']}" for e in entries if isinstance(e, dict) and "message" in e
                )
    return _truncate("; ".join(parts)) if parts else None


def _query_params(filters: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            params[key] = [_query_value(v) for v in value]
        else:
            params[key] = _query_value(value)
    return params


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _truncate(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
