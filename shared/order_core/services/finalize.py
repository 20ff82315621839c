"""The end of every order: decide its terminal state, record it, publish exactly one completion event."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from order_core.adapters.messaging import CompletionEvents
from order_core.errors import OrderNotFound
from order_core.models.order import CompletionEvent, LandedFile, OrderRecord, Phase, planet_time, utcnow
from order_core.models.planet import OrderState
from order_core.observability import bind_order, logger, metrics
from order_core.ports import OrderStore

MANIFEST = "manifest.json"
_EVENT_NAMESPACE = uuid.UUID("0b7f8f0e-3c57-4d0b-8f5e-6a9a4d3e2c11")


def terminal_outcome(
    record: OrderRecord, upstream_state: str | None, deadline_passed: bool, error: dict[str, Any] | None
) -> tuple[OrderState, str, list[str]]:
    """The terminal state, last message and error hints for an order, from how its workflow ended."""
    hints = list(record.error_hints)
    if error:
        hints.append(_describe_error(error))
        landed = _data_files(record)
        if landed:
            hints.append(
                f"The order is incomplete: only {len(landed)} file(s) ({sum(f.size for f in landed)} bytes) "
                "landed and were verified before landing failed; they are listed in results and stay in "
                "the results bucket. Files not listed did not land."
            )
        return OrderState.failed, "Order failed", hints
    if upstream_state is None:  # never reached Planet
        if record.cancel_requested:
            return OrderState.cancelled, "Cancel success", hints
        return OrderState.failed, "Order rejected", hints or ["The order was not accepted by Planet."]
    state = OrderState(upstream_state)
    if deadline_passed and not state.is_final:
        hints.append(
            f"Planet did not finish the order before the polling deadline (last state {state.value})."
        )
        return OrderState.failed, "Order timed out", hints
    messages = {
        OrderState.success: "Manifest delivery completed" if record.results else "Order completed",
        OrderState.partial: "Order partially completed",
        OrderState.failed: "Order failed",
        OrderState.cancelled: "Cancel success",
    }
    return state, messages.get(state, record.last_message), hints


def _data_files(record: OrderRecord) -> list[LandedFile]:
    """The order's landed result files, manifest.json not counted."""
    return [item for item in record.results if item.path != MANIFEST]


def _describe_error(error: dict[str, Any]) -> str:
    """Turn a Step Functions Catch result (``Error``/``Cause``) into a hint a person can act on."""
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    except (TypeError, ValueError):
        message = cause
    return f"{name}: {message}"[:1000]


def completion_event(
    record: OrderRecord, state: OrderState, hints: list[str], completed: datetime, bucket: str
) -> CompletionEvent:
    """The order's completion event (docs/events/): also what an operator's replay republishes."""
    return CompletionEvent(
        event_id=str(uuid.uuid5(_EVENT_NAMESPACE, record.order_id)),
        order_id=record.order_id,
        name=record.name,
        tenant=record.tenant,
        state=state,
        source_type=record.source_type,
        upstream_order_id=record.upstream_order_id,
        created_on=planet_time(record.created_on),
        completed_on=planet_time(completed),
        # Counted from the files the record lists (the bucket's verified files), whatever the state.
        files=len(_data_files(record)),
        bytes=sum(item.size for item in _data_files(record)),
        error_hints=hints,
        delivery={"bucket": bucket, "key": record.delivery_key} if record.delivery_key else None,
    )


class FinalizeService:
    def __init__(self, repo: OrderStore, events: CompletionEvents, bucket: str) -> None:
        self._repo = repo
        self._events = events
        self._bucket = bucket

    def finalize(
        self,
        order_id: str,
        *,
        upstream_state: str | None,
        deadline_passed: bool = False,
        error: dict[str, Any] | None = None,
    ) -> OrderState:
        record = self._repo.get(order_id)
        if record is None:
            raise OrderNotFound(order_id)
        bind_order(record.order_id, record.tenant)
        if record.phase is Phase.FINALIZED:
            if record.event_published_at is not None:
                return record.state  # a retried Finalize: the event went out already
            # Finalized by a racing finalizer whose publish then failed: publish what is recorded.
            state, message, hints = record.state, record.last_message, list(record.error_hints)
        else:
            state, message, hints = terminal_outcome(record, upstream_state, deadline_passed, error)
        now = utcnow()
        if record.event_published_at is None:
            event = completion_event(record, state, hints, now, self._bucket)
            # Claim the right to publish with a conditional write: a retry never publishes twice.
            if self._repo.claim_completion_event(order_id, now) is not None:
                try:
                    self._events.publish(event)
                except Exception:
                    self._repo.release_completion_event(order_id)
                    raise
        if record.phase is Phase.FINALIZED:
            return state
        if self._repo.finalize(order_id, state=state, last_message=message, hints=hints, at=now) is None:
            current = self._repo.get(order_id)  # a racing finalizer recorded it first: its outcome stands
            return current.state if current is not None else state
        logger.info("order finalized", extra={"state": state.value})
        metrics.add_metric(name=f"Orders{state.value.capitalize()}", unit="Count", value=1)
        return state

    def replay(self, order_id: str) -> CompletionEvent:
        """Publish a finalized order's completion event again, marked ``replay=true``: an operator's act.

        Rebuilt from the record (its terminal state, the files it holds now, completed when first published),
        with the same ``event_id``, so subscribers that drop duplicates by it can. An order whose event has
        not gone out yet is refused: its workflow publishes it, exactly once.
        """
        record = self._repo.get(order_id)
        if record is None:
            raise OrderNotFound(order_id)
        if record.phase != Phase.FINALIZED or record.event_published_at is None or not record.state.is_final:
            raise ValueError(
                f"order {order_id} has not published its completion event yet (phase {record.phase.value}): "
                "its workflow will"
            )
        event = completion_event(
            record, record.state, list(record.error_hints), record.event_published_at, self._bucket
        )
        self._events.publish(event, replay=True)
        logger.info("completion event replayed", extra={"order_id": order_id, "state": record.state.value})
        return event
