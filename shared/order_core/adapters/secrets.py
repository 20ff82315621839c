"""Secrets through Powertools Parameters (cached for five minutes per execution environment)."""

from __future__ import annotations


def get_secret(secret_id: str, *, force_fetch: bool = False) -> str:
    from aws_lambda_powertools.utilities.parameters import get_secret as _get_secret

    from order_core.adapters.aws import client

    value = _get_secret(secret_id, max_age=300, force_fetch=force_fetch, boto3_client=client("secretsmanager"))
    return str(value)
