"""What the services need from the order store, said as what happens to an order.

Each write is one step of the lifecycle (``models/lifecycle.py``) and carries its own guard: it returns the
updated record when the guard held, None when someone else moved the order on meanwhile (another
delivery of the same message, a racing cancel, a second finalizer). The DynamoDB adapter
(``adapters/orders_repo.py``) keeps every condition inside it; ``adapters/memory_store.py`` implements the
same guards in memory for fast tests, and ``tests/order_store_contract.py`` holds both to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from order_core.models.order import LandedFile, OrderRecord
from order_core.models.planet import OrderState


class OrderStore(Protocol):
    # --- reads and the record's birth ----------------------------------------------------------------------

    def create(self, record: OrderRecord) -> bool:
        """Record a new order; False if one with this id already exists (a redelivered message)."""
        ...

    def get(self, order_id: str) -> OrderRecord | None: ...

    def active_order_ids(self, page_size: int = 500) -> Iterable[list[str]]:
        """The ids of every queued or running order, a page at a time (for the reconciler)."""
        ...

    def delete(self, order_id: str) -> None:
        """Take back an order whose intake message could not be sent (it was never seen by anyone)."""
        ...

    # --- submission ----------------------------------------------------------------------------------------

    def claim_submission(self, order_id: str, *, lease: timedelta) -> OrderRecord | None:
        """Write-ahead before a POST: accepted/submitting → submitting, one more attempt counted, the first
        attempt's time kept, other attempts held off for ``lease``. None if it was rejected, cancelled
        before any POST, Planet already has it, or another attempt's lease is running. An order cancelled
        while submitting is granted (an earlier POST may have reached Planet: look, never POST again)."""
        ...

    def release_submission(self, order_id: str, *, attempts: int | None = None) -> None:
        """The attempt ended without an answer from Planet: the next one may claim (and reconciles first).

        ``attempts``: the attempt sent nothing (the deployment's pace deferred it), so the order's count of
        attempts goes back to this value instead of keeping one that never reached Planet."""
        ...

    def record_upstream_order(
        self,
        order_id: str,
        *,
        upstream_order_id: str,
        upstream_state: str,
        last_message: str,
        request: dict[str, Any] | None = None,
    ) -> OrderRecord | None:
        """Planet has the order: submitting → submitted. ``request`` replaces the stored one in the same
        write (the request without its credentials). None unless it was submitting."""
        ...

    def reject(
        self, order_id: str, hints: list[str], request: dict[str, Any] | None = None
    ) -> OrderRecord | None:
        """Refused before reaching Planet: it will end ``failed`` with ``hints``. None once Planet has it."""
        ...

    def forget_credentials(self, order_id: str, request: dict[str, Any]) -> OrderRecord | None:
        """Replace the stored request by ``request`` (its credentials redacted); the phase is untouched."""
        ...

    # --- cancel --------------------------------------------------------------------------------------------

    def request_cancel(self, order_id: str, request: dict[str, Any] | None = None) -> OrderRecord | None:
        """Flag an order Planet has not answered for yet as cancelled (it is then never POSTed again).
        None if Planet has it, or it was already rejected or cancelled."""
        ...

    def record_upstream_cancel(self, order_id: str, upstream_state: str) -> OrderRecord | None:
        """Planet accepted our cancel; polling will see it end. None unless Planet has the order."""
        ...

    # --- polling and landing -------------------------------------------------------------------------------

    def record_poll(
        self,
        order_id: str,
        *,
        upstream_state: OrderState,
        last_message: str | None = None,
        error_hints: list[str] | None = None,
        own_poll: bool = True,
    ) -> OrderRecord | None:
        """What Planet said of a followed order: submitted → delivering once Planet delivered it. Resets the
        count of unreadable polls; ``own_poll`` (a GET of the order, not a sweep's list) stamps
        ``last_own_poll_at``. None unless Planet has it and it is not finalized, and None when the report is
        older than the recorded state (``lifecycle.may_replace``: a stale sweep never takes an order back)."""
        ...

    def record_unusable_poll(self, order_id: str, count: int) -> OrderRecord | None:
        """``count`` polls in a row could not be read. None unless Planet has it and it is not finalized."""
        ...

    def record_results(
        self,
        order_id: str,
        results: Iterable[LandedFile],
        *,
        pending: list[str],
        landed_bytes: int,
        last_message: str | None = None,
        delivery_key: str | None = None,
        error_hints: list[str] | None = None,
    ) -> OrderRecord | None:
        """The files landed so far (and those still coming). None unless the order is delivering."""
        ...

    # --- waiting for a change (services/wake.py) ----------------------------------------------------------

    def watch(self, order_id: str, task_token: str) -> bool | None:
        """Store the workflow's wait (``task_token``) on a followed order, consuming a pending wake.

        True if a wake had come before or Planet's recorded state is already final (the caller ends the wait
        at once), False if not; None unless Planet has the order and it is not finalized (nothing stored)."""
        ...

    def take_wake_token(self, order_id: str) -> str | None:
        """Atomically remove and return the stored wait's token: of several wakers, one gets it."""
        ...

    def defer_wake(self, order_id: str) -> bool:
        """No wait to end: flag the wake so the next wait ends at once. False unless the order is followed or
        being submitted (Planet's webhook can come before the submitter has recorded Planet's order)."""
        ...

    def followed_by_upstream_ids(
        self, upstream_order_ids: Iterable[str]
    ) -> dict[str, tuple[str, str | None]]:
        """Of ``upstream_order_ids``, those of orders whose workflow follows them at Planet (submitted, not
        yet delivering or finalized): upstream id -> (our order id, the upstream state last recorded)."""
        ...

    # --- the end -------------------------------------------------------------------------------------------

    def claim_completion_event(self, order_id: str, at: datetime) -> OrderRecord | None:
        """The right to publish the order's one completion event; None if someone holds it already."""
        ...

    def release_completion_event(self, order_id: str) -> None:
        """Give the claim back after the publish failed, so a retry publishes."""
        ...

    def finalize(
        self, order_id: str, *, state: OrderState, last_message: str, hints: list[str], at: datetime
    ) -> OrderRecord | None:
        """Record the terminal state: any phase → finalized, nothing pending. None if already finalized."""
        ...
