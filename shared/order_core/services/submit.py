"""Submitting queued orders to Planet exactly once (DESIGN §5).

Write-ahead: the record moves to ``submitting`` before the POST. A later attempt that finds it there cannot
know whether Planet received the first POST, so it reconciles by listing Planet's orders carrying the
order's marker before it ever POSTs again.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from pydantic import BaseModel, ValidationError

from order_core.adapters.messaging import OrderWorkflow
from order_core.adapters.orders_repo import OrdersRepository
from order_core.adapters.planet_client import PlanetClient
from order_core.errors import (
    GatewayError,
    UpstreamClientError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.order import (
    ACCEPTED_MESSAGE_TYPE,
    AcceptedOrderMessage,
    OrderRecord,
    Phase,
    WorkflowInput,
    utcnow,
)
from order_core.models.planet import OrderRequest, PlanetOrder, planet_error_body
from order_core.observability import bind_order, logger, metrics
from order_core.services.backoff import BackoffPolicy
from order_core.services.orders import new_record

#: Orders from SQS producers get ids derived from their dedupe key, so a redelivered message is one order.
_EXTERNAL_ORDER_NAMESPACE = uuid.UUID("6f1f4a52-8a0e-4b8e-9d55-2f3c1bb7a9a1")
#: How far before our first POST attempt Planet's ``created_on`` may lie (clock skew).
_RECONCILE_WINDOW = timedelta(minutes=10)
DEFAULT_TENANT = "default"


class RetryLater(GatewayError):
    """The message must come back after ``seconds`` (Planet busy or rate limiting us)."""

    def __init__(self, seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class IntakeMessage(BaseModel):
    """One SQS message on the intake queue, from the API or from an outside producer."""

    message_id: str
    body: str
    message_type: str | None = None
    tenant: str | None = None
    idempotency_key: str | None = None


def external_order_id(tenant: str, dedupe_key: str) -> str:
    """The order id of an SQS producer's message: the same for every redelivery of it."""
    return str(uuid.uuid5(_EXTERNAL_ORDER_NAMESPACE, f"{tenant}:{dedupe_key}"))


def upstream_marker(order_id: str) -> str:
    return f"[gw:{order_id}]"


def upstream_request(record: OrderRecord) -> dict[str, object]:
    """The request sent to Planet: the client's own, with a marker in the name for reconciliation."""
    return {**record.request, "name": f"{record.name} {upstream_marker(record.order_id)}"}


class SubmitService:
    def __init__(
        self,
        repo: OrdersRepository,
        planet: PlanetClient,
        workflow: OrderWorkflow,
        *,
        max_attempts: int = 6,
        retry_policy: BackoffPolicy | None = None,
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._workflow = workflow
        self._max_attempts = max_attempts
        self._retry = retry_policy or BackoffPolicy(first_wait_seconds=10, max_wait_seconds=900)

    # --- intake --------------------------------------------------------------------------------------------

    def process(self, message: IntakeMessage) -> str:
        """Handle one intake message; raises RetryLater when it must come back later."""
        if message.message_type == ACCEPTED_MESSAGE_TYPE:
            order_id = AcceptedOrderMessage.model_validate_json(message.body).order_id
        else:
            order_id = self.accept_external(message)
        self.submit(order_id)
        return order_id

    def accept_external(self, message: IntakeMessage) -> str:
        """Record an order sent straight to the queue. An invalid one is recorded too, to end ``failed``."""
        tenant = message.tenant or DEFAULT_TENANT
        order_id = external_order_id(tenant, message.idempotency_key or message.message_id)
        try:
            record = new_record(OrderRequest.model_validate_json(message.body), tenant, order_id)
        except ValidationError as exc:
            record = self._rejected_record(order_id, tenant, message.body, _validation_hints(exc))
        if self._repo.create(record):
            metrics.add_metric(name="OrdersAccepted", unit="Count", value=1)
        return order_id

    @staticmethod
    def _rejected_record(order_id: str, tenant: str, body: str, hints: list[str]) -> OrderRecord:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        name = parsed.get("name") if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) else ""
        return OrderRecord(
            order_id=order_id,
            tenant=tenant,
            name=name or "(invalid order request)",
            request={},
            last_message="Order request rejected",
            error_hints=hints,
            rejected=True,
        )

    # --- submission ----------------------------------------------------------------------------------------

    def submit(self, order_id: str) -> None:
        record = self._repo.get(order_id)
        if record is None:
            # The API takes a record back when it cannot enqueue it; nothing is left to submit.
            logger.warning("intake message for an unknown order; dropping it", extra={"order_id": order_id})
            return
        bind_order(record.order_id, record.tenant)
        if record.phase not in (Phase.ACCEPTED, Phase.SUBMITTING):
            self._start_workflow(record, submitted=record.upstream_order_id is not None)
            return
        if record.rejected or record.cancel_requested:
            self._start_workflow(record, submitted=False)
            return

        claimed = self._repo.update(
            order_id,
            {
                "phase": Phase.SUBMITTING,
                "submit_attempts": record.submit_attempts + 1,
                "submit_started_at": record.submit_started_at or utcnow(),
                "last_modified": utcnow(),
            },
            only_in_phases=(Phase.ACCEPTED, Phase.SUBMITTING),
            condition="attribute_not_exists(cancel_requested) OR cancel_requested = :false",
            extra_values={":false": False},
        )
        if claimed is None:  # cancelled or submitted meanwhile: act on what is there now
            if (current := self._repo.get(order_id)) is not None and current.phase != Phase.SUBMITTING:
                self._start_workflow(current, submitted=current.upstream_order_id is not None)
            return

        upstream = self._reconcile(claimed) if record.phase == Phase.SUBMITTING else None
        if upstream is None:
            upstream = self._post(claimed)
            if upstream is None:
                return
        submitted = self._repo.update(
            order_id,
            {
                "phase": Phase.SUBMITTED,
                "upstream_order_id": upstream.id,
                "upstream_state": upstream.state.value,
                "submitted_at": utcnow(),
                "last_modified": utcnow(),
                "last_message": upstream.last_message or "Submitted to Planet",
            },
            only_in_phases=(Phase.SUBMITTING,),
        )
        logger.info("order submitted upstream", extra={"upstream_order_id": upstream.id})
        metrics.add_metric(name="OrdersSubmitted", unit="Count", value=1)
        if submitted is not None and submitted.cancel_requested:
            self._cancel_upstream(upstream.id)
        self._start_workflow(submitted or claimed, submitted=True)

    def _post(self, record: OrderRecord) -> PlanetOrder | None:
        try:
            return self._planet.create_order(upstream_request(record))
        except UpstreamClientError as exc:
            self._reject(record, [f"Planet refused the order: {exc}"])
            return None
        except UpstreamRateLimited as exc:
            seconds = self._retry.wait_for(record.order_id, record.submit_attempts, exc.retry_after)
            raise RetryLater(seconds, "Planet is rate limiting order creation") from exc
        except UpstreamUnavailable as exc:
            if record.submit_attempts >= self._max_attempts:
                self._reject(
                    record,
                    [
                        f"Planet did not accept the order after {record.submit_attempts} "
                        f"attempts; last error: {exc}"
                    ],
                )
                return None
            seconds = self._retry.wait_for(record.order_id, record.submit_attempts)
            raise RetryLater(seconds, f"Planet unavailable: {exc}") from exc

    def _cancel_upstream(self, upstream_order_id: str) -> None:
        """The client cancelled while our POST was in flight: cancel it at Planet; polling sees the result."""
        try:
            self._planet.cancel_order(upstream_order_id)
        except (UpstreamClientError, UpstreamUnavailable, UpstreamRateLimited) as exc:
            logger.warning("could not cancel at Planet after a racing cancel", extra={"error": str(exc)})

    def _reconcile(self, record: OrderRecord) -> PlanetOrder | None:
        """Find the order a previous, ambiguous attempt may have created."""
        since = (record.submit_started_at or utcnow()) - _RECONCILE_WINDOW
        marker = upstream_marker(record.order_id)
        try:
            for candidate in self._planet.list_orders(
                name__contains=marker,
                source_type="all",
                created_on=f"{since.strftime('%Y-%m-%dT%H:%M:%SZ')}/..",
            ):
                if candidate.name.endswith(marker):
                    logger.info("reconciled an earlier submission", extra={"upstream_order_id": candidate.id})
                    return candidate
        except UpstreamRateLimited as exc:
            raise RetryLater(int(exc.retry_after or 5), "Planet is rate limiting the reconciliation") from exc
        except UpstreamUnavailable as exc:
            raise RetryLater(self._retry.wait_for(record.order_id, record.submit_attempts), str(exc)) from exc
        return None

    def _reject(self, record: OrderRecord, hints: list[str]) -> None:
        logger.warning("order rejected before reaching Planet", extra={"error_hints": hints})
        rejected = self._repo.update(
            record.order_id,
            {
                "phase": Phase.ACCEPTED,
                "rejected": True,
                "error_hints": hints,
                "last_message": "Order rejected",
                "last_modified": utcnow(),
            },
        )
        self._start_workflow(rejected or record, submitted=False)

    def _start_workflow(self, record: OrderRecord, *, submitted: bool) -> None:
        started = self._workflow.start(
            WorkflowInput(order_id=record.order_id, tenant=record.tenant, submitted=submitted)
        )
        if not started:
            logger.info("workflow already running for this order")


def _validation_hints(exc: ValidationError) -> list[str]:
    body = planet_error_body(exc)
    hints = [
        f"{field}: {item['message']}" for field, items in body.get("field", {}).items() for item in items
    ]
    return hints or [item["message"] for item in body.get("general", [])]
