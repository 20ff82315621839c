"""One place for the logger, metrics and tracer every function uses.

Every log line about an order carries ``order_id`` and ``tenant`` (``bind_order``). No log line carries a
secret: every line is masked as a whole once formatted (``mask_secrets``), so a token inside a URL, an
exception's text or a logged event is caught wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.tracing.tracer import Tracer  # the module is cheap; Tracer() is not

Handler = TypeVar("Handler", bound=Callable[..., Any])

MASK = "<redacted>"
_SECRET_FIELDS = (
    "aws_secret_access_key",
    "secret_access_key",
    "sas_token",
    "credentials",
    "customer_secret_key",
    "client_secret",
    "private_key",
    "password",
    "authorization",
    "x-api-key",
)
_QUERY_VALUE = r"[^&\s\"'<>#\\]+"  # up to the next &, quote, space or backslash
# (pattern, replacement): what gives a secret away in text, and what is left of it.
_SECRET_PATTERNS = [
    # Query parameters of signed links: our and Planet's download tokens, S3 presigned URLs (SigV4 and
    # SigV2), Azure SAS signatures, OAuth tokens and API keys in a query string. Also SigV4 Authorization
    # headers (Credential=..., Signature=...).
    (
        re.compile(
            r"(?i)\b(token|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token|credential|"
            r"awsaccesskeyid|access_token|id_token|api_key|apikey|password)=" + _QUERY_VALUE
        ),
        rf"\1={MASK}",
    ),
    # Authorization header values: Planet's "api-key <key>", Basic and Bearer credentials.
    (re.compile(r"(?i)\b(api-key|basic|bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{MASK}"),
    # JWTs wherever they are (our download tokens, Planet's).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Planet API keys, the gateway's own keys (their public id, the first 10 characters, is kept) and AWS
    # access key ids.
    (re.compile(r"\bPLAK[A-Za-z0-9_-]+"), f"PLAK{MASK}"),
    (re.compile(r"\b(pgw_[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+"), rf"\1{MASK}"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), rf"\1{MASK}"),
    # Secret fields of a delivery block (or anything else) and headers, as JSON (escaped too, when the JSON
    # is itself inside a JSON string) or as a Python repr: the quoted value goes.
    (
        re.compile(
            r"(?i)(?P<key>\\?[\"']?(?:" + "|".join(_SECRET_FIELDS) + r")\\?[\"']?\s*[:=]\s*)"
            r"(?P<quote>\\?[\"'])(?:.*?)(?P=quote)"
        ),
        rf"\g<key>\g<quote>{MASK}\g<quote>",
    ),
]
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def hide_in_logs(secret: str) -> None:
    """Mask this exact value (a key read from Secrets Manager) in every log line from now on."""
    global _known_pattern
    if len(secret) < 8 or secret in _known_secrets:  # a short value would mask ordinary words
        return
    with _known_lock:
        _known_secrets.add(secret)
        alternatives = sorted(_known_secrets, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(value) for value in alternatives))


def mask_secrets(text: str) -> str:
    """``text`` with every secret it shows replaced by ``<redacted>``."""
    known = _known_pattern
    if known is not None:
        text = known.sub(MASK, text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class MaskingPowertoolsFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, masked once formatted (message, keys, exception and all)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class MaskingFormatter(logging.Formatter):
    """A plain-text formatter that masks secrets, for the local stack's own logs (moto, werkzeug, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


# stderr reaches CloudWatch like stdout does, and keeps the local demo's report on stdout readable.
logger = Logger(stream=sys.stderr, logger_formatter=MaskingPowertoolsFormatter())
# Its lines are complete and masked as written. Powertools keeps them from the root handlers that exist
# when it starts; a root handler added later (the local stack's) would print them again.
logger._logger.propagate = False
metrics = Metrics()


class LazyTracer:
    """Powertools' ``Tracer``, built the first time tracing can actually happen.

    ``Tracer()`` imports the X-Ray SDK even when tracing is disabled, which costs about 250 ms of every cold
    start on a 2-vCPU machine (benchmarks/RESULTS.md). Tracing is disabled locally and in tests
    (``POWERTOOLS_TRACE_DISABLED``, or not running in Lambda: Powertools' own rule, asked through
    ``Tracer._is_tracer_disabled``), so there the decorators hand the function back unchanged and the SDK is
    never imported. In Lambda with tracing on, the real ``Tracer`` is built when a handler is decorated, at
    import time as before, and does all the work.
    """

    def __init__(self) -> None:
        self._tracer: Tracer | None = None

    @property
    def enabled(self) -> bool:
        return not Tracer._is_tracer_disabled()

    @property
    def tracer(self) -> Tracer:
        """The real Tracer (built on first access, X-Ray SDK included)."""
        if self._tracer is None:
            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        return cast(Handler, self.tracer.capture_lambda_handler(handler)) if self.enabled else handler

    def capture_method(self, method: Handler) -> Handler:
        return self.tracer.capture_method(method) if self.enabled else method

    def __getattr__(self, name: str) -> Any:
        # put_annotation, put_metadata, provider...: whatever else Tracer offers, from the real one. Private
        # and dunder names are not forwarded (copy and pickle probe them before __init__ has run).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.tracer, name)


tracer = LazyTracer()


def bind_order(order_id: str, tenant: str) -> None:
    """Attach the order's identity to every following log line of this invocation."""
    logger.append_keys(order_id=order_id, tenant=tenant)
