"""One place for the logger, metrics and tracer every function uses.

Every log line about an order carries ``order_id`` and ``tenant`` (``bind_order``). No log line carries a
secret: every line is masked as a whole once formatted (``order_core.log_masking``), so a token inside a
URL, an exception's text or a logged event is caught wherever it appears.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.tracing.tracer import Tracer  # the module is cheap; Tracer() is not

from order_core.log_masking import mask_secrets

Handler = TypeVar("Handler", bound=Callable[..., Any])


class MaskingPowertoolsFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, masked once formatted (message, keys, exception and all)."""

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

    # X-Ray never records what a function returns: our responses carry download tokens and presigned URLs.
    # An exception's text is recorded by the X-Ray SDK itself whatever Powertools is told, so its arguments
    # are masked first (the same rules as the logs). The template sets POWERTOOLS_TRACER_CAPTURE_RESPONSE=
    # false too, for any Tracer built elsewhere.
    def capture_lambda_handler(self, handler: Handler) -> Handler:
        if not self.enabled:
            return handler
        traced = self.tracer.capture_lambda_handler(_masking_exceptions(handler), capture_response=False)
        return cast(Handler, traced)

    def capture_method(self, method: Handler) -> Handler:
        if not self.enabled:
            return method
        traced = self.tracer.capture_method(capture_response=False)(_masking_exceptions(method))
        return cast(Handler, traced)

    def __getattr__(self, name: str) -> Any:
        # put_annotation, put_metadata, provider...: whatever else Tracer offers, from the real one. Private
        # and dunder names are not forwarded (copy and pickle probe them before __init__ has run).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.tracer, name)


def _masking_exceptions(function: Handler) -> Handler:
    """``function``, its exceptions' string arguments masked before they leave it (and reach a trace)."""

    @functools.wraps(function)
    def masked(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            exc.args = tuple(mask_secrets(arg) if isinstance(arg, str) else arg for arg in exc.args)
            raise

    return cast(Handler, masked)


tracer = LazyTracer()


def bind_order(order_id: str, tenant: str) -> None:
    """Attach the order's identity to every following log line of this invocation."""
    logger.append_keys(order_id=order_id, tenant=tenant)
