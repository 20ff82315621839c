"""The HTTP contract: each request and response shape of the gateway's API, defined once.

The API builds its answers with these models (``services/orders.order_view``, the error answers of
``functions/api/app.py``) and ``local/gateway_local/openapi.py`` generates docs/openapi.json's schemas from
the same classes, so the document cannot describe a shape the API does not send. Class names are the
schema names in the document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """Every error but 400: Planet's shape."""

    message: str


class FieldMessage(BaseModel):
    message: str


class PlanetValidationError(BaseModel):
    """Planet's 400: what is wrong with each field (by its dotted path), and in general."""

    field: dict[str, list[FieldMessage]] = Field(
        description="Dotted path of each wrong field (`products.0.item_ids`, `tools.1`) → what is wrong"
    )
    general: list[FieldMessage]


OrderStateName = Literal["queued", "running", "failed", "success", "partial", "cancelled"]


class ResultLink(BaseModel):
    """A result file: landed and verified (`success`, with its link), or still landing (`pending`)."""

    name: str = Field(description="`<order id>/<path>`, as in Planet's results")
    location: str | None = Field(
        default=None,
        description="A signed link on this API; GET it (no API key) to download it; absent while pending",
    )
    expires_at: str | None = Field(
        default=None,
        description="When `location` stops working; GET the order again for a new one. Absent while pending",
    )
    delivery: Literal["success", "pending"]


class OrderLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_link: str = Field(alias="_self")
    results: list[ResultLink] | None = Field(
        default=None,
        description="Only on `GET /orders/v2/{order_id}` of an order whose results are landing or landed",
    )


class Order(BaseModel):
    """An order as Planet's API shows it: the request's fields plus its state. Credentials are redacted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    links: OrderLinks = Field(alias="_links")
    id: str
    name: str
    state: OrderStateName
    last_message: str
    error_hints: list[str]
    created_on: str = Field(description="RFC 3339 with milliseconds, UTC")
    last_modified: str = Field(description="RFC 3339 with milliseconds, UTC")
    source_type: Literal["scenes", "basemaps"]
    #: Absent only for an order refused before its request could be read (an SQS body that is no order).
    order_type: Literal["full", "partial"] | None = None
    products: list[dict[str, Any]] | None = None
    subscription_id: int | None = None
    delivery: dict[str, Any] | None = None
    notifications: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    hosting: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class OrderListLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_link: str = Field(alias="_self")
    next: str | None = Field(default=None, description="The next page, absent on the last one")


class OrderList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    links: OrderListLinks = Field(alias="_links")
    orders: list[Order]


class BulkCancelRequest(BaseModel):
    """`{}` cancels every queued order of the caller."""

    model_config = ConfigDict(extra="forbid")

    order_ids: Annotated[list[UUID], Field(min_length=1)] = Field(
        default_factory=list, description="Cancel only these; omit the field to cancel every queued order"
    )


class BulkCancelFailure(BaseModel):
    order_id: str
    message: str


class BulkCancelFailed(BaseModel):
    count: int = Field(ge=0)
    failures: list[BulkCancelFailure]


class BulkCancelSucceeded(BaseModel):
    count: int = Field(ge=0)


class BulkCancelOutcome(BaseModel):
    succeeded: BulkCancelSucceeded
    failed: BulkCancelFailed


class BulkCancelResult(BaseModel):
    result: BulkCancelOutcome


class ActiveOrders(BaseModel):
    queued_orders: int = Field(ge=0)
    running_orders: int = Field(ge=0)


class OrderStats(BaseModel):
    organization: ActiveOrders = Field(
        description="The caller's tenant's orders (a tenant is the organisation)"
    )
    user: ActiveOrders = Field(description="The caller's tenant's orders")


def answer(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` checked against its contract model and sent as the model writes it (the same keys)."""
    return model.model_validate(body).model_dump(mode="json", by_alias=True, exclude_unset=True)
