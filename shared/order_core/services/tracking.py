"""Following many orders within Planet's limits: who wakes a waiting order, and when it checks on its own.

An order at Planet spends hours mostly unchanged. Instead of every order polling on its own clock, its
workflow waits (a Step Functions task token) until something says it changed:

- **Planet's webhook.** The gateway asks Planet for a per-order webhook on an endpoint of ours whose URL
  carries a per-order secret; a call wakes that order at once. Its body is never trusted: the woken order
  asks Planet (one GET), so a forged or replayed call costs one paced GET at most and changes nothing.
- **The fleet sweep.** Once per ``sweep_interval_seconds`` one list request by ``last_modified`` (paged)
  returns every upstream order that changed since the previous sweep, for the whole deployment. Orders that
  reached a final state are woken; other changes (queued → running) are recorded without waking anyone.
- **The order's own check.** A wait that nobody ends times out after ``watch_seconds``; the order then polls
  itself, unless a recent sweep already vouches for it (it would have seen a change), and at least once per
  ``verify_seconds`` whatever the sweeps say, so an order is never followed by the sweep alone.

Polling stays the source of truth: a wake makes the order GET itself; nothing is landed or finalized on
the word of a webhook or of a list page. These are the decisions only, with no I/O, so the functions and
the fleet simulation (``benchmarks/fleet.py``) run the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from order_core.models.lifecycle import FINAL_UPSTREAM

__all__ = ["Followed", "SweepPlan", "TrackingPolicy", "own_poll_needed", "plan_sweep", "sweep_window"]


@dataclass(frozen=True)
class TrackingPolicy:
    #: One fleet sweep (a list by last_modified) per this many seconds.
    sweep_interval_seconds: float = 60.0
    #: Each sweep reaches back this far before the previous one began: clock skew, late writes at Planet.
    sweep_overlap_seconds: float = 120.0
    #: How long a waiting order waits for a wake before it checks on its own (the wait's timeout).
    watch_seconds: int = 3600
    #: A sweep that finished within this many seconds vouches for every order it could have seen.
    sweep_fresh_seconds: float = 300.0
    #: An order polls itself at least this often, whatever the sweeps say.
    verify_seconds: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.sweep_interval_seconds <= 0 or self.watch_seconds < 1:
            raise ValueError("sweep_interval_seconds and watch_seconds must be positive")
        if self.sweep_fresh_seconds < self.sweep_interval_seconds:
            raise ValueError("sweep_fresh_seconds must be at least one sweep interval")


def sweep_window(previous_start: datetime | None, now: datetime, policy: TrackingPolicy) -> datetime:
    """The ``last_modified`` start of a sweep beginning at ``now`` (the list filter is ``<start>/..``).

    Reaches ``sweep_overlap_seconds`` before the previous sweep began, so a change written at Planet while
    that sweep was paging is seen again rather than lost. The first sweep looks back one watch period.
    """
    if previous_start is None:
        return now - timedelta(seconds=policy.watch_seconds)
    return min(previous_start, now) - timedelta(seconds=policy.sweep_overlap_seconds)


@dataclass(frozen=True)
class Followed:
    """What the gateway knows of one order it follows: ours, and the last upstream state it recorded."""

    order_id: str
    upstream_state: str | None


@dataclass(frozen=True)
class SweepPlan:
    #: Our order ids whose upstream order reached a final state: their workflows are woken (they GET).
    wake: tuple[str, ...]
    #: ``(order id, upstream state)`` of orders that changed without ending: recorded, nobody woken.
    record: tuple[tuple[str, str], ...]


def plan_sweep(listed: Iterable[tuple[str, str]], followed: Mapping[str, Followed]) -> SweepPlan:
    """What a sweep does with ``listed`` (``(upstream id, state)`` pairs from one list by last_modified).

    ``followed`` maps the upstream ids of the orders the gateway is following to what it knows of them;
    listed orders it does not follow (another client of the key, an order already finished) are ignored.
    Each order appears once in the plan whatever the number of times the list returned it.
    """
    wake: dict[str, None] = {}
    record: dict[str, str] = {}
    for upstream_id, state in listed:
        known = followed.get(upstream_id)
        if known is None or state == known.upstream_state:
            continue
        if state in FINAL_UPSTREAM:
            wake[known.order_id] = None
            record.pop(known.order_id, None)
        elif known.order_id not in wake:
            record[known.order_id] = state
    return SweepPlan(wake=tuple(wake), record=tuple(record.items()))


def own_poll_needed(
    now: datetime,
    *,
    last_sweep_at: datetime | None,
    last_own_poll_at: datetime | None,
    policy: TrackingPolicy,
) -> bool:
    """True when an order whose wait timed out must GET itself rather than trust the sweeps.

    A fresh sweep would have woken the order had it ended, so a GET would only repeat what the sweep saw;
    but no order goes longer than ``verify_seconds`` without asking Planet itself.
    """
    if last_sweep_at is None or (now - last_sweep_at).total_seconds() > policy.sweep_fresh_seconds:
        return True
    return last_own_poll_at is None or (now - last_own_poll_at).total_seconds() >= policy.verify_seconds
