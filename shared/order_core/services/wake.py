"""Waking a waiting order: Planet's webhook and the fleet sweep end its workflow's wait for a change.

A followed order's workflow waits in ``WaitForChange`` (a task token, statemachine/order_workflow.asl.json)
until someone says its order changed, or until the wait times out (``watch_seconds``). Whoever wakes it
takes the stored token off the record (one conditional write: of two wakers one gets it) and ends the wait;
a wake with no wait stored (the workflow is between two waits) is kept as ``wake_pending``, which the next
wait consumes by ending itself at once. A woken order always GETs itself (services/poll.py): nothing here
records or finalizes anything on a waker's word, except what the sweep read from Planet's own list.

The decisions (what a sweep wakes, when a sweep vouches for an order) are ``services/tracking.py``'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

from order_core.adapters.planet_client import PlanetClient
from order_core.errors import UpstreamError
from order_core.models.order import planet_time, utcnow
from order_core.models.planet import OrderState
from order_core.observability import logger, metrics
from order_core.ports import OrderStore
from order_core.services.tracking import Followed, TrackingPolicy, plan_sweep, sweep_window

__all__ = ["FleetSweep", "PlanetHooks", "SweepReport", "WakeOutcome", "WakeService"]


class TaskWaker(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """End the wait of ``task_token``; False if that wait is already over."""
        ...


class WakeOutcome(StrEnum):
    WOKEN = "woken"  # a waiting workflow was told: it GETs its order now
    DEFERRED = "deferred"  # no wait was stored: the next one ends at once
    NOT_FOLLOWED = "not_followed"  # unknown order, or one the gateway no longer follows: nothing changed


class WakeService:
    def __init__(self, repo: OrderStore, tasks: TaskWaker) -> None:
        self._repo = repo
        self._tasks = tasks

    def watch(self, order_id: str, task_token: str) -> None:
        """The workflow starts waiting for a change of ``order_id`` with ``task_token``."""
        pending = self._repo.watch(order_id, task_token)
        if pending is None:
            # Not followed any more (or gone): nothing will wake it, so the wait ends now and the poll that
            # follows reports what there is.
            logger.info("order not followed; its wait ends at once", extra={"order_id": order_id})
            self._tasks.succeed(task_token, {"woken": True, "by": "watch"})
        elif pending:
            logger.info("a wake came before the wait; ending it at once", extra={"order_id": order_id})
            self.wake(order_id, by="pending")

    def wake(self, order_id: str, *, by: str) -> WakeOutcome:
        """Tell ``order_id``'s waiting workflow that its order changed (``by``: who says so)."""
        outcome = self._send(order_id, by)
        if outcome is None:
            if not self._repo.defer_wake(order_id):
                return WakeOutcome.NOT_FOLLOWED
            # A wait may have been stored between our look and the flag: end it (the flag then costs at most
            # one extra poll, never a lost wake).
            outcome = self._send(order_id, by)
        metrics.add_metric(name="OrdersWoken", unit="Count", value=1)
        return outcome or WakeOutcome.DEFERRED

    def _send(self, order_id: str, by: str) -> WakeOutcome | None:
        token = self._repo.take_wake_token(order_id)
        if token is None:
            return None
        if self._tasks.succeed(token, {"woken": True, "by": by}):
            return WakeOutcome.WOKEN
        # That wait was over (timed out, its execution stopped): keep the wake for the next one.
        metrics.add_metric(name="StaleWakeTokens", unit="Count", value=1)
        logger.info("the stored wait was already over; the wake is kept", extra={"order_id": order_id})
        return None


class SweepCursors(Protocol):
    def read(self) -> Any:
        """The cursor: ``started_at`` and ``finished_at`` of the last finished sweep (None if none)."""
        ...

    def finished(self, started_at: datetime, finished_at: datetime) -> None: ...


@dataclass
class SweepReport:
    listed: int = 0
    woken: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    completed: bool = False


#: The list page size a sweep asks for: fewer list requests per sweep. Planet's own maximum is not
#: documented; a smaller page from Planet only means more pages (the sweep follows ``_links.next``).
SWEEP_PAGE_SIZE = 500
#: Upstream ids looked up in the order store at a time.
_LOOKUP_BATCH = 100
_MESSAGES = {OrderState.queued: "Queued at Planet", OrderState.running: "Running at Planet"}


class FleetSweep:
    """One list of the upstream orders changed since the last sweep, for the whole deployment."""

    def __init__(
        self,
        repo: OrderStore,
        planet: PlanetClient,
        cursors: SweepCursors,
        waker: WakeService,
        policy: TrackingPolicy,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._cursors = cursors
        self._waker = waker
        self._policy = policy
        self._clock = clock

    def sweep(self) -> SweepReport:
        report = SweepReport()
        started = self._clock()
        since = sweep_window(self._cursors.read().started_at, started, self._policy)
        listed: list[tuple[str, str]] = []
        try:
            for order in self._planet.list_orders(
                last_modified=f"{planet_time(since)}/..", page_size=SWEEP_PAGE_SIZE
            ):
                if order.state_is_known:
                    listed.append((order.id, order.state.value))
        except UpstreamError as exc:
            # The cursor stays: the next sweep reaches back to the last one that finished.
            logger.warning("fleet sweep could not list Planet's orders", extra={"error": str(exc)})
            metrics.add_metric(name="SweepsIncomplete", unit="Count", value=1)
            return report
        report.listed = len(listed)
        ids = list(dict.fromkeys(upstream_id for upstream_id, _ in listed))
        followed: dict[str, Followed] = {}
        for start in range(0, len(ids), _LOOKUP_BATCH):
            found = self._repo.followed_by_upstream_ids(ids[start : start + _LOOKUP_BATCH])
            followed.update({up: Followed(order_id, state) for up, (order_id, state) in found.items()})
        plan = plan_sweep(listed, followed)
        for order_id, state in plan.record:
            upstream_state = OrderState(state)
            if self._repo.record_poll(
                order_id,
                upstream_state=upstream_state,
                last_message=_MESSAGES.get(upstream_state),
                own_poll=False,
            ):
                report.recorded.append(order_id)
        for order_id in plan.wake:
            self._waker.wake(order_id, by="sweep")
            report.woken.append(order_id)
        self._cursors.finished(started, self._clock())
        report.completed = True
        logger.info(
            "fleet sweep",
            extra={"since": planet_time(since), "listed": report.listed, "woken": len(report.woken)},
        )
        return report


#: The path of Planet's per-order webhook under the API's public root (template.yaml, PlanetHookFunction).
HOOK_PATH = "hooks/planet"
_HOOK_LABEL = b"planet-order-webhook/v1"


class PlanetHooks:
    """Planet's per-order webhook: its URL (asked for at create), and what a call to it does.

    The URL carries ``HMAC-SHA256(key, order_id)`` (url-safe base64), the key derived from a deployment
    secret with its own label, so that token is good for one order's hook and for nothing else. A call
    with a wrong token, or for an order the gateway does not follow, changes nothing. The body is never
    read: the woken order asks Planet itself.
    """

    def __init__(self, secret: str, waker: WakeService | None = None) -> None:
        self._key = hmac.new(secret.encode(), _HOOK_LABEL, hashlib.sha256).digest()
        self._waker = waker

    def token(self, order_id: str) -> str:
        mac = hmac.new(self._key, order_id.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def url(self, base_url: str, order_id: str) -> str:
        return f"{base_url.rstrip('/')}/{HOOK_PATH}/{quote(order_id, safe='')}/{self.token(order_id)}"

    def webhook(self, base_url: str, order_id: str) -> dict[str, Any]:
        """The ``notifications`` block of the upstream create: one call per order change (``per_order``)."""
        return {"webhook": {"url": self.url(base_url, order_id), "per_order": True}}

    def genuine(self, order_id: str, token: str) -> bool:
        if not order_id or len(order_id) > 200 or len(token) > 100:
            return False
        return hmac.compare_digest(self.token(order_id).encode(), token.encode("utf-8", "replace"))

    def received(self, order_id: str, token: str) -> WakeOutcome | None:
        """A call from Planet: None when its token is wrong (nothing changed), else what the wake did."""
        if not self.genuine(order_id, token):
            metrics.add_metric(name="PlanetHooksRefused", unit="Count", value=1)
            return None
        if self._waker is None:
            raise RuntimeError("PlanetHooks needs a waker to receive calls")
        return self._waker.wake(order_id, by="planet_webhook")
