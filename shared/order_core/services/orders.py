"""The API side of the gateway: accept, record, enqueue; show orders in Planet's shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from order_core.errors import NOT_CANCELLABLE as NOT_CANCELLABLE
from order_core.errors import NotCancellable as NotCancellable
from order_core.errors import (
    OrderNotFound,
    UpstreamConflict,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.errors import PlanetBusy as PlanetBusy
from order_core.models.api import Order, answer
from order_core.models.lifecycle import BEFORE_PLANET
from order_core.models.order import (
    AcceptedOrderMessage,
    OrderRecord,
    Phase,
    WorkflowInput,
    planet_time,
)
from order_core.models.planet import OrderRequest, OrderState
from order_core.observability import bind_order, logger, metrics

if TYPE_CHECKING:
    # Types only. This module is on ApiFunction's cold-start path: the adapters are injected (and imported by
    # wiring when built), requests comes with the Planet client, and PyJWT with download links, which a GET
    # needs only for a finished order with landed results (imported in order_view then).
    from order_core.adapters.messaging import IntakeQueue, OrderWorkflow
    from order_core.adapters.orders_repo import OrdersRepository
    from order_core.adapters.planet_client import PlanetClient
    from order_core.services.links import DownloadLinks
    from order_core.services.listing import ListQuery


def new_record(request: OrderRequest, tenant: str, order_id: str | None = None) -> OrderRecord:
    body = request.model_dump(mode="json", exclude_none=True, by_alias=True)
    return OrderRecord(
        order_id=order_id or str(uuid.uuid4()),
        tenant=tenant,
        name=request.name,
        source_type=body.get("source_type", "scenes"),
        request=body,
    )


#: Orders one bulk cancel handles at most: ``order_ids`` longer than this are a 400, and ``{}`` cancels
#: this many queued orders per request. Each is a conditional write, some a call to Planet: the bound keeps
#: what one request does independent of how many orders a tenant has.
BULK_CANCEL_MAX = 1000


class OrderService:
    def __init__(
        self,
        repo: OrdersRepository,
        queue: IntakeQueue,
        workflow: OrderWorkflow | None = None,
        planet: Callable[[], PlanetClient] | None = None,
        wake: Callable[[str], object] | None = None,
    ) -> None:
        """``wake`` ends the wait of an order's workflow (services/wake.py), so a cancel Planet accepted is
        finalized at once instead of when the next sweep or Planet's webhook notices it."""
        self._repo = repo
        self._queue = queue
        self._workflow = workflow
        self._planet = planet
        self._wake = wake

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

    def orders_of(self, tenant: str) -> Iterator[OrderRecord]:
        """Every order of the tenant, newest first. Reads them all: lists use ``list_page``."""
        return iter(self._repo.list_for_tenant(tenant))

    def list_page(self, tenant: str, query: ListQuery, base_url: str) -> dict[str, Any]:
        """One page of the tenant's orders for a list query, in Planet's list shape.

        Reads only the index runs the query needs, as far as the page needs them (services/listing.py,
        ``plan`` and ``page_of_runs``): no request reads more than a bounded number of orders, however many
        the tenant has.
        """
        from order_core.services.listing import page_of_runs, plan

        listing_plan = plan(query)
        # The page, the order that says there is a next, one that ends a group, the marker's own order.
        first_batch = query.page_size + 3
        runs = [
            (
                order_view(record, base_url, with_results=False)
                for record in self._repo.read_run(tenant, run, first_batch=first_batch)
                if record.tenant == tenant
            )
            for run in listing_plan.runs
        ]
        return page_of_runs(runs, listing_plan, query, self_url=f"{base_url}/orders/v2")

    def cancel(self, order_id: str, tenant: str) -> OrderRecord:
        """Cancel a queued order: locally if Planet does not have it yet, else at Planet.

        Returns the order as the client should see it (``cancelled``); the workflow then ends it with its
        completion event.
        """
        record = self.get(order_id, tenant)
        bind_order(record.order_id, tenant)
        if record.state is not OrderState.queued or record.rejected or record.cancel_requested:
            raise NotCancellable
        if record.phase in BEFORE_PLANET:
            # Never submitted (or a POST is in flight: the submitter cancels upstream right after it).
            # Never POSTed again once flagged (the submitter's claim requires the flag unset): the delivery
            # credentials go with the flag (an in-flight POST already holds its copy).
            updated = self._repo.request_cancel(order_id, without_credentials(record.request))
            if updated is not None:
                if updated.phase == Phase.ACCEPTED and self._workflow is not None:
                    self._workflow.start(WorkflowInput(order_id=order_id, tenant=tenant, submitted=False))
                return _as_cancelled(updated)
            record = self.get(order_id, tenant)  # the submitter got there first
        if record.phase != Phase.SUBMITTED or record.upstream_order_id is None or self._planet is None:
            raise NotCancellable
        try:
            upstream = self._planet().cancel_order(record.upstream_order_id)
        except UpstreamConflict:
            raise NotCancellable from None
        except UpstreamRateLimited as exc:
            raise PlanetBusy("Planet is rate limiting cancellations; retry", exc.retry_after) from None
        except UpstreamUnavailable:
            raise PlanetBusy("Planet did not answer the cancellation; retry") from None
        updated = self._repo.record_upstream_cancel(order_id, upstream.state.value)
        logger.info("order cancelled at Planet")
        if self._wake is not None:
            try:
                self._wake(order_id)
            except Exception as exc:  # the cancel stands; the sweep or Planet's webhook ends the wait
                logger.warning("the cancelled order's workflow was not woken", extra={"error": str(exc)})
        return _as_cancelled(updated or record)

    def cancel_many(self, tenant: str, order_ids: list[str] | None) -> dict[str, Any]:
        """Bulk cancel in Planet's response shape; ``None`` means the tenant's queued orders.

        ``None`` takes at most ``BULK_CANCEL_MAX`` queued orders in one pass (from the sparse ``active``
        index, never the whole history): a tenant with more sends ``{}`` again until nothing is cancelled.
        """
        if order_ids is None:
            order_ids = self._repo.active_order_ids_of(tenant, OrderState.queued.value, limit=BULK_CANCEL_MAX)
        succeeded, failures = 0, []
        for order_id in order_ids:
            try:
                self.cancel(order_id, tenant)
            except OrderNotFound:
                failures.append({"order_id": order_id, "message": f"No such order ID: {order_id}."})
            except NotCancellable:
                failures.append({"order_id": order_id, "message": NOT_CANCELLABLE})
            except PlanetBusy as exc:
                failures.append({"order_id": order_id, "message": str(exc)})
            else:
                succeeded += 1
        return {
            "result": {
                "succeeded": {"count": succeeded},
                "failed": {"count": len(failures), "failures": failures},
            }
        }

    def stats(self, tenant: str) -> dict[str, Any]:
        """Queued and running orders of the caller's tenant, as both ``user`` and ``organization``.

        A tenant is the organisation as its clients see it: counting every tenant's orders would tell each
        one how busy the others are (docs/decisions.md, "Stats are the tenant's own").
        """
        counts = {
            "queued_orders": self._repo.count_active("queued", tenant),
            "running_orders": self._repo.count_active("running", tenant),
        }
        return {"organization": counts, "user": dict(counts)}


def _as_cancelled(record: OrderRecord) -> OrderRecord:
    return record.model_copy(update={"state": OrderState.cancelled, "last_message": "Cancel success"})


#: Delivery credentials, key ids included: forwarded to Planet but never shown again (not in responses, logs
#: or events), and dropped from the stored request once Planet has the order (``without_credentials``). The
#: names of every delivery model's credential fields (models/planet.py), plus those other clouds' credential
#: documents use, so a field Planet adds later is caught if it is named like them.
SECRET_FIELDS = frozenset(
    {
        # Amazon S3, S3-compatible, Oracle Cloud Storage
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "customer_access_key_id",
        "customer_secret_key",
        # Azure Blob Storage
        "sas_token",
        "account_key",
        "connection_string",
        # Google Cloud Storage / Earth Engine (a base64 service-account JSON, or its fields)
        "credentials",
        "private_key",
        "private_key_id",
        "client_secret",
        "refresh_token",
        "password",
    }
)
REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret field replaced by a placeholder."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_FIELDS and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def without_credentials(request: dict[str, Any]) -> dict[str, Any] | None:
    """The stored request with its credentials replaced by the placeholder; None if it holds none.

    Used once the gateway will never send the request to Planet again (Planet has the order, or it was
    rejected or cancelled before reaching Planet): the rest of the request stays as the client sent it.
    """
    redacted: dict[str, Any] = redact(request)
    return None if redacted == request else redacted


def order_view(
    record: OrderRecord, base_url: str, links: DownloadLinks | None = None, *, with_results: bool = True
) -> dict[str, Any]:
    """The order as Planet's API shows it, with result locations pointing at the landed copies.

    Every answer that shows an order (create, its idempotent replay, get, list, cancel) is built here, and
    the whole view goes through ``redact``, so whatever ``redact`` hides is hidden from each of them.
    """
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
    # Results show as they land: each verified file with its link, the rest of the delivery as pending.
    if with_results and (record.results or record.pending_results):
        from order_core.services.links import DownloadClaims

        results: list[dict[str, Any]] = []
        for landed in record.results if links is not None else []:
            assert links is not None
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
        pending = record.pending_results
        results += [{"name": f"{record.order_id}/{path}", "delivery": "pending"} for path in pending]
        view["_links"]["results"] = results
    return answer(Order, redact(view))
