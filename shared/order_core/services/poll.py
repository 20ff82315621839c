"""One poll of an upstream order: record what Planet says and tell the workflow how long to wait."""

from __future__ import annotations

import math
from datetime import timedelta

from order_core.adapters.orders_repo import OrdersRepository
from order_core.adapters.planet_client import PlanetClient
from order_core.errors import OrderNotFound, UpstreamRateLimited, UpstreamUnavailable
from order_core.models.order import Phase, PollResult, utcnow
from order_core.models.planet import OrderState
from order_core.observability import bind_order, logger
from order_core.services.backoff import BackoffPolicy

#: Step Functions ends an execution at 25,000 history events; one poll costs 9 (Wait 2, Task 5, Choice 2).
#: Keeping an order's polls under this count leaves room for the landing loop and retries.
MAX_POLLS_PER_EXECUTION = 2400


def history_safe_policy(first_wait: int, max_wait: int, deadline_seconds: int) -> BackoffPolicy:
    """The backoff policy, its cap raised if needed so that no order can outlive the execution history.

    With full jitter the mean wait is half the cap, so ``deadline / (cap / 2)`` polls must fit.
    """
    cap = max(max_wait, math.ceil(2 * deadline_seconds / MAX_POLLS_PER_EXECUTION))
    return BackoffPolicy(first_wait_seconds=first_wait, max_wait_seconds=cap)


class PollService:
    def __init__(
        self, repo: OrdersRepository, planet: PlanetClient, policy: BackoffPolicy, deadline: timedelta
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._policy = policy
        self._deadline = deadline

    def poll(self, order_id: str, attempt: int) -> PollResult:
        record = self._repo.get(order_id)
        if record is None or record.upstream_order_id is None:
            raise OrderNotFound(f"order {order_id} has no upstream order to poll")
        bind_order(record.order_id, record.tenant)
        started = record.submitted_at or record.created_on
        deadline_passed = utcnow() >= started + self._deadline
        try:
            upstream = self._planet.get_order(record.upstream_order_id)
        except UpstreamRateLimited as exc:
            logger.info("Planet rate limited the poll", extra={"retry_after": exc.retry_after})
            wait = self._policy.wait_for(order_id, attempt, exc.retry_after)
            return PollResult(
                attempt=attempt + 1,
                upstream_state=record.upstream_state,
                wait_seconds=wait,
                deadline_passed=deadline_passed,
            )
        except UpstreamUnavailable as exc:
            logger.info("Planet unavailable; polling again later", extra={"error": str(exc)})
            return PollResult(
                attempt=attempt + 1,
                upstream_state=record.upstream_state,
                wait_seconds=self._policy.wait_for(order_id, attempt),
                deadline_passed=deadline_passed,
            )

        state = upstream.state
        changes: dict[str, object] = {"upstream_state": state.value, "last_modified": utcnow()}
        if state is OrderState.queued:
            changes["last_message"] = upstream.last_message or "Queued at Planet"
        elif state is OrderState.running:
            changes.update(
                state=OrderState.running, last_message=upstream.last_message or "Running at Planet"
            )
        elif state in (OrderState.success, OrderState.partial):
            # Not terminal for our clients until every file is landed and the event is out (DESIGN §3).
            changes.update(state=OrderState.running, phase=Phase.DELIVERING, last_message="Landing results")
        if upstream.error_hints:
            changes["error_hints"] = list(upstream.error_hints)
        self._repo.update(order_id, changes, only_in_phases=(Phase.SUBMITTED, Phase.DELIVERING))
        if record.upstream_state != state.value:
            logger.info("upstream state changed", extra={"from": record.upstream_state, "to": state.value})
        return PollResult(
            attempt=attempt + 1,
            upstream_state=state.value,
            wait_seconds=self._policy.wait_for(order_id, attempt),
            deadline_passed=deadline_passed and not state.is_final,
        )
