"""One place for the logger, metrics and tracer every function uses.

Every log line about an order carries ``order_id`` and ``tenant`` (``bind_order``).
"""

from __future__ import annotations

import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

# stderr reaches CloudWatch like stdout does, and keeps the local demo's report on stdout readable.
logger = Logger(stream=sys.stderr)
metrics = Metrics()
tracer = Tracer()


def bind_order(order_id: str, tenant: str) -> None:
    """Attach the order's identity to every following log line of this invocation."""
    logger.append_keys(order_id=order_id, tenant=tenant)
