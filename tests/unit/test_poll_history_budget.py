"""The poll backoff can never let an order outlive Step Functions' 25,000-event history."""

from __future__ import annotations

import pytest
from order_core.services.poll import MAX_POLLS_PER_EXECUTION, history_safe_policy

EVENTS_PER_POLL = 9  # Wait 2 + Task 5 + Choice 2


@pytest.mark.parametrize("deadline_days", [1, 3, 7, 30])
def test_history_safe_policy_any_deadline_fits_the_execution_history(deadline_days: int) -> None:
    deadline = deadline_days * 86_400
    policy = history_safe_policy(15, 300, deadline)

    mean_wait = policy.max_wait_seconds / 2  # full jitter: uniform(0, cap) once the ramp is over
    assert deadline / mean_wait <= MAX_POLLS_PER_EXECUTION
    assert MAX_POLLS_PER_EXECUTION * EVENTS_PER_POLL < 25_000


def test_history_safe_policy_short_deadline_keeps_the_configured_cap() -> None:
    assert history_safe_policy(15, 300, 3 * 86_400).max_wait_seconds == 300
