"""The order store in memory: the same guards as the DynamoDB adapter (``orders_repo.py``), for tests.

Every write holds one lock, as DynamoDB applies one conditional write at a time to an item, and checks its
move against ``models/lifecycle.py``. ``tests/order_store_contract.py`` holds the cases both stores must pass
(run in tests/unit in memory, in tests/integration against DynamoDB under moto), so they cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from order_core.models import changes as store_changes
from order_core.models.lifecycle import (
    ACTIVE_STATES,
    AT_PLANET,
    BEFORE_PLANET,
    FINAL_UPSTREAM,
    Phase,
    can_move,
    may_replace,
)
from order_core.models.order import LandedFile, OrderRecord, utcnow
from order_core.models.planet import OrderState


class IllegalMove(AssertionError):
    """A write tried a move ``models/lifecycle.py`` does not allow: a bug in the store, never input."""


class InMemoryOrderStore:
    """``order_core.ports.OrderStore`` in a dict. ``writes`` logs each successful write (method, changes)."""

    def __init__(self, records: Iterable[OrderRecord] = ()) -> None:
        self._lock = threading.RLock()
        self.records: dict[str, OrderRecord] = {r.order_id: r for r in records}
        self.writes: list[dict[str, Any]] = []

    # --- reads and the record's birth ----------------------------------------------------------------------

    def create(self, record: OrderRecord) -> bool:
        with self._lock:
            if record.order_id in self.records:
                return False
            self.records[record.order_id] = record
            self.writes.append({"write": "create", "order_id": record.order_id, "request": record.request})
            return True

    def get(self, order_id: str) -> OrderRecord | None:
        with self._lock:
            return self.records.get(order_id)

    def delete(self, order_id: str) -> None:
        with self._lock:
            self.records.pop(order_id, None)

    def list_for_tenant(self, tenant: str, *, newest_first: bool = True) -> Iterator[OrderRecord]:
        with self._lock:
            mine = [r for r in self.records.values() if r.tenant == tenant]
        yield from sorted(mine, key=lambda r: r.created_on, reverse=newest_first)

    def count_active(self, state: str, tenant: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.records.values()
                if r.state.value == state and (tenant is None or r.tenant == tenant)
            )

    def active_order_ids(self, page_size: int = 500) -> Iterator[list[str]]:
        with self._lock:
            active = [r.order_id for r in self.records.values() if r.state in ACTIVE_STATES]
        for start in range(0, len(active), page_size):
            yield active[start : start + page_size]

    # --- the lifecycle's writes ----------------------------------------------------------------------------

    def _write(
        self,
        write: str,
        order_id: str,
        changes: dict[str, Any],
        *,
        phases: Collection[Phase] | None = None,
        when: Any = None,
    ) -> OrderRecord | None:
        """Apply ``changes`` if the record exists, is in one of ``phases`` and ``when(record)`` holds."""
        with self._lock:
            record = self.records.get(order_id)
            if record is None or (phases is not None and record.phase not in phases):
                return None
            if when is not None and not when(record):
                return None
            target = changes.get("phase", record.phase)
            if "phase" in changes and not can_move(record.phase, target):
                raise IllegalMove(f"{write}: {record.phase} -> {target}")
            updated = record.model_copy(update=changes)
            # What model_copy skips: validation. Round-trip so a wrong type fails here as in DynamoDB.
            self.records[order_id] = OrderRecord.model_validate(updated.model_dump())
            self.writes.append({"write": write, "order_id": order_id, **changes})
            return self.records[order_id]

    def claim_submission(self, order_id: str, *, lease: timedelta) -> OrderRecord | None:
        with self._lock:
            record = self.records.get(order_id)
            if record is None:
                return None
            now = utcnow()

            def claimable(r: OrderRecord) -> bool:
                if r.rejected:
                    return False
                if r.phase is Phase.ACCEPTED:
                    return not r.cancel_requested
                return r.submit_lease_until is None or r.submit_lease_until < now

            return self._write(
                "claim_submission",
                order_id,
                {
                    "phase": Phase.SUBMITTING,
                    "submit_attempts": record.submit_attempts + 1,
                    "submit_started_at": record.submit_started_at or now,
                    "submit_lease_until": now + lease,
                    "last_modified": now,
                },
                phases=BEFORE_PLANET,
                when=claimable,
            )

    def release_submission(self, order_id: str, *, attempts: int | None = None) -> None:
        changes: dict[str, Any] = {"submit_lease_until": None}
        if attempts is not None:
            changes["submit_attempts"] = max(0, attempts)
        self._write("release_submission", order_id, changes, phases={Phase.SUBMITTING})

    def record_upstream_order(
        self,
        order_id: str,
        *,
        upstream_order_id: str,
        upstream_state: str,
        last_message: str,
        request: dict[str, Any] | None = None,
    ) -> OrderRecord | None:
        changes = {
            **store_changes.upstream_order_recorded(upstream_order_id, upstream_state, last_message, request),
            "submit_lease_until": None,
        }
        return self._write("record_upstream_order", order_id, changes, phases={Phase.SUBMITTING})

    def reject(
        self, order_id: str, hints: list[str], request: dict[str, Any] | None = None
    ) -> OrderRecord | None:
        changes = {**store_changes.rejected(hints, request), "submit_lease_until": None}
        return self._write("reject", order_id, changes, phases=BEFORE_PLANET)

    def forget_credentials(self, order_id: str, request: dict[str, Any]) -> OrderRecord | None:
        return self._write("forget_credentials", order_id, {"request": request})

    def request_cancel(self, order_id: str, request: dict[str, Any] | None = None) -> OrderRecord | None:
        changes = store_changes.cancel_requested(request)
        return self._write(
            "request_cancel",
            order_id,
            changes,
            phases=BEFORE_PLANET,
            when=lambda r: not r.cancel_requested and not r.rejected,
        )

    def record_upstream_cancel(self, order_id: str, upstream_state: str) -> OrderRecord | None:
        changes = store_changes.upstream_cancelled(upstream_state)
        return self._write("record_upstream_cancel", order_id, changes, phases={Phase.SUBMITTED})

    def record_poll(
        self,
        order_id: str,
        *,
        upstream_state: OrderState,
        last_message: str | None = None,
        error_hints: list[str] | None = None,
        own_poll: bool = True,
    ) -> OrderRecord | None:
        with self._lock:
            record = self.records.get(order_id)
            if record is None or record.phase not in AT_PLANET:
                return None
            changes = store_changes.polled(
                record.phase, upstream_state, last_message, error_hints, own_poll=own_poll
            )
            return self._write(
                "record_poll",
                order_id,
                changes,
                phases=AT_PLANET,
                when=lambda current: may_replace(current.upstream_state, upstream_state),
            )

    def record_unusable_poll(self, order_id: str, count: int) -> OrderRecord | None:
        return self._write("record_unusable_poll", order_id, {"unusable_polls": count}, phases=AT_PLANET)

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
        changes = store_changes.results_recorded(
            results, pending, landed_bytes, last_message, delivery_key, error_hints
        )
        return self._write("record_results", order_id, changes, phases={Phase.DELIVERING})

    def watch(self, order_id: str, task_token: str) -> bool | None:
        with self._lock:
            record = self.records.get(order_id)
            if record is None or record.phase not in store_changes.WATCHED:
                return None
            self._write("watch", order_id, store_changes.watching(task_token), phases=store_changes.WATCHED)
            return record.wake_pending or record.upstream_state in FINAL_UPSTREAM

    def take_wake_token(self, order_id: str) -> str | None:
        with self._lock:
            record = self.records.get(order_id)
            if record is None or record.wake_token is None:
                return None
            self._write("take_wake_token", order_id, {"wake_token": None})
            return record.wake_token

    def defer_wake(self, order_id: str) -> bool:
        changes = store_changes.wake_deferred()
        return self._write("defer_wake", order_id, changes, phases=store_changes.WAKE_KEPT) is not None

    def followed_by_upstream_ids(
        self, upstream_order_ids: Iterable[str]
    ) -> dict[str, tuple[str, str | None]]:
        wanted = set(upstream_order_ids)
        with self._lock:
            return {
                r.upstream_order_id: (r.order_id, r.upstream_state)
                for r in self.records.values()
                if r.upstream_order_id in wanted and r.phase is Phase.SUBMITTED
            }

    def claim_completion_event(self, order_id: str, at: datetime) -> OrderRecord | None:
        return self._write(
            "claim_completion_event",
            order_id,
            {"event_published_at": at},
            when=lambda r: r.event_published_at is None,
        )

    def release_completion_event(self, order_id: str) -> None:
        self._write("release_completion_event", order_id, {"event_published_at": None})

    def finalize(
        self, order_id: str, *, state: OrderState, last_message: str, hints: list[str], at: datetime
    ) -> OrderRecord | None:
        changes = store_changes.finalized(state, last_message, hints, at)
        return self._write(
            "finalize", order_id, changes, phases={p for p in Phase if p is not Phase.FINALIZED}
        )
