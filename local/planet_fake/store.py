"""All state of one fake server, in memory and safe to share between the server's request threads."""

from __future__ import annotations

import pickle
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from .config import FakePlanetConfig

if TYPE_CHECKING:
    from .webhooks import WebhookSender
from .content import DigestCache
from .faults import FaultBook, RequestLog
from .orders import ACTIVE_STATES, Order
from .outputs import build_manifest
from .timefmt import format_time

# Requests per second per API key (reference section 2); storage downloads are not limited.
RATE_LIMITS = {"create": 3, "get": 3, "list": 3, "cancel": 3, "stats": 5, "bulk_cancel": 5, "download": 5}
NOT_CANCELLABLE = "Order not in a cancellable state"


def no_such_order(order_id: str) -> str:
    return f"No such order ID: {order_id}."


class CancelOutcome(Enum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    NOT_CANCELLABLE = "not_cancellable"


class RateLimiter:
    """Sliding one-second window per (API key, operation); refused requests do not count.

    ``clock`` (seconds, monotonic) lets the fleet simulation (``benchmarks/fleet.py``) run it in virtual time.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def admit(self, api_key: str, op: str) -> bool:
        limit = RATE_LIMITS.get(op)
        if limit is None:
            return True
        now = self._clock()
        with self._lock:
            window = self._windows[(api_key, op)]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


class FakePlanetStore:
    def __init__(self, config: FakePlanetConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._orders: dict[str, Order] = {}
        self.digests = DigestCache()
        self.rate_limiter = RateLimiter()
        self.faults = FaultBook()
        self.requests = RequestLog()
        #: Set by whoever serves the fake (server.py, __main__): the orders' webhook calls.
        self.webhooks: WebhookSender | None = None

    @property
    def config(self) -> FakePlanetConfig:
        return self._config

    def update_config(self, changes: dict[str, Any]) -> FakePlanetConfig:
        """Apply and return the new config. Raises pydantic.ValidationError on bad values."""
        with self._lock:
            self._config = self._config.updated(changes)
            return self._config

    def reset(self) -> None:
        """Forget orders, faults, rate-limit windows and the request log; the config is kept."""
        with self._lock:
            self._orders.clear()
        self.digests.clear()
        self.rate_limiter.clear()
        self.faults.clear()
        self.requests.clear()
        if self.webhooks is not None:
            self.webhooks.clear()

    def add_order(self, order: Order) -> None:
        with self._lock:
            self._orders[order.id] = order
        # Hash the generated files now, in the background: the manifest is then ready when the order is.
        self.digests.prefetch(
            [(order.id, f.path, f.generated_size) for f in order.delivered_files() if f.generated]
        )

    def find_order(self, order_id: str) -> Order | None:
        with self._lock:
            return self._orders.get(order_id)

    def order_of(self, order_id: str, api_key: str) -> Order | None:
        """The order if it belongs to `api_key`; another key's order is as unknown as a missing one."""
        order = self.find_order(order_id)
        return order if order is not None and order.api_key == api_key else None

    def orders(self, api_key: str | None = None) -> list[Order]:
        with self._lock:
            return [o for o in self._orders.values() if api_key is None or o.api_key == api_key]

    def cancel(self, order_id: str, api_key: str, now: datetime) -> CancelOutcome:
        # One lock for check and update: a concurrent cancel or bulk cancel cannot both succeed.
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.api_key != api_key:
                return CancelOutcome.NOT_FOUND
            if order.snapshot(now).state != "queued":
                return CancelOutcome.NOT_CANCELLABLE
            order.cancelled = now
            return CancelOutcome.CANCELLED

    def bulk_cancel(self, api_key: str, order_ids: list[str] | None, now: datetime) -> dict[str, Any]:
        """The `result` of POST /bulk/orders/v2/cancel. None cancels every queued order of the key."""
        if order_ids is None:
            order_ids = [o.id for o in self.orders(api_key) if o.snapshot(now).state == "queued"]
        succeeded, failures = 0, []
        for order_id in order_ids:
            outcome = self.cancel(order_id, api_key, now)
            if outcome is CancelOutcome.CANCELLED:
                succeeded += 1
            else:
                message = no_such_order(order_id) if outcome is CancelOutcome.NOT_FOUND else NOT_CANCELLABLE
                failures.append({"message": message, "order_id": order_id})
        return {"failed": {"count": len(failures), "failures": failures}, "succeeded": {"count": succeeded}}

    def stats(self, api_key: str, now: datetime) -> dict[str, dict[str, int]]:
        """Active order counts; every key belongs to one organization."""
        counts = {"organization": dict.fromkeys(ACTIVE_STATES, 0), "user": dict.fromkeys(ACTIVE_STATES, 0)}
        for order in self.orders():
            state = order.snapshot(now).state
            if state in ACTIVE_STATES:
                counts["organization"][state] += 1
                if order.api_key == api_key:
                    counts["user"][state] += 1
        return {
            scope: {f"{state}_orders": count for state, count in by_state.items()}
            for scope, by_state in counts.items()
        }

    def manifest(self, order: Order) -> bytes:
        return build_manifest(order.id, order.delivered_files(), self.digests)

    def export_state(self) -> bytes:
        """The orders, for a restart to find them again (their timelines are wall-clock: an order due to
        finish while the server was down is finished when it comes back). Faults, rate-limit windows and
        the request log are not kept."""
        with self._lock:
            return pickle.dumps(
                {"version": 1, "orders": list(self._orders.values())}, protocol=pickle.HIGHEST_PROTOCOL
            )

    def import_state(self, data: bytes) -> int:
        """Add the orders of ``export_state``; returns how many."""
        state = pickle.loads(data)  # noqa: S301 - written by export_state into the user's own state folder
        for order in state["orders"]:
            self.add_order(order)
        return len(state["orders"])

    def dump(self, now: datetime) -> dict[str, Any]:
        """GET /_fake/orders: every order of every key, oldest first."""
        orders = sorted(self.orders(), key=lambda o: o.created)
        return {
            "count": len(orders),
            "orders": [
                {
                    "id": o.id,
                    "api_key": o.api_key,
                    "name": o.name,
                    "state": o.snapshot(now).state,
                    "created_on": format_time(o.created),
                    "request": o.request,
                }
                for o in orders
            ],
        }
