"""``Idempotency-Key`` on create (IETF draft semantics) on top of Powertools idempotency.

Same key and same body → the stored response (same order id); same key, different body → 422; the first
request still in flight → 409. Keys are scoped by tenant and kept 24 hours. Powertools is imported only
when a request carries the header, so it stays off the API's cold-start path.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from order_core.errors import IdempotencyKeyInFlight as IdempotencyKeyInFlight
from order_core.errors import IdempotencyKeyReused as IdempotencyKeyReused
from order_core.errors import InvalidIdempotencyKey as InvalidIdempotencyKey

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


def valid_idempotency_key(key: str) -> str:
    """The rule for idempotency keys, from the ``Idempotency-Key`` header or an SQS ``idempotency_key``:
    1 to 255 characters, not blank, no control characters or lone surrogates."""
    if (
        not key.strip()
        or len(key) > MAX_KEY_LENGTH
        or any(unicodedata.category(c) in ("Cc", "Cs") for c in key)
    ):
        raise ValueError(
            f"idempotency keys are 1 to {MAX_KEY_LENGTH} characters, not blank, without control characters"
        )
    return key


@lru_cache(maxsize=1)
def _idempotent(table: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from order_core.adapters.aws import client

    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))
    config = IdempotencyConfig(
        event_key_jmespath="[tenant, key]",
        payload_validation_jmespath="body_sha256",
        expires_after_seconds=TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        return idempotent_function(
            data_keyword_argument="request", persistence_store=persistence, config=config
        )(function)

    return decorate


def run_once(
    table: str, tenant: str, key: str, body: bytes | str, create: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``create`` once per (tenant, key); replays get the first result back."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    try:
        valid_idempotency_key(key)
    except ValueError as exc:
        raise InvalidIdempotencyKey(f"Idempotency-Key: {exc}") from None
    raw = body.encode() if isinstance(body, str) else body

    @_idempotent(table)
    def _create_once(request: dict[str, Any]) -> dict[str, Any]:
        return create()

    try:
        return dict(
            _create_once(
                request={"tenant": tenant, "key": key, "body_sha256": hashlib.sha256(raw).hexdigest()}
            )
        )
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyKeyInFlight(
            "a request with this Idempotency-Key is still being processed; retry shortly"
        ) from None
