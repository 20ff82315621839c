"""Secrets through Powertools Parameters (cached for five minutes per execution environment)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from order_core.adapters.aws import client

    return SecretsProvider(boto3_client=client("secretsmanager"))


def get_secret(secret_id: str, *, force_fetch: bool = False) -> str:
    return str(_provider().get(secret_id, max_age=300, force_fetch=force_fetch))
