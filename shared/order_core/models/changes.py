"""What each write of an order's lifecycle changes, in one place.

The order store's two implementations (``adapters/orders_repo.py`` on DynamoDB, ``adapters/memory_store.py``
in memory) apply these same changes; each keeps its own guards (a condition expression, or a check under a
lock), which the contract tests in ``tests/order_store_contract.py`` hold to one behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from order_core.models.lifecycle import Phase, phase_after_poll, planet_state
from order_core.models.order import LandedFile, utcnow
from order_core.models.planet import OrderState


def _with(changes: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``changes`` plus each optional field that was given (None: left as it is)."""
    return changes | {name: value for name, value in optional.items() if value is not None}


def upstream_order_recorded(
    upstream_order_id: str, upstream_state: str, last_message: str, request: dict[str, Any] | None
) -> dict[str, Any]:
    now = utcnow()
    changes = {
        "phase": Phase.SUBMITTED,
        "state": planet_state(Phase.SUBMITTED, upstream_state),
        "upstream_order_id": upstream_order_id,
        "upstream_state": upstream_state,
        "submitted_at": now,
        "last_modified": now,
        "last_message": last_message,
    }
    return _with(changes, request=request)


def rejected(hints: list[str], request: dict[str, Any] | None) -> dict[str, Any]:
    changes = {
        "phase": Phase.ACCEPTED,
        "rejected": True,
        "error_hints": hints,
        "last_message": "Order rejected",
        "last_modified": utcnow(),
    }
    return _with(changes, request=request)


def cancel_requested(request: dict[str, Any] | None) -> dict[str, Any]:
    return _with({"cancel_requested": True, "last_modified": utcnow()}, request=request)


def upstream_cancelled(upstream_state: str) -> dict[str, Any]:
    return {
        "upstream_state": upstream_state,
        "state": planet_state(Phase.SUBMITTED, upstream_state),
        "last_modified": utcnow(),
        "last_message": "Cancel success",
    }


def polled(
    current: Phase,
    upstream_state: OrderState,
    last_message: str | None,
    error_hints: list[str] | None,
    *,
    own_poll: bool = True,
) -> dict[str, Any]:
    """A poll's changes to an order in phase ``current``: where the poll moves it depends on where it is.

    ``own_poll``: the order asked Planet itself (a GET), not a fleet sweep that saw it in a list.
    """
    target = phase_after_poll(current, upstream_state)
    now = utcnow()
    changes = {
        "phase": target,
        "state": planet_state(target, upstream_state.value),
        "upstream_state": upstream_state.value,
        "unusable_polls": 0,
        "last_modified": now,
    }
    return _with(
        changes,
        last_message=last_message,
        error_hints=list(error_hints) if error_hints else None,
        last_own_poll_at=now if own_poll else None,
    )


#: The phase in which an order's workflow waits for a change (and may be woken): Planet has it and has not
#: delivered it. Once delivering, no wait follows, so a late or duplicate wake changes nothing.
WATCHED = frozenset({Phase.SUBMITTED})
#: The phases in which a wake with no wait to end is kept for the next wait: also while the order is being
#: submitted, since Planet's webhook for an order created by an ambiguous POST can come before the
#: submitter has found it (by then Planet may have finished it, and no later change would wake it).
WAKE_KEPT = frozenset({Phase.SUBMITTING, Phase.SUBMITTED})


def watching(task_token: str) -> dict[str, Any]:
    """The workflow waits for a change with ``task_token``; a wake that came before is consumed."""
    return {"wake_token": task_token, "wake_pending": False}


def wake_deferred() -> dict[str, Any]:
    """A wake found no wait to end: the next wait ends at once."""
    return {"wake_pending": True}


def results_recorded(
    results: Iterable[LandedFile],
    pending: list[str],
    landed_bytes: int,
    last_message: str | None,
    delivery_key: str | None,
    error_hints: list[str] | None,
) -> dict[str, Any]:
    changes = {
        "results": list(results),
        "pending_results": pending,
        "landed_bytes": landed_bytes,
        "last_modified": utcnow(),
    }
    return _with(changes, last_message=last_message, delivery_key=delivery_key, error_hints=error_hints)


def finalized(state: OrderState, last_message: str, hints: list[str], at: datetime) -> dict[str, Any]:
    return {
        "state": planet_state(Phase.FINALIZED, None, state),
        "phase": Phase.FINALIZED,
        "last_message": last_message,
        "error_hints": hints,
        "pending_results": [],  # whatever had not landed will not: the order is over
        "last_modified": at,
    }
