"""BackoffPolicy: capped exponential growth, full jitter seeded per order and attempt, Retry-After, bounds."""

from __future__ import annotations

import pytest
from order_core.services.backoff import BackoffPolicy

ORDER_IDS = [f"order-{i:04d}" for i in range(300)]


def test_backoff_ceiling_doubles_from_first_wait_then_caps() -> None:
    policy = BackoffPolicy()

    assert [policy.ceiling(a) for a in range(8)] == [15, 30, 60, 120, 240, 300, 300, 300]


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 5, 9])
def test_backoff_waits_stay_within_one_second_and_the_attempt_ceiling(attempt: int) -> None:
    policy = BackoffPolicy()

    waits = [policy.wait_for(order_id, attempt) for order_id in ORDER_IDS]

    assert all(isinstance(w, int) for w in waits)
    assert min(waits) >= 1 and max(waits) <= policy.ceiling(attempt)


def test_backoff_waits_grow_with_attempts_on_average() -> None:
    policy = BackoffPolicy()

    means = [sum(policy.wait_for(o, attempt) for o in ORDER_IDS) / len(ORDER_IDS) for attempt in range(6)]

    assert means == sorted(means)
    assert means[5] > 4 * means[0]


def test_backoff_full_jitter_uses_the_whole_range() -> None:
    policy = BackoffPolicy()

    waits = [policy.wait_for(order_id, 6) for order_id in ORDER_IDS]

    # Full jitter draws from [0, 300]; "equal jitter" would never go below 150.
    assert min(waits) < 30 and max(waits) > 270


def test_backoff_same_order_and_attempt_gives_same_wait_in_any_process() -> None:
    policy = BackoffPolicy()

    # Pinned values: a redelivered message handled by another Lambda process must compute the same waits
    # (the seed is the text "<order_id>:<attempt>", unaffected by PYTHONHASHSEED).
    assert policy.sequence("order-a", 6) == [13, 26, 28, 8, 32, 117]
    assert policy.wait_for("order-a", 5) == BackoffPolicy().wait_for("order-a", 5)


def test_backoff_different_orders_spread_out() -> None:
    policy = BackoffPolicy()

    assert policy.sequence("order-a", 10) != policy.sequence("order-b", 10)
    assert len({policy.wait_for(order_id, 4) for order_id in ORDER_IDS}) > 100


def test_backoff_retry_after_longer_than_draw_is_honoured_even_above_cap() -> None:
    policy = BackoffPolicy()

    assert policy.wait_for("order-a", 0, retry_after=400.2) == 401


def test_backoff_retry_after_shorter_than_draw_does_not_shorten_wait() -> None:
    policy = BackoffPolicy()
    drawn = policy.wait_for("order-a", 5)

    assert policy.wait_for("order-a", 5, retry_after=0.5) == drawn


@pytest.mark.parametrize("retry_after", [float("nan"), float("inf"), -3.0])
def test_backoff_nonsense_retry_after_ignored(retry_after: float) -> None:
    policy = BackoffPolicy()

    assert policy.wait_for("order-a", 2, retry_after=retry_after) == policy.wait_for("order-a", 2)


def test_backoff_draws_that_round_to_zero_wait_one_second() -> None:
    policy = BackoffPolicy(first_wait_seconds=0.4, max_wait_seconds=1, multiplier=1)

    assert {policy.wait_for(order_id, 0) for order_id in ORDER_IDS} == {1}


def test_backoff_fractional_cap_never_exceeded_by_rounding() -> None:
    policy = BackoffPolicy(first_wait_seconds=10, max_wait_seconds=10.6, multiplier=2)

    assert max(policy.wait_for(order_id, 3) for order_id in ORDER_IDS) == 10


@pytest.mark.parametrize("attempt", [1_100, 10**6, 10**18])
def test_backoff_huge_attempt_numbers_capped_without_overflow(attempt: int) -> None:
    for policy in (BackoffPolicy(), BackoffPolicy(multiplier=10.0), BackoffPolicy(multiplier=1.0)):
        wait = policy.wait_for("order-a", attempt)
        assert 1 <= wait <= policy.max_wait_seconds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_wait_seconds": 0},
        {"max_wait_seconds": 0.5, "first_wait_seconds": 0.1},
        {"first_wait_seconds": 400},
        {"multiplier": 0.5},
        {"max_wait_seconds": float("inf")},
    ],
)
def test_backoff_invalid_policy_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_backoff_negative_attempt_refused() -> None:
    with pytest.raises(ValueError):
        BackoffPolicy().wait_for("order-a", -1)
