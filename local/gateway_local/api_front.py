"""An HTTP server that plays API Gateway (REST API, Lambda proxy integration) in front of the functions.

Each request becomes the v1 proxy event API Gateway would send to the function whose ``Events`` of
``Type: Api`` match it, and the function's proxy response becomes the HTTP response. What API Gateway does
on its own is reproduced because clients notice it: 403 ``Missing Authentication Token`` for an unknown
route, 502 ``Internal server error`` when the function fails, one trailing slash ignored when matching,
request bodies base64-encoded when their Content-Type matches the API's ``BinaryMediaTypes``, 413 for a
payload over API Gateway's 10 MB. A client that stops sending (headers or body) is dropped after
``read_timeout`` seconds, with a 408 if its headers had arrived, so it holds no thread for long.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from order_core.log_masking import mask_secrets
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .api_docs import ApiDocs
from .esm import Invoke
from .template import ACCOUNT_ID

log = logging.getLogger(__name__)

_MISSING_TOKEN = {"message": "Missing Authentication Token"}
_INTERNAL_ERROR = {"message": "Internal server error"}
#: API Gateway's limit on a request payload; larger bodies never reach a function.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
#: Seconds the front waits for a client's next bytes before it drops the connection.
READ_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RouteAuthorizer:
    """A Lambda REQUEST authorizer guarding a route, with the API's own 401/403 answers."""

    function_name: str
    identity_header: str
    ttl_seconds: int
    unauthorized_body: dict[str, Any]
    denied_body: dict[str, Any]


@dataclass(frozen=True)
class ApiRoute:
    """One ``Events`` entry of ``Type: Api``, with what the local front needs from its API resource."""

    function_name: str
    method: str  # upper case; "ANY" matches every method
    path: str  # template path, e.g. /compute/ops/orders/v2/{order_id}
    api_id: str
    stage: str
    binary_media_types: tuple[str, ...] = ()
    authorizer: RouteAuthorizer | None = None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this route serves ``method`` on ``path``, else None."""
        if self.method not in {"ANY", method}:
            return None
        found = self._pattern.fullmatch(path)
        return None if found is None else found.groupdict()

    @property
    def literal_segments(self) -> int:
        """How specific the route is: API Gateway prefers literal path parts over parameters."""
        return sum(1 for part in self.path.split("/") if part and not part.startswith("{"))

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        parts = []
        for part in self.path.rstrip("/").split("/"):
            if part.startswith("{") and part.endswith("+}"):
                parts.append(f"(?P<{part[1:-2]}>.+)")
            elif part.startswith("{") and part.endswith("}"):
                parts.append(f"(?P<{part[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(part))
        return re.compile("/".join(parts) + "/?")


class ApiFront:
    """Threaded werkzeug server routing requests to functions through :class:`ApiRoute` entries."""

    def __init__(
        self,
        routes: Iterable[ApiRoute],
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 0,
        docs: ApiDocs | None = None,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ):
        # Most specific first, so /orders/v2/stats-like literals win over /orders/v2/{order_id}.
        self._routes = sorted(routes, key=lambda route: -route.literal_segments)
        self._invoke = invoke
        # The OpenAPI document and its Swagger UI: local only, API Gateway has no such routes.
        self._docs = docs
        # API Gateway caches an authorizer's answer per identity value for ReauthorizeEvery seconds.
        self._auth_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._auth_lock = threading.Lock()
        # socketserver applies a handler's `timeout` to every read and write of its connection.
        handler = type("TimedRequestHandler", (_QuietRequestHandler,), {"timeout": read_timeout})
        self._server: BaseWSGIServer = make_server(
            host, port, self._wsgi, threaded=True, request_handler=handler
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="api-front", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request.max_content_length = MAX_PAYLOAD_BYTES
        started = time.monotonic()
        try:
            response = self._handle(request)
        except ClientDisconnected:  # the body stopped (read timeout) or the client went away
            response = _json_response(408, {"message": "Request Timeout"}, str(uuid.uuid4()))
            response.headers["Connection"] = "close"
        except RequestEntityTooLarge:
            response = _json_response(413, {"message": "Request Too Long"}, str(uuid.uuid4()))
            response.headers["Connection"] = "close"
        log.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            mask_secrets(request.full_path.rstrip("?")),  # a download link's token is a credential
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        documentation = self._docs.handle(request) if self._docs is not None else None
        if documentation is not None:
            return documentation
        path = request.path
        for route in self._routes:
            parameters = route.match(request.method, path)
            if parameters is None:
                continue
            event = _proxy_event(request, route, path, parameters, request_id)
            if route.authorizer is not None:
                refused = self._authorize(route, route.authorizer, event, request_id)
                if refused is not None:
                    return refused
            result = self._invoke(route.function_name, event)
            if result.errored:
                return _json_response(502, _INTERNAL_ERROR, request_id)
            try:
                return _http_response(json.loads(result.payload), request_id)
            except (ValueError, TypeError, KeyError, AttributeError):
                log.error("%s: invalid proxy response %.500s", route.function_name, result.payload)
                return _json_response(502, _INTERNAL_ERROR, request_id)
        return _json_response(403, _MISSING_TOKEN, request_id)

    def _authorize(
        self, route: ApiRoute, authorizer: RouteAuthorizer, event: dict[str, Any], request_id: str
    ) -> Response | None:
        """Run the authorizer as API Gateway does; put its context in the event or answer 401/403."""
        headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
        identity = headers.get(authorizer.identity_header.lower())
        if not identity:
            return _json_response(401, authorizer.unauthorized_body, request_id)
        cache_key = (authorizer.function_name, identity)
        with self._auth_lock:
            cached = self._auth_cache.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            answer = cached[1]
        else:
            context = event["requestContext"]
            method_arn = (
                f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{route.api_id}/{route.stage}/"
                f"{context['httpMethod']}{context['resourcePath']}"
            )
            auth_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                **{
                    k: event[k]
                    for k in (
                        "resource",
                        "path",
                        "httpMethod",
                        "headers",
                        "multiValueHeaders",
                        "queryStringParameters",
                        "multiValueQueryStringParameters",
                        "pathParameters",
                        "stageVariables",
                        "requestContext",
                    )
                },
            }
            result = self._invoke(authorizer.function_name, auth_event)
            if result.errored:
                message = json.loads(result.payload).get("errorMessage", "")
                if message == "Unauthorized":
                    return _json_response(401, authorizer.unauthorized_body, request_id)
                return _json_response(500, {"message": None}, request_id)  # what API Gateway sends
            answer = json.loads(result.payload)
            with self._auth_lock:
                self._auth_cache[cache_key] = (time.monotonic() + authorizer.ttl_seconds, answer)
        statements = answer.get("policyDocument", {}).get("Statement", [])
        if not any(statement.get("Effect") == "Allow" for statement in statements):
            return _json_response(403, authorizer.denied_body, request_id)
        event["requestContext"]["authorizer"] = {
            "principalId": answer.get("principalId"),
            **(answer.get("context") or {}),
        }
        return None


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """ApiFront logs each request itself, with the time the function took."""


def _proxy_event(
    request: Request, route: ApiRoute, path: str, parameters: dict[str, str], request_id: str
) -> dict[str, Any]:
    headers = Headers(request.headers)
    # API Gateway adds these; a handler building absolute links reads the scheme from X-Forwarded-Proto.
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    headers.setdefault("X-Forwarded-Port", str(request.server[1] if request.server else ""))
    headers.setdefault("X-Forwarded-For", request.remote_addr or "127.0.0.1")
    body, is_base64 = _event_body(request, route.binary_media_types)
    now = datetime.now(UTC)
    query = request.args
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": request.method,
        "headers": dict(headers.items()) or None,
        "multiValueHeaders": {name: headers.getlist(name) for name in headers.keys()} or None,  # noqa: SIM118
        # API Gateway sends null, not {}, when there is no query string or no path parameter.
        "queryStringParameters": {key: query.getlist(key)[-1] for key in query} or None,
        "multiValueQueryStringParameters": {key: query.getlist(key) for key in query} or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": route.api_id,
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.user_agent.string or None,
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
            },
            "path": request.path,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "local",
            "resourcePath": route.path,
            "stage": route.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _event_body(request: Request, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    data = request.get_data(cache=False)
    if not data:
        return None, False
    content_type = request.mimetype or ""
    if any(fnmatch.fnmatch(content_type, pattern) for pattern in binary_media_types):
        return base64.b64encode(data).decode("ascii"), True
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def _http_response(proxy: dict[str, Any], request_id: str) -> Response:
    headers = Headers()
    for name, values in (proxy.get("multiValueHeaders") or {}).items():
        for value in values:
            headers.add(name, str(value))
    for name, value in (proxy.get("headers") or {}).items():
        headers.set(name, str(value))
    body = proxy.get("body") or ""
    payload = base64.b64decode(body) if proxy.get("isBase64Encoded") else str(body).encode("utf-8")
    headers.setdefault("Content-Type", "application/json")  # API Gateway's default for proxy responses
    response = Response(payload, status=int(proxy["statusCode"]), headers=headers)
    response.headers["x-amzn-RequestId"] = request_id
    return response


def _json_response(status: int, body: dict[str, Any], request_id: str) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    response.headers["x-amzn-RequestId"] = request_id
    if status == 403:
        response.headers["x-amzn-ErrorType"] = "MissingAuthenticationTokenException"
    return response
