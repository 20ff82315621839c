"""Submitting queued orders to Planet exactly once (DESIGN §5).

Write-ahead: the record moves to ``submitting`` before the POST. A later attempt that finds it there cannot
know whether Planet received the first POST, so it reconciles by listing Planet's orders carrying the
order's marker before it ever POSTs again.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import from_json

from order_core.adapters.messaging import OrderWorkflow
from order_core.adapters.planet_client import PlanetClient
from order_core.errors import MessageRefused as MessageRefused
from order_core.errors import RetryLater as RetryLater
from order_core.errors import (
    UpstreamClientError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.lifecycle import BEFORE_PLANET
from order_core.models.order import (
    ACCEPTED_MESSAGE_TYPE,
    AcceptedOrderMessage,
    OrderRecord,
    Phase,
    WorkflowInput,
    utcnow,
)
from order_core.models.planet import MAX_ORDER_BYTES, OrderRequest, PlanetOrder, planet_error_body
from order_core.models.tenancy import validate_tenant
from order_core.observability import bind_order, logger, metrics
from order_core.ports import OrderStore
from order_core.services.backoff import BackoffPolicy
from order_core.services.bundles import BundlesSpecSource, check_request_against_spec
from order_core.services.idempotency import valid_idempotency_key
from order_core.services.orders import new_record, without_credentials

if TYPE_CHECKING:
    from order_core.adapters.messaging import IntakeDeadLetters

#: Orders from SQS producers get ids derived from their dedupe key, so a redelivered message is one order.
_EXTERNAL_ORDER_NAMESPACE = uuid.UUID("6f1f4a52-8a0e-4b8e-9d55-2f3c1bb7a9a1")
#: How far before our first POST attempt Planet's ``created_on`` may lie (clock skew).
_RECONCILE_WINDOW = timedelta(minutes=10)
DEFAULT_TENANT = "default"
#: A rejected order keeps this many hints of at most this many characters (its completion event carries them).
_MAX_HINTS = 20
_MAX_HINT_CHARS = 300
#: How long a claim keeps other deliveries of the message from submitting: well past the SubmitFunction's
#: timeout (template.yaml), so only a dead attempt's claim runs out.
SUBMIT_LEASE = timedelta(minutes=2)
KEY_REUSED = "idempotency key reused with a different body"


class _GaveUp(Exception):
    """The order was rejected after its attempts were spent; nothing more to do for this message."""


class MessageAttribute(BaseModel):
    """One SQS message attribute as the producer sent it: text for String and Number types, else bytes."""

    data_type: str = "String"
    string_value: str | None = None
    binary_value: bytes | None = None

    @property
    def value(self) -> str | bytes:
        return self.string_value if self.string_value is not None else self.binary_value or b""


class IntakeMessage(BaseModel):
    """One SQS message on the intake queue, from the API or from an outside producer."""

    message_id: str
    body: str
    attributes: dict[str, MessageAttribute] = Field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """The attribute's text; None when absent. Refused when it is there but not text."""
        attribute = self.attributes.get(name)
        if attribute is None:
            return None
        if attribute.string_value is None or attribute.data_type.split(".")[0] == "Binary":
            raise MessageRefused("invalid_attribute", f"the {name} attribute must be a String")
        return attribute.string_value


def external_order_id(tenant: str, dedupe_key: str) -> str:
    """The order id of an SQS producer's message: the same for every redelivery of it.

    ``uuid.uuid5`` itself, except that a key no UTF-8 can encode (a lone surrogate, which only a hand-made
    event can carry) still hashes instead of raising.
    """
    name = f"{tenant}:{dedupe_key}".encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(_EXTERNAL_ORDER_NAMESPACE.bytes + name, usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def upstream_marker(order_id: str) -> str:
    return f"[gw:{order_id}]"


def upstream_request(
    record: OrderRecord, notifications: dict[str, object] | None = None
) -> dict[str, object]:
    """The request sent to Planet: the client's own, with a marker in the name for reconciliation.

    ``notifications`` never reaches Planet: Planet would call the tenant's webhook with its own order id and
    download tokens and email the operator's account. The gateway delivers them itself (services/notify.py).
    Its own ``notifications`` (Planet's per-order webhook on the gateway, services/wake.py) go instead.
    """
    request = {key: value for key, value in record.request.items() if key != "notifications"}
    if notifications:
        request["notifications"] = notifications
    return {**request, "name": f"{record.name} {upstream_marker(record.order_id)}"}


class SubmitService:
    def __init__(
        self,
        repo: OrderStore,
        planet: PlanetClient,
        workflow: OrderWorkflow,
        *,
        dead_letters: IntakeDeadLetters | None = None,
        bundles: BundlesSpecSource | None = None,
        max_attempts: int = 6,
        retry_policy: BackoffPolicy | None = None,
        submit_lease: timedelta = SUBMIT_LEASE,
        planet_webhook: Callable[[str], dict[str, object]] | None = None,
    ) -> None:
        self._planet_webhook = planet_webhook
        self._lease = submit_lease
        self._repo = repo
        self._planet = planet
        self._workflow = workflow
        self._dead_letters = dead_letters
        self._bundles = bundles
        self._max_attempts = max_attempts
        self._retry = retry_policy or BackoffPolicy(first_wait_seconds=10, max_wait_seconds=900)

    # --- intake --------------------------------------------------------------------------------------------

    def process(self, message: IntakeMessage) -> str | None:
        """Handle one intake message: the order's id, or None when the message was refused (it is then in
        the dead-letter queue with its reason). Raises RetryLater when it must come back later."""
        logger.remove_keys(["order_id", "tenant"])  # the previous record's, in the same batch
        try:
            message_type = message.text("message_type")
            if message_type == ACCEPTED_MESSAGE_TYPE:
                record = self._accepted_order(message)
            elif message_type is None:
                record = self.accept_external(message)
            else:
                raise MessageRefused(
                    "unknown_message_type", "unknown message_type; outside producers send none"
                )
        except MessageRefused as refusal:
            self._refuse(message, refusal)
            return None
        self._submit(record)
        return record.order_id

    def accept_external(self, message: IntakeMessage) -> OrderRecord:
        """Record an order sent straight to the queue. An invalid body is recorded too, to end ``failed``;
        a message that names no valid tenant, or reuses an idempotency key with another body, is refused."""
        tenant_name = message.text("tenant")
        try:
            tenant = DEFAULT_TENANT if tenant_name is None else validate_tenant(tenant_name)
        except ValueError as exc:
            raise MessageRefused("invalid_tenant", f"invalid tenant: {exc}") from None
        key = message.text("idempotency_key")
        if key is not None:
            try:
                valid_idempotency_key(key)
            except ValueError as exc:
                raise MessageRefused("invalid_idempotency_key", f"invalid idempotency_key: {exc}") from None
        order_id = external_order_id(tenant, message.message_id if key is None else key)
        fingerprint = hashlib.sha256(message.body.encode("utf-8", "surrogatepass")).hexdigest()
        record = _intake_record(message.body, tenant, order_id, self._bundles).model_copy(
            update={"intake_sha256": fingerprint}
        )
        if self._repo.create(record):
            metrics.add_metric(name="OrdersAccepted", unit="Count", value=1)
            return record
        existing = self._repo.get(order_id)
        if existing is None:  # taken back between our write and read: nothing is there to add to
            raise MessageRefused("unknown_order", "the order of this message is gone")
        if existing.intake_sha256 is not None and existing.intake_sha256 != fingerprint:
            raise MessageRefused("idempotency_key_reused", KEY_REUSED)
        return existing  # a redelivery, or the same body sent again with the same key: one order

    def _accepted_order(self, message: IntakeMessage) -> OrderRecord:
        """The order the API recorded and queued; a forged or stale message of this type is refused."""
        try:
            accepted = AcceptedOrderMessage.model_validate_json(message.body)
            if str(uuid.UUID(accepted.order_id)) != accepted.order_id:
                raise ValueError("not a canonical order id")
            validate_tenant(accepted.tenant)
        except ValueError:  # pydantic's ValidationError included
            raise MessageRefused(
                "invalid_accepted_message", f"not a valid {ACCEPTED_MESSAGE_TYPE} message"
            ) from None
        record = self._repo.get(accepted.order_id)
        if record is None:
            # The API takes a record back when it could not enqueue its message, so this message may be the
            # one it thought it had failed to send; or it is forged. Either way nothing is left to submit.
            raise MessageRefused("unknown_order", f"{ACCEPTED_MESSAGE_TYPE} message for an unknown order")
        if record.tenant != accepted.tenant:
            raise MessageRefused(
                "tenant_mismatch", f"{ACCEPTED_MESSAGE_TYPE} message names another tenant than its order's"
            )
        return record

    def _refuse(self, message: IntakeMessage, refusal: MessageRefused) -> None:
        """Put the message, as the producer sent it, on the dead-letter queue with ``refusal_reason``."""
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        attributes = {name: _preview(a.string_value) for name, a in message.attributes.items()}
        logger.warning(
            "intake message refused",
            extra={
                "reason": refusal.reason,
                "refusal_code": refusal.code,
                "message_id": _preview(message.message_id),
                "message_attributes": attributes,
                "body_bytes": len(message.body.encode("utf-8", "surrogatepass")),
            },
        )
        if self._dead_letters is None:
            raise refusal  # no dead-letter queue configured: the message returns, and SQS's redrive moves it
        try:
            self._dead_letters.send_refused(
                message.body,
                {name: (a.data_type, a.value) for name, a in message.attributes.items()},
                refusal.reason,
            )
        except Exception:
            logger.exception("could not put the refused message on the dead-letter queue; it will return")
            raise
        with single_metric(name="IntakeMessagesRefused", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="reason", value=refusal.code)

    # --- submission ----------------------------------------------------------------------------------------

    def submit(self, order_id: str) -> None:
        record = self._repo.get(order_id)
        if record is None:
            logger.warning("no such order to submit", extra={"order_id": order_id})
            return
        self._submit(record)

    def _submit(self, record: OrderRecord) -> None:
        order_id = record.order_id
        bind_order(record.order_id, record.tenant)
        if record.phase not in BEFORE_PLANET:
            self._start_workflow(record, submitted=record.upstream_order_id is not None)
            return
        if record.rejected or (record.cancel_requested and record.phase is Phase.ACCEPTED):
            self._start_workflow(record, submitted=False)  # never POSTed: it ends here
            return

        claimed = self._repo.claim_submission(order_id, lease=self._lease)
        if claimed is None:  # cancelled, submitted or being submitted meanwhile: act on what is there now
            current = self._repo.get(order_id)
            if current is None:
                return
            if current.phase is not Phase.SUBMITTING:
                self._start_workflow(current, submitted=current.upstream_order_id is not None)
                return
            # Another delivery of this message holds the claim: come back once it has finished (or its
            # lease ran out because it died), never POST beside it.
            seconds = max(1, int(self._lease.total_seconds()))
            raise RetryLater(seconds, "another attempt is submitting this order")

        try:
            # A claim before this one may have reached Planet: look for its order before POSTing again.
            previous = record.phase is Phase.SUBMITTING or claimed.submit_attempts > 1
            try:
                upstream = self._reconcile(claimed) if previous else None
            except _GaveUp:
                return  # rejected: its workflow ends it with the hint
            if upstream is None and claimed.cancel_requested:
                # Cancelled while an earlier POST was unanswered, and Planet does not have it: it ends
                # cancelled without ever being POSTed again.
                self._start_workflow(claimed, submitted=False)
                return
            if upstream is None:
                upstream = self._post(claimed)
                if upstream is None:
                    return
            # Planet has the order: its delivery credentials are never needed again (in the same write).
            submitted = self._repo.record_upstream_order(
                order_id,
                upstream_order_id=upstream.id,
                upstream_state=upstream.state.value,
                last_message=upstream.last_message or "Submitted to Planet",
                request=without_credentials(claimed.request),
            )
        except Exception:
            self._release(order_id)  # the next attempt reconciles first
            raise
        logger.info("order submitted upstream", extra={"upstream_order_id": upstream.id})
        metrics.add_metric(name="OrdersSubmitted", unit="Count", value=1)
        if submitted is not None and submitted.cancel_requested:
            self._cancel_upstream(upstream.id)
        self._start_workflow(submitted or claimed, submitted=True)

    def _release(self, order_id: str, *, attempts: int | None = None) -> None:
        """Let the next attempt claim at once. Best effort: if this fails too, the lease runs out."""
        try:
            self._repo.release_submission(order_id, attempts=attempts)
        except Exception:
            logger.exception("could not release the submission claim; the next attempt waits for its lease")

    def _post(self, record: OrderRecord) -> PlanetOrder | None:
        try:
            notifications = self._planet_webhook(record.order_id) if self._planet_webhook else None
            return self._planet.create_order(upstream_request(record, notifications))
        except UpstreamClientError as exc:
            self._reject(record, [f"Planet refused the order: {exc}"])
        except UpstreamRateLimited as exc:
            if exc.deferred:
                # Nothing was sent: the deployment's pace has no create slot soon enough. Not an attempt
                # at Planet, so it never uses up the order's attempts; come back when the slot is near.
                self._release(record.order_id, attempts=record.submit_attempts - 1)
                seconds = max(1, math.ceil(exc.retry_after or 1))
                raise RetryLater(seconds, "waiting for a create slot") from exc
            self._retry_or_give_up(record, exc, "Planet kept rate limiting order creation", exc.retry_after)
        except UpstreamUnavailable as exc:
            self._retry_or_give_up(record, exc, "Planet did not accept the order")
        return None

    def _retry_or_give_up(
        self, record: OrderRecord, exc: Exception, what: str, retry_after: float | None = None
    ) -> None:
        """A transient fault: try again later, with backoff, until the attempts are spent; then the order
        ends ``failed`` with a hint naming the fault, instead of waiting at Planet's door for ever."""
        if record.submit_attempts >= self._max_attempts:
            self._reject(record, [f"{what} after {record.submit_attempts} attempts; last error: {exc}"])
            return
        seconds = self._retry.wait_for(record.order_id, record.submit_attempts, retry_after)
        raise RetryLater(seconds, f"{what}: {exc}") from exc

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
        except (UpstreamRateLimited, UpstreamUnavailable) as exc:
            retry_after = exc.retry_after if isinstance(exc, UpstreamRateLimited) else None
            self._retry_or_give_up(
                record,
                exc,
                f"Planet could not be asked whether it already holds this order (marker {marker}, "
                "searched for before ever posting again)",
                retry_after,
            )
            raise _GaveUp from exc
        return None

    def _reject(self, record: OrderRecord, hints: list[str]) -> None:
        logger.warning("order rejected before reaching Planet", extra={"error_hints": hints})
        # never sent to Planet again: its credentials go in the same write
        rejected = self._repo.reject(record.order_id, hints, without_credentials(record.request))
        self._start_workflow(rejected or record, submitted=False)

    def _start_workflow(self, record: OrderRecord, *, submitted: bool) -> None:
        """Hand the order to its workflow. Called only once the order will never be POSTed again (Planet
        has it, or it was rejected or cancelled first), so any credentials still stored go now."""
        if (stripped := without_credentials(record.request)) is not None:
            self._repo.forget_credentials(record.order_id, stripped)
        started = self._workflow.start(
            WorkflowInput(order_id=record.order_id, tenant=record.tenant, submitted=submitted)
        )
        if not started:
            logger.info("workflow already running for this order")


def _intake_record(
    body: str, tenant: str, order_id: str, bundles: BundlesSpecSource | None = None
) -> OrderRecord:
    """The order an SQS producer's body asks for, or a rejected one naming what is wrong with it: the same
    checks as the API's create, item types and bundles against Planet's spec included."""
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        return _rejected_record(order_id, tenant, "", ["Message body is not valid Unicode text"])
    if size > MAX_ORDER_BYTES:
        hint = f"Message body is {size} bytes; the limit is {MAX_ORDER_BYTES} bytes"
        return _rejected_record(order_id, tenant, "", [hint])
    try:
        request = OrderRequest.model_validate_json(body)
    except ValidationError as exc:
        return _rejected_record(order_id, tenant, body, _validation_hints(exc))
    # Measured as the repository stores it (compact JSON, non-ASCII escaped), which can be the longer.
    stored = request.stored_size()
    if stored > MAX_ORDER_BYTES:
        hint = (
            f"The order as stored (its compact JSON plus its name) is {stored} bytes; "
            f"the limit is {MAX_ORDER_BYTES} bytes"
        )
        return _rejected_record(order_id, tenant, body, [hint])
    if bundles is not None:
        refusals = check_request_against_spec(request, bundles.current())
        if refusals:
            return _rejected_record(order_id, tenant, body, [f"{e.field}: {e.message}" for e in refusals])
    return new_record(request, tenant, order_id)


def _rejected_record(order_id: str, tenant: str, body: str, hints: list[str]) -> OrderRecord:
    try:
        parsed: Any = from_json(body) if body else None
    except ValueError:
        parsed = None
    name = parsed.get("name") if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) else ""
    if len(hints) > _MAX_HINTS:
        hints = [*hints[: _MAX_HINTS - 1], f"... and {len(hints) - _MAX_HINTS + 1} more problems"]
    return OrderRecord(
        order_id=order_id,
        tenant=tenant,
        name=name or "(invalid order request)",
        request={},
        last_message="Order request rejected",
        error_hints=[_shorten(hint, _MAX_HINT_CHARS) for hint in hints],
        rejected=True,
    )


def _validation_hints(exc: ValidationError) -> list[str]:
    body = planet_error_body(exc)
    hints = [
        f"{field}: {item['message']}" for field, items in body.get("field", {}).items() for item in items
    ]
    return hints or [item["message"] for item in body.get("general", [])]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preview(value: str | None) -> str | None:
    """A value safe to log: at most 64 characters, ASCII escapes for anything unusual."""
    return None if value is None else ascii(_shorten(value, 64))
