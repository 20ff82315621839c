"""The API side of the gateway: accept, record, enqueue; show orders in Planet's shape."""

from __future__ import annotations

import uuid
from typing import Any

from order_core.adapters.messaging import IntakeQueue
from order_core.adapters.orders_repo import OrdersRepository
from order_core.errors import OrderNotFound
from order_core.models.order import AcceptedOrderMessage, OrderRecord, planet_time
from order_core.models.planet import OrderRequest
from order_core.observability import bind_order, logger, metrics
from order_core.services.links import DownloadClaims, DownloadLinks


def new_record(request: OrderRequest, tenant: str, order_id: str | None = None) -> OrderRecord:
    body = request.model_dump(mode="json", exclude_none=True, by_alias=True)
    return OrderRecord(
        order_id=order_id or str(uuid.uuid4()),
        tenant=tenant,
        name=request.name,
        source_type=body.get("source_type", "scenes"),
        request=body,
    )


class OrderService:
    def __init__(self, repo: OrdersRepository, queue: IntakeQueue) -> None:
        self._repo = repo
        self._queue = queue

    def create(self, request: OrderRequest, tenant: str) -> OrderRecord:
        """Record the order and put it on the intake queue; Planet is called later by the submitter."""
        from aws_lambda_powertools.metrics import MetricUnit

        record = new_record(request, tenant)
        bind_order(record.order_id, tenant)
        self._repo.create(record)
        try:
            self._queue.send_accepted(AcceptedOrderMessage(order_id=record.order_id, tenant=tenant))
        except Exception:
            # Without its message the order would sit queued forever: take the record back and fail loudly.
            self._repo.delete(record.order_id)
            raise
        logger.info("order accepted", extra={"source_type": record.source_type})
        metrics.add_metric(name="OrdersAccepted", unit=MetricUnit.Count, value=1)
        return record

    def get(self, order_id: str, tenant: str) -> OrderRecord:
        record = self._repo.get(order_id)
        if record is None or record.tenant != tenant:
            raise OrderNotFound(order_id)
        return record


def order_view(
    record: OrderRecord, base_url: str, links: DownloadLinks | None = None, *, with_results: bool = True
) -> dict[str, Any]:
    """The order as Planet's API shows it, with result locations pointing at the landed copies."""
    view: dict[str, Any] = {
        "_links": {"_self": f"{base_url}/orders/v2/{record.order_id}"},
        "id": record.order_id,
        "name": record.name,
        "state": record.state.value,
        "last_message": record.last_message,
        "error_hints": list(record.error_hints),
        "created_on": planet_time(record.created_on),
        "last_modified": planet_time(record.last_modified),
    }
    for field, value in record.request.items():
        if field != "name":
            view.setdefault(field, value)
    view.setdefault("source_type", record.source_type)
    if with_results and links is not None and record.results and record.state.is_final:
        results = []
        for landed in record.results:
            filename = landed.path.rsplit("/", 1)[-1]
            token, expires = links.issue(DownloadClaims(record.order_id, record.tenant, landed.key, filename))
            results.append(
                {
                    "name": f"{record.order_id}/{landed.path}",
                    "location": f"{base_url}/download/?token={token}",
                    "expires_at": planet_time(expires),
                    "delivery": "success",
                }
            )
        view["_links"]["results"] = results
    return view
