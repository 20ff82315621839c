"""boto3 clients, created on first use (never at import time) and shared per execution environment."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    """A boto3 client; ``AWS_ENDPOINT_URL`` (set by the local stack) points it at moto."""
    import boto3  # imported lazily: boto3 is the largest part of a cold start

    return boto3.session.Session().client(service)


@cache
def resource(service: str) -> Any:
    import boto3

    return boto3.session.Session().resource(service)


def table(name: str) -> Any:
    """A DynamoDB table as boto3's ``Table``; ``get_item`` without boto3 (adapters/dynamodb_http.py).

    The reads by key of the API's GET and of the authorizer are then a signed HTTP request; every other
    operation is boto3's, built on its first use.
    """
    from order_core.adapters.dynamodb_http import DynamoDBTable

    return DynamoDBTable(name)
