"""One pace for the whole deployment: every upstream call takes a slot of its endpoint's Planet limit.

Planet limits requests per API key and endpoint (Create 3/s, Get 3/s, List 3/s, Cancel 3/s, Bulk cancel 5/s,
Stats 5/s, Download 5/s, Spec 10/s: reference/planet-orders-api.md §2). Every function of a deployment shares
one key, so the limit belongs to the deployment, not to an order or a Lambda: each call first reserves the
next free slot of its endpoint in a shared store (DynamoDB in AWS), one slot every ``1 / (limit · share)``
seconds. A caller whose slot is near waits for it; one whose slot is further than it may wait takes nothing
and defers, exactly as if Planet had answered 429 (``services`` already know how to wait that out).

A slot is kept only if the store answered in time to use it: the wait is measured from the answer, and a
caller whose slot had already passed by more than half the margin ``share`` leaves takes another (a slow
store must not turn evenly spaced slots into a burst at Planet).

A 429 from Planet holds the endpoint for the whole fleet: the next free slot moves past its Retry-After (at
least ``min_hold_seconds``), so every caller queues behind it instead of each order meeting its own 429.

The arithmetic lives here, once, over a ``PaceStore`` port; ``InMemoryPaceStore`` serves tests and the fleet
simulation (``benchmarks/fleet.py``), the DynamoDB adapter serves the functions. Time is a float of seconds
from a caller-supplied clock, so the simulation can run it in virtual time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "PLANET_LIMITS",
    "InMemoryPaceStore",
    "PaceStore",
    "Pacer",
    "Reservation",
]

#: How many times a caller whose slot was over before it could use it (the store answered or its sleep
#: ended too late) takes a new one before deferring.
MAX_LATE_RETAKES = 2

#: Requests per second per API key, by endpoint (Planet's "Rate Limits" table).
PLANET_LIMITS: Mapping[str, float] = {
    "create": 3.0,
    "get": 3.0,
    "list": 3.0,
    "cancel": 3.0,
    "bulk_cancel": 5.0,
    "stats": 5.0,
    "download": 5.0,
    "spec": 10.0,
}


class PaceStore(Protocol):
    """Where the next free slot of each endpoint lives, shared by every caller of one deployment."""

    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        """Atomically take the next slot of ``key``: ``slot = max(next_free, now)``.

        If ``slot - now > horizon`` nothing is taken and None is returned. Otherwise ``next_free`` becomes
        ``slot + interval`` and ``slot`` is returned.
        """
        ...

    def hold(self, key: str, until: float) -> None:
        """Atomically move ``key``'s next free slot to at least ``until`` (it never moves back)."""
        ...

    def next_free(self, key: str) -> float:
        """The next free slot of ``key`` (0 when it was never used); read-only, for reports."""
        ...


class InMemoryPaceStore:
    """A ``PaceStore`` in one process: tests, the local fake's clients and the fleet simulation."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
        with self._lock:
            slot = max(self._next.get(key, 0.0), now)
            if slot - now > horizon:
                return None
            self._next[key] = slot + interval
            return slot

    def hold(self, key: str, until: float) -> None:
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), until)

    def next_free(self, key: str) -> float:
        with self._lock:
            return self._next.get(key, 0.0)


@dataclass(frozen=True)
class Reservation:
    """One ``Pacer.reserve``: send after ``wait_seconds``, or (``taken`` false) defer that long."""

    endpoint: str
    taken: bool
    wait_seconds: float
    #: Taken: the latest time (the pacer's clock) the request may still go out on this slot.
    send_by: float = math.inf


class Pacer:
    """Slots for upstream calls, shared through ``store`` by every caller that uses the same ``scope``.

    ``scope`` names the API key (a fingerprint, never the key); ``share`` is the part of Planet's limit the
    deployment allows itself (the rest absorbs Planet's window alignment and anyone else using the key).
    """

    def __init__(
        self,
        store: PaceStore,
        *,
        scope: str = "default",
        limits: Mapping[str, float] = PLANET_LIMITS,
        share: float = 0.8,
        min_hold_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        unknown_rates = [name for name, rate in limits.items() if not (math.isfinite(rate) and rate > 0)]
        if unknown_rates:
            raise ValueError(f"limits must be positive rates: {', '.join(sorted(unknown_rates))}")
        self._store = store
        self._scope = scope
        self._limits = dict(limits)
        self._share = share
        self._min_hold = min_hold_seconds
        self._clock = clock
        # Slots 1 / (limit · share) apart put Planet's limit + 1 requests (1 / share - 1) s beyond one second
        # (0.25 s at 0.8): a request may be sent at most half of that after its slot (and 50 ms at share 1).
        self._max_late = max((1 / share - 1) / 2, 0.05)

    def interval(self, endpoint: str) -> float:
        """Seconds between two slots of ``endpoint`` for the whole deployment."""
        try:
            rate = self._limits[endpoint]
        except KeyError:
            raise ValueError(f"no Planet limit is known for endpoint {endpoint!r}") from None
        return 1.0 / (rate * self._share)

    def reserve(self, endpoint: str, max_wait_seconds: float) -> Reservation:
        """Take ``endpoint``'s next slot if it comes within ``max_wait_seconds``; otherwise take nothing.

        Taken: the caller waits ``wait_seconds`` and sends. Not taken: the caller defers at least
        ``wait_seconds`` (the time until the endpoint's next free slot) and asks again.
        """
        key = self._key(endpoint)
        interval = self.interval(endpoint)
        for _ in range(1 + MAX_LATE_RETAKES):
            slot = self._store.reserve(key, self._clock(), interval, max(0.0, max_wait_seconds))
            # Measured from the store's answer, not from the question: a slow store (DynamoDB throttled, a
            # busy local stack) must not push the send past the slot by its own latency.
            answered = self._clock()
            if slot is None:
                wait = max(0.0, self._store.next_free(key) - answered)
                return Reservation(endpoint, taken=False, wait_seconds=wait)
            if answered - slot <= self._max_late:
                return Reservation(
                    endpoint,
                    taken=True,
                    wait_seconds=max(0.0, slot - answered),
                    send_by=slot + self._max_late,
                )
            # The answer came after the slot had passed: sent now, the request could land in the same
            # second as the slots after it. The missed slot stays unused (that never harms Planet's limit).
        return Reservation(endpoint, taken=False, wait_seconds=interval)

    def rate_limited(self, endpoint: str, retry_after: float | None = None) -> float:
        """Planet answered 429 on ``endpoint``: hold it for the whole fleet. Returns the hold in seconds."""
        hold = self._min_hold
        if retry_after is not None and math.isfinite(retry_after) and retry_after > hold:
            hold = retry_after
        self._store.hold(self._key(endpoint), self._clock() + hold)
        return hold

    def on_time(self, reservation: Reservation) -> bool:
        """True while a taken slot may still be used: after its wait, a caller that woke too late (a busy
        process, a long garbage collection) takes another slot rather than crowd the ones after it."""
        return self._clock() <= reservation.send_by

    def _key(self, endpoint: str) -> str:
        return f"pace#{self._scope}#{endpoint}"
