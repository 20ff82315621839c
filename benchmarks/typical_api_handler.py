"""The baseline: an API function written the typical way, serving the same GET as ApiFunction.

This is the "typical API function" of ``../shared/reference/local-aws-with-moto.md`` §7 (about 530 ms
in-process there): boto3, requests and pydantic imported at module scope, Logger + Tracer + Metrics, a
REST resolver with ``enable_validation=True``, the idempotency layer, and clients created at module scope.
``cold_start.py`` measures it next to the real handler, in the same run and against the same table, so the
two numbers compare on the same machine. It is a benchmark fixture, not part of the service.
(No ``from __future__ import annotations``: the validating resolver reads the route's annotations at
runtime, as in Powertools' own examples.)
"""

import os
from typing import Annotated, Any

import boto3
import requests
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)

table = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
idempotency = IdempotencyConfig(event_key_jmespath="name")
planet = requests.Session()


class OrderIn(BaseModel):
    name: str = Field(min_length=1)
    products: list[dict[str, Any]] = Field(min_length=1)


class OrderOut(BaseModel):
    id: str
    name: str
    state: str
    created_on: str
    last_modified: str
    last_message: str | None = None
    error_hints: list[str] = Field(default_factory=list)


@app.get("/compute/ops/orders/v2/<order_id>")
def get_order(order_id: Annotated[str, Path(min_length=1)]) -> OrderOut:
    item = table.get_item(Key={"order_id": order_id}).get("Item")
    if item is None:
        raise NotFoundError(f"Could not load order ID: {order_id}.")
    return OrderOut(
        id=str(item["order_id"]),
        name=str(item["name"]),
        state=str(item["state"]),
        created_on=str(item["created_on"]),
        last_modified=str(item["last_modified"]),
        last_message=item.get("last_message"),
        error_hints=list(item.get("error_hints") or []),
    )


@idempotent_function(data_keyword_argument="order", persistence_store=persistence, config=idempotency)
def accept(order: dict[str, Any]) -> dict[str, Any]:
    return order


@app.post("/compute/ops/orders/v2")
def create_order(order: OrderIn) -> dict[str, Any]:
    return accept(order=order.model_dump())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
