"""The fleet-tracking decisions (services/tracking.py): who is woken by a sweep, when an order GETs itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from order_core.services.tracking import Followed, TrackingPolicy, own_poll_needed, plan_sweep, sweep_window

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = TrackingPolicy()


def test_plan_sweep_final_change_wakes_the_order_and_running_change_is_only_recorded():
    followed = {"up-a": Followed("a", "queued"), "up-b": Followed("b", "running")}

    plan = plan_sweep([("up-a", "running"), ("up-b", "success")], followed)

    assert plan.wake == ("b",)
    assert plan.record == (("a", "running"),)


def test_plan_sweep_unchanged_and_unknown_orders_are_ignored():
    followed = {"up-a": Followed("a", "running")}

    plan = plan_sweep([("up-a", "running"), ("someone-else", "success")], followed)

    assert plan.wake == () and plan.record == ()


def test_plan_sweep_order_listed_twice_is_woken_once_and_not_also_recorded():
    followed = {"up-a": Followed("a", "queued")}

    plan = plan_sweep([("up-a", "running"), ("up-a", "failed"), ("up-a", "failed")], followed)

    assert plan.wake == ("a",)
    assert plan.record == ()


@pytest.mark.parametrize("final", ["success", "partial", "failed", "cancelled"])
def test_plan_sweep_every_final_state_wakes(final):
    assert plan_sweep([("u", final)], {"u": Followed("a", "running")}).wake == ("a",)


def test_sweep_window_reaches_back_past_the_previous_sweep_start():
    previous = NOW - timedelta(seconds=60)

    start = sweep_window(previous, NOW, POLICY)

    assert start == previous - timedelta(seconds=POLICY.sweep_overlap_seconds)


def test_sweep_window_first_sweep_looks_back_one_watch_period():
    assert sweep_window(None, NOW, POLICY) == NOW - timedelta(seconds=POLICY.watch_seconds)


def test_own_poll_needed_when_no_sweep_ever_ran_or_the_last_one_is_stale():
    recent_own = NOW - timedelta(minutes=5)
    assert own_poll_needed(NOW, last_sweep_at=None, last_own_poll_at=recent_own, policy=POLICY)
    stale = NOW - timedelta(seconds=POLICY.sweep_fresh_seconds + 1)
    assert own_poll_needed(NOW, last_sweep_at=stale, last_own_poll_at=recent_own, policy=POLICY)


def test_own_poll_skipped_while_sweeps_are_fresh_until_the_daily_verification():
    fresh = NOW - timedelta(seconds=30)
    assert not own_poll_needed(
        NOW, last_sweep_at=fresh, last_own_poll_at=NOW - timedelta(hours=1), policy=POLICY
    )
    long_ago = NOW - timedelta(seconds=POLICY.verify_seconds)
    assert own_poll_needed(NOW, last_sweep_at=fresh, last_own_poll_at=long_ago, policy=POLICY)
    assert own_poll_needed(NOW, last_sweep_at=fresh, last_own_poll_at=None, policy=POLICY)


def test_tracking_policy_refuses_a_freshness_shorter_than_one_sweep():
    with pytest.raises(ValueError, match="sweep_fresh_seconds"):
        TrackingPolicy(sweep_interval_seconds=600, sweep_fresh_seconds=300)
