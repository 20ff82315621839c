"""Fault injection and the request log, as a WSGI middleware in front of the Flask app.

It sits outside Flask because a connection reset must not turn into Flask's 500 page: the middleware
raises ConnectionAbortedError, which werkzeug's server treats as a dropped connection (nothing is
written), and marks the environ so the server's request handler closes the socket abortively (see
server.py).
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Response

# Every API operation; route endpoints carry these names (app.py).
OPS = ("create", "get", "list", "cancel", "bulk_cancel", "stats", "download", "storage")
FaultOp = Literal[
    "create", "get", "list", "cancel", "bulk_cancel", "stats", "download", "storage", "webhook", "any"
]
# Requests no route matches (a typo'd path, a wrong method) are still logged and can still be faulted.
UNROUTED_OP = "other"
RESET_ENVIRON_KEY = "planet_fake.reset_connection"
REQUEST_LOG_SIZE = 10_000

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultRule(BaseModel):
    """One rule of POST /_fake/faults. It fires on the next `times` matching requests, then disappears."""

    model_config = ConfigDict(extra="forbid")

    op: FaultOp
    #: "drop" and "delay" apply to the fake's own webhook calls (op "webhook", webhooks.py) only.
    kind: Literal["status", "reset", "truncate", "corrupt", "drop", "delay"]
    #: How long a "delay" rule holds a webhook call back.
    delay_seconds: float = Field(default=5.0, ge=0, le=3600)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1)
    path_contains: str | None = None
    #: A substring of the URL's query string, percent-decoded (e.g. a list's `name__contains` value).
    query_contains: str | None = None
    #: A substring of the request body (decoded as UTF-8), e.g. a create's order name.
    body_contains: str | None = None
    #: The Planet order a request is about: its id in the path (get, cancel, storage) or the order named
    #: by a download link's token (download), so one order's downloads can be faulted among many.
    order_id: str | None = None
    #: A substring of the file a request fetches: the storage path, or the file a download link's token
    #: names (download), e.g. "manifest.json" or "_udm2.tif".
    file_contains: str | None = None
    message: str | None = None
    id: int = 0

    def matches(self, op: str, path: str, request: RequestFacts | None = None) -> bool:
        facts = request or RequestFacts()
        return (
            self.op in ("any", op)
            and (self.path_contains is None or self.path_contains in path)
            and (self.query_contains is None or self.query_contains in facts.query)
            and (self.body_contains is None or self.body_contains in facts.body)
            and (self.order_id is None or self.order_id in (facts.token_order_id, *path.split("/")))
            and (self.file_contains is None or self.file_contains in (facts.token_path or path))
        )


@dataclass(frozen=True)
class RequestFacts:
    """What matchers other than the op and path look at."""

    query: str = ""
    body: str = ""
    token_order_id: str | None = None
    token_path: str | None = None


class FaultBook:
    """The pending fault rules, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            stored = rule.model_copy(update={"id": next(self._ids)})
            self._rules.append(stored)
            return stored

    def needs_body(self) -> bool:
        with self._lock:
            return any(rule.body_contains is not None for rule in self._rules)

    def take(
        self, op: str, path: str, request: RequestFacts | None = None, *, exact: bool = False
    ) -> FaultRule | None:
        """The oldest rule matching this request, with one use consumed (``exact``: only rules naming
        ``op`` itself, not ``any``: the fake's own webhook calls never take a rule meant for requests)."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if exact and rule.op != op:
                    continue
                if rule.matches(op, path, request):
                    if rule.times > 1:
                        self._rules[index] = rule.model_copy(update={"times": rule.times - 1})
                    else:
                        del self._rules[index]
                    return rule
        return None

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


@dataclass
class RequestRecord:
    op: str
    method: str
    path: str
    status: int | None = None
    fault: str | None = None
    #: When the request reached the fake (epoch seconds): what its rate limits count.
    at: float = field(default_factory=time.time)


class RequestLog:
    """The last REQUEST_LOG_SIZE API requests (admin requests are not logged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def dump(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(record) for record in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def _status_fault_response(rule: FaultRule) -> Response:
    message = rule.message or f"Injected fault: {rule.status} {HTTPStatus(rule.status).phrase}"
    response = Response(json.dumps({"message": message}), status=rule.status, mimetype="application/json")
    if rule.retry_after is not None:
        response.headers["Retry-After"] = str(rule.retry_after)
    return response


def _content_length(headers: list[tuple[str, str]]) -> int:
    value = next((v for k, v in headers if k.lower() == "content-length"), "0")
    return int(value) if value.isdigit() else 0


def _truncated(body: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The first `limit` bytes only. The server then closes the connection (werkzeug always sends
    `Connection: close`), so the client sees a body shorter than its Content-Length."""
    sent = 0
    try:
        for chunk in body:
            if sent + len(chunk) >= limit:
                yield chunk[: limit - sent]
                return
            sent += len(chunk)
            yield chunk
    finally:
        if hasattr(body, "close"):
            body.close()


def _corrupted(body: Iterable[bytes], position: int) -> Iterator[bytes]:
    """The same bytes, with the byte at `position` inverted: same length, different digest."""
    offset = 0
    try:
        for chunk in body:
            if offset <= position < offset + len(chunk):
                index = position - offset
                chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
            offset += len(chunk)
            yield chunk
    finally:
        if hasattr(body, "close"):
            body.close()


def _token_claims(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """The order and file a download link's token names (read, not verified: matching is not authorising)."""
    if "token=" not in environ.get("QUERY_STRING", ""):
        return None, None
    token = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None, None
    subject, path = claims.get("sub"), claims.get("path")
    return (subject if isinstance(subject, str) else None), (path if isinstance(path, str) else None)


def _request_facts(environ: dict[str, Any], read_body: bool) -> RequestFacts:
    """The facts matchers use; the body, if read, is put back for the app to read again."""
    body = ""
    if read_body:
        length = (
            int(environ.get("CONTENT_LENGTH") or 0) if str(environ.get("CONTENT_LENGTH", "")).isdigit() else 0
        )
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        body = raw.decode("utf-8", errors="replace")
    order_id, file_path = _token_claims(environ)
    return RequestFacts(
        query=unquote_plus(environ.get("QUERY_STRING", "")),
        body=body,
        token_order_id=order_id,
        token_path=file_path,
    )


class FaultMiddleware:
    def __init__(self, app: WSGIApp, url_map: Map, faults: FaultBook, log: RequestLog) -> None:
        self._app = app
        self._url_map = url_map
        self._faults = faults
        self._log = log

    def _op(self, environ: dict[str, Any]) -> str | None:
        """The operation a request invokes; None for the admin API, which is never faulted."""
        if environ.get("PATH_INFO", "").startswith("/_fake/"):
            return None
        try:
            endpoint, _ = self._url_map.bind_to_environ(environ).match()
        except HTTPException:
            return UNROUTED_OP
        return endpoint if endpoint in OPS else UNROUTED_OP

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        op = self._op(environ)
        if op is None:
            return self._app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        record = RequestRecord(op=op, method=environ["REQUEST_METHOD"], path=path)
        self._log.add(record)
        sent_headers: list[tuple[str, str]] = []

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            record.status = int(status.split()[0])
            sent_headers[:] = headers
            return start_response(status, headers, exc_info)

        rule = self._faults.take(op, path, _request_facts(environ, self._faults.needs_body()))
        if rule is None:
            return self._app(environ, recording_start_response)
        record.fault = rule.kind
        if rule.kind == "status":
            return _status_fault_response(rule)(environ, recording_start_response)
        if rule.kind == "reset":
            environ[RESET_ENVIRON_KEY] = True
            raise ConnectionAbortedError("injected fault: connection reset")

        body = self._app(environ, recording_start_response)
        location = next((v for k, v in sent_headers if k.lower() == "location"), None)
        if op == "download" and location is not None:
            # A download answers with a redirect and no bytes: the fault hits the storage request it leads to.
            self._faults.add(
                FaultRule(
                    op="storage", kind=rule.kind, path_contains=unquote(urlsplit(location).path), times=1
                )
            )
            return body
        length = _content_length(sent_headers)
        if rule.kind == "truncate":
            return _truncated(body, length // 2)
        return _corrupted(body, length // 2)
