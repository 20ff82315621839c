"""One poll of an upstream order: record what Planet says and tell the workflow what to do next.

The workflow polls after a wake (Planet's webhook, the fleet sweep: services/wake.py) or after its wait for
a change timed out. A woken order always GETs itself. After a timeout it GETs only when no fresh sweep
vouches for it (``tracking.own_poll_needed``), so a healthy deployment follows a quiet order with one list
request for the whole fleet instead of one GET per order. ``retry`` tells the workflow that the GET met a
transient fault (429, 5xx, deferred by the pace) and must be tried again after ``wait_seconds``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, Protocol

from order_core.adapters.planet_client import PlanetClient
from order_core.errors import OrderNotFound, UpstreamRateLimited, UpstreamUnavailable
from order_core.errors import UnusableUpstreamOrder as UnusableUpstreamOrder
from order_core.models.lifecycle import FINAL_UPSTREAM
from order_core.models.order import OrderRecord, PollResult, utcnow
from order_core.models.planet import OrderState
from order_core.observability import bind_order, logger
from order_core.ports import OrderStore
from order_core.services.backoff import BackoffPolicy
from order_core.services.tracking import TrackingPolicy, own_poll_needed

#: Step Functions ends an execution at 25,000 history events; one poll costs 9 (Wait 2, Task 5, Choice 2).
#: Keeping an order's polls under this count leaves room for the landing loop and retries.
MAX_POLLS_PER_EXECUTION = 2400


def history_safe_policy(first_wait: int, max_wait: int, deadline_seconds: int) -> BackoffPolicy:
    """The backoff policy, its cap raised if needed so that no order can outlive the execution history.

    With full jitter the mean wait is half the cap, so ``deadline / (cap / 2)`` polls must fit.
    """
    cap = max(max_wait, math.ceil(2 * deadline_seconds / MAX_POLLS_PER_EXECUTION))
    return BackoffPolicy(first_wait_seconds=first_wait, max_wait_seconds=cap)


def _unusable(exc: UpstreamUnavailable) -> bool:
    """True for a 2xx whose body is not an order we can read (PlanetClient reports those as unavailable).

    Only these are counted: a 5xx, a timeout or a refused connection is Planet being away, which the
    polling deadline bounds; an answer that keeps coming back unreadable will not get better by waiting.
    """
    return exc.status is not None and 200 <= exc.status < 300


class LastSweep(Protocol):
    def read(self) -> Any:
        """The fleet sweep's cursor; its ``finished_at`` is when the last sweep finished (None: never)."""
        ...


class PollService:
    def __init__(
        self,
        repo: OrderStore,
        planet: PlanetClient,
        policy: BackoffPolicy,
        deadline: timedelta,
        *,
        max_unusable: int = 5,
        tracking: TrackingPolicy | None = None,
        last_sweep: LastSweep | None = None,
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._policy = policy
        self._deadline = deadline
        self._max_unusable = max_unusable
        self._tracking = tracking or TrackingPolicy()
        self._last_sweep = last_sweep

    def poll(self, order_id: str, attempt: int, *, woken: bool = True) -> PollResult:
        """One poll; ``woken`` false means the wait for a change timed out (nobody said it changed)."""
        record = self._repo.get(order_id)
        if record is None or record.upstream_order_id is None:
            raise OrderNotFound(f"order {order_id} has no upstream order to poll")
        bind_order(record.order_id, record.tenant)
        started = record.submitted_at or record.created_on
        deadline_passed = utcnow() >= started + self._deadline
        if not woken and self._vouched_for(record):
            logger.info("a recent fleet sweep vouches for the order; no GET", extra={"attempt": attempt})
            return self._result(order_id, attempt, record.upstream_state, deadline_passed=deadline_passed)
        try:
            upstream = self._planet.get_order(record.upstream_order_id)
        except UpstreamRateLimited as exc:
            logger.info("Planet rate limited the poll", extra={"retry_after": exc.retry_after})
            wait = self._policy.wait_for(order_id, attempt, exc.retry_after)
            return self._result(
                order_id,
                attempt,
                record.upstream_state,
                deadline_passed=deadline_passed,
                wait=wait,
                retry=True,
            )
        except UpstreamUnavailable as exc:
            if _unusable(exc):
                self._count_unusable(record, exc)
            else:
                logger.info("Planet unavailable; polling again later", extra={"error": str(exc)})
            return self._result(
                order_id, attempt, record.upstream_state, deadline_passed=deadline_passed, retry=True
            )

        state = upstream.state
        if not upstream.state_is_known:
            # Followed as running (not final) until Planet says something we know, or the deadline passes.
            logger.warning(
                "Planet reported an order state the gateway does not know; treating it as not final",
                extra={"reported_state": upstream.reported_state},
            )
        messages = {
            OrderState.queued: upstream.last_message or "Queued at Planet",
            OrderState.running: upstream.last_message or "Running at Planet",
            # Not terminal for our clients until every file is landed and the event is out (DESIGN §3).
            OrderState.success: "Landing results",
            OrderState.partial: "Landing results",
        }
        self._repo.record_poll(
            order_id,
            upstream_state=state,
            last_message=messages.get(state),
            error_hints=list(upstream.error_hints) if upstream.error_hints else None,
        )
        if record.upstream_state != state.value:
            logger.info("upstream state changed", extra={"from": record.upstream_state, "to": state.value})
        return self._result(
            order_id, attempt, state.value, deadline_passed=deadline_passed and not state.is_final
        )

    def _result(
        self,
        order_id: str,
        attempt: int,
        upstream_state: str | None,
        *,
        deadline_passed: bool,
        wait: int | None = None,
        retry: bool = False,
    ) -> PollResult:
        return PollResult(
            attempt=attempt + 1,
            upstream_state=upstream_state,
            wait_seconds=wait if wait is not None else self._policy.wait_for(order_id, attempt),
            deadline_passed=deadline_passed,
            retry=retry,
            watch_seconds=self._tracking.watch_seconds,
        )

    def _vouched_for(self, record: OrderRecord) -> bool:
        """True when the GET after a timed-out wait may be skipped: a fresh sweep would have woken the order.

        Never for a recorded final state (only a GET finishes an order), nor without a sweep cursor.
        """
        if self._last_sweep is None:
            return False
        if record.upstream_state is not None and record.upstream_state in FINAL_UPSTREAM:
            return False
        last_own = record.last_own_poll_at or record.submitted_at  # the create's answer was Planet's word
        return not own_poll_needed(
            utcnow(),
            last_sweep_at=self._last_sweep.read().finished_at,
            last_own_poll_at=last_own,
            policy=self._tracking,
        )

    def _count_unusable(self, record: OrderRecord, exc: UpstreamUnavailable) -> None:
        """One more unreadable answer in a row; at ``max_unusable`` the order fails, naming the problem."""
        count = record.unusable_polls + 1
        logger.warning(
            "Planet answered the poll with an order the gateway cannot read",
            extra={"error": str(exc), "consecutive": count, "limit": self._max_unusable},
        )
        if count >= self._max_unusable:
            raise UnusableUpstreamOrder(
                f"Planet answered {count} polls in a row with an order the gateway cannot read; "
                f"the last one: {exc}"
            )
        self._repo.record_unusable_poll(record.order_id, count)
