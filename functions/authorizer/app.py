"""AuthorizerFunction: API Gateway REQUEST authorizer mapping an API key to its tenant (cached by the API)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.errors import Unauthorized
from order_core.observability import logger


def _policy(event: dict[str, Any], tenant: str) -> dict[str, Any]:
    # Allow every route of this API and stage: API Gateway caches the answer per key, not per route.
    arn = event["methodArn"].split("/", 2)
    resource = f"{arn[0]}/{arn[1]}/*"
    return {
        "principalId": tenant,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}],
        },
        "context": {"tenant": tenant},
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        tenant = wiring.api_key_service().tenant_for(headers.get("authorization"))
    except (Unauthorized, UnicodeError) as exc:  # UnicodeError: a key with no UTF-8 form is no key of ours
        logger.info(
            "request refused", extra={"reason": str(exc) if isinstance(exc, Unauthorized) else "not text"}
        )
        raise Exception("Unauthorized") from None  # the exact text API Gateway turns into a 401
    return _policy(event, tenant)
