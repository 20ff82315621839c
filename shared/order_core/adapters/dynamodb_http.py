"""DynamoDB tables whose reads by key skip boto3: a GetItem is one SigV4-signed HTTP request.

Why: importing boto3 and building a DynamoDB resource from botocore's JSON service model is about 170 ms of
ApiFunction's cold start (its first ``GET /orders/v2/{id}``) and AuthorizerFunction's, more than everything
else on that path together (benchmarks/RESULTS.md, "Cold start"). A GetItem needs none of it: a JSON body,
a signature (``hashlib``/``hmac``) and ``http.client``, all in the standard library and all but free to load.

What stays as boto3 does it, so callers cannot tell the difference:

- credentials from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``),
  as Lambda gives them to a function; without them, botocore's own credential chain (profiles, SSO,
  container credentials), imported only then;
- the region (``AWS_DEFAULT_REGION``, else ``AWS_REGION``) and the endpoint (``AWS_ENDPOINT_URL_DYNAMODB``,
  else ``AWS_ENDPOINT_URL``, as the local stack sets it, else the region's public endpoint), CA bundle
  (``AWS_CA_BUNDLE``) and timeouts (60 s);
- botocore's standard retry mode for DynamoDB: 4 attempts (``AWS_MAX_ATTEMPTS``), on throttling, transient
  errors, 5xx, broken connections and a body that does not match its ``x-amz-crc32``, with jittered
  exponential backoff (1 s base for throttling, 25 ms otherwise, 20 s cap);
- items as boto3's resource layer gives them (numbers ``Decimal``, sets ``set``); binary values are ``bytes``
  (boto3 wraps them in ``Binary``, whose ``bytes()`` is the same);
- errors raised as botocore's: ``ClientError`` with the service's code and message,
  ``EndpointConnectionError`` or ``ReadTimeoutError`` when no answer came (botocore is imported then, on
  a failure only).

Everything else on the table (writes with their conditions, queries, scans, ``meta``) is boto3's own
``Table``, built on first use: ``table.put_item(...)`` is unchanged for every caller. So is ``get_item`` when
an HTTP(S) proxy is configured: botocore's proxy handling is not repeated here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "DynamoDB_20120810"
CONTENT_TYPE = "application/x-amz-json-1.0"
TIMEOUT_SECONDS = 60.0  # botocore's connect and read timeouts
MAX_ATTEMPTS = 4  # botocore's standard retry mode for DynamoDB
MAX_BACKOFF_SECONDS = 20.0
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


#: Sends one request: (url, headers, body, timeout) -> response; raises OSError when no answer came.
Transport = Callable[[str, dict[str, str], bytes, float], HttpResponse]


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


# --- the wire format: DynamoDB's typed JSON, as boto3's TypeSerializer/TypeDeserializer map it -----------


def serialize(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (what boto3's resource layer sends)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        import base64

        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, set | frozenset) and value:
        items = list(value)
        if all(isinstance(v, str) for v in items):
            return {"SS": items}
        if all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in items):
            return {"NS": [str(v) for v in items]}
        if all(isinstance(v, bytes | bytearray) for v in items):
            return {"BS": [serialize(v)["B"] for v in items]}
    # boto3 refuses floats (inexact), empty sets and mixed sets with a TypeError too.
    raise TypeError(f"Unsupported type {type(value).__name__!r} for value {value!r}")


def deserialize(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as Python (numbers as Decimal, sets as set, binary as bytes)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: deserialize(v) for k, v in value.items()}
    if kind == "L":
        return [deserialize(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    import base64

    if kind == "B":
        return base64.b64decode(value)
    if kind == "BS":
        return {base64.b64decode(v) for v in value}
    raise TypeError(f"Unknown DynamoDB type {kind!r}")


# --- the signature: AWS Signature Version 4, as botocore's SigV4Auth computes it for a JSON POST ------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    credentials: Credentials,
    region: str,
    service: str = "dynamodb",
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus X-Amz-Date, the session token if any, and Authorization for a POST of ``body``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urlsplit(url)
    signed = {**headers, "Host": parts.netloc, "X-Amz-Date": amz_date}
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical_headers = sorted((k.lower(), " ".join(v.split())) for k, v in signed.items())
    header_names = ";".join(name for name, _ in canonical_headers)
    canonical_request = "\n".join(
        [
            "POST",
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{value}\n" for name, value in canonical_headers),
            header_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode("utf-8"), day)
    for step in (region, service, "aws4_request"):
        key = _hmac(key, step)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={header_names}, Signature={signature}"
    )
    return signed


# --- where and as whom: the SDK's environment ---------------------------------------------------------------


def region() -> str:
    name = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if not name:
        raise _no_region()
    return name


def endpoint_url(region_name: str) -> str:
    configured = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    if configured and os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        return configured
    suffix = "amazonaws.com.cn" if region_name.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region_name}.{suffix}"


def credentials() -> Credentials:
    """The function's credentials: Lambda's environment, else botocore's provider chain (imported then)."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
        return Credentials(access_key, secret_key, token or None)
    import botocore.session
    from botocore.exceptions import NoCredentialsError

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise NoCredentialsError()
    frozen = found.get_frozen_credentials()  # refreshed by botocore when they expire
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def max_attempts() -> int:
    configured = os.environ.get("AWS_MAX_ATTEMPTS", "")
    return max(1, int(configured)) if configured.isdigit() else MAX_ATTEMPTS


def _no_region() -> Exception:
    from botocore.exceptions import NoRegionError

    return NoRegionError()


# --- the transport ------------------------------------------------------------------------------------------

_connections = threading.local()


def _ssl_context() -> Any:
    import ssl

    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or _ca_bundle())


def _ca_bundle() -> str | None:
    """The CA certificates botocore verifies with: certifi's if installed, else its own; not imported."""
    from importlib.util import find_spec

    for package in ("certifi", "botocore"):
        spec = find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            bundle = os.path.join(location, "cacert.pem")
            if os.path.exists(bundle):
                return bundle
    return None


def http_client_transport(url: str, headers: dict[str, str], body: bytes, timeout: float) -> HttpResponse:
    """One POST over a kept-alive ``http.client`` connection per thread and endpoint."""
    import http.client

    parts = urlsplit(url)
    pool: dict[str, Any] = _connections.__dict__.setdefault("pool", {})
    key = f"{parts.scheme}://{parts.netloc}"
    connection = pool.get(key)
    if connection is None:
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=_ssl_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        pool[key] = connection
    try:
        connection.request("POST", parts.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except BaseException as exc:
        connection.close()
        pool.pop(key, None)
        if isinstance(exc, http.client.HTTPException):  # a broken answer (IncompleteRead, BadStatusLine...)
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        raise
    if response.will_close:
        connection.close()
        pool.pop(key, None)
    return HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


#: What sends the requests: http.client. Tests that run moto in-process (``mock_aws``, which intercepts
#: botocore and ``requests`` but not ``http.client``) put a ``requests``-based one here (tests/conftest.py).
transport: Transport = http_client_transport


# --- the table ----------------------------------------------------------------------------------------------


class DynamoDBTable:
    """One table: ``get_item`` over signed HTTP, everything else boto3's ``Table`` (built on first use)."""

    def __init__(self, name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self._sleep = sleep
        self._boto3_table: Any = None

    def get_item(self, *, Key: Mapping[str, Any], ConsistentRead: bool = False) -> dict[str, Any]:
        """As boto3's ``Table.get_item``: ``{"Item": {...}}``, without ``Item`` when there is none."""
        if _behind_a_proxy():  # botocore's proxy rules (NO_PROXY, proxy auth, TLS to the proxy) are its own
            return dict(self.boto3_table.get_item(Key=Key, ConsistentRead=ConsistentRead))
        body: dict[str, Any] = {"TableName": self.name, "Key": {k: serialize(v) for k, v in Key.items()}}
        if ConsistentRead:
            body["ConsistentRead"] = True
        answer = self._traced("GetItem", body)
        if "Item" in answer:
            answer["Item"] = {k: deserialize(v) for k, v in answer["Item"].items()}
        return answer

    def _traced(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The call, in an X-Ray subsegment like those of X-Ray's botocore patch, when tracing is on."""
        from order_core.observability import tracer  # loaded by every handler already

        if not tracer.enabled:
            return self._call(operation, payload)
        with tracer.provider.in_subsegment("DynamoDB", namespace="aws") as subsegment:
            subsegment.set_aws({"operation": operation, "table_name": self.name, "region": region()})
            return self._call(operation, payload)

    def _call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        region_name = region()
        url = endpoint_url(region_name)
        attempts = max_attempts()
        for attempt in range(1, attempts + 1):
            headers = sign(
                url,
                {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{API_VERSION}.{operation}"},
                body,
                credentials=credentials(),
                region=region_name,
            )
            try:
                response = transport(url, headers, body, TIMEOUT_SECONDS)
            except OSError as exc:
                if attempt == attempts:
                    raise _no_answer(exc, url) from exc
                self._sleep(_backoff(attempt, throttled=False))
                continue
            answer, code, message = _parse(response)
            intact = _checksum_ok(response)
            if response.status == 200 and intact:
                return answer
            throttled = code in THROTTLING_CODES or response.status == 429
            retryable = (
                not intact or throttled or code in TRANSIENT_CODES or response.status in TRANSIENT_STATUSES
            )
            if not retryable or attempt == attempts:
                raise _client_error(operation, response, code, message, attempt)
            self._sleep(_backoff(attempt, throttled=throttled, response=response))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # Everything but get_item is boto3's own Table: same conditions, same errors, same retries.
    @property
    def boto3_table(self) -> Any:
        if self._boto3_table is None:
            from order_core.adapters.aws import resource

            self._boto3_table = resource("dynamodb").Table(self.name)
        return self._boto3_table

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.boto3_table, name)


def _behind_a_proxy() -> bool:
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"))


def _parse(response: HttpResponse) -> tuple[dict[str, Any], str, str]:
    """The JSON answer, and the error code and message when it is an error (as botocore parses them)."""
    try:
        answer = json.loads(response.body or b"{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.status == 200:
        return answer, "", ""
    code = str(answer.get("__type") or response.headers.get("x-amzn-errortype") or response.status)
    code = code.rsplit("#", 1)[-1].split(":", 1)[0]
    message = str(answer.get("message") or answer.get("Message") or "")
    return answer, code, message


def _checksum_ok(response: HttpResponse) -> bool:
    expected = response.headers.get("x-amz-crc32")
    return expected is None or not expected.isdigit() or zlib.crc32(response.body) == int(expected)


def _backoff(attempt: int, *, throttled: bool, response: HttpResponse | None = None) -> float:
    """botocore's standard mode: rand(0, 1) * min(base * 2 ** (attempt - 1), 20 s), or x-amz-retry-after."""
    base = 1.0 if throttled else 0.025
    delay = random.random() * min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    retry_after = (response.headers.get("x-amz-retry-after", "") if response else "").strip()
    if retry_after.isdigit():
        return max(delay, min(int(retry_after) / 1000, delay + 5))
    return delay


def _client_error(
    operation: str, response: HttpResponse, code: str, message: str, attempts: int
) -> Exception:
    from botocore.exceptions import ClientError

    if response.status == 200:  # only a body that never matched its checksum gets here
        code, message = "CRC32Mismatch", "the response did not match its x-amz-crc32 checksum"
    error_response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "RequestId": response.headers.get("x-amzn-requestid", ""),
            "HTTPStatusCode": response.status,
            "HTTPHeaders": dict(response.headers),
            "RetryAttempts": attempts - 1,
        },
    }
    return ClientError(error_response, operation)


def _no_answer(exc: OSError, url: str) -> Exception:
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, TimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=exc)
    return EndpointConnectionError(endpoint_url=url, error=exc)
