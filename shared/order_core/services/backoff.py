"""How long a poller waits before asking Planet again: capped exponential backoff with full jitter."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["BackoffPolicy"]


@dataclass(frozen=True)
class BackoffPolicy:
    """Wait ``uniform(0, min(max_wait, first * multiplier**attempt))`` seconds, ``attempt`` counting from 0.

    The draw is seeded with ``"<order_id>:<attempt>"``: a retried Lambda computes the same wait for the same
    poll (so a redelivery does not reshuffle the schedule), while different orders draw differently, so
    pollers started together spread out instead of hitting Planet's 3 requests/second limit in step.
    Results are whole seconds, at least 1, because Step Functions ``SecondsPath`` takes a positive integer.
    """

    first_wait_seconds: float = 15
    max_wait_seconds: float = 300
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.first_wait_seconds) or self.first_wait_seconds <= 0:
            raise ValueError("first_wait_seconds must be a positive number")
        if not math.isfinite(self.max_wait_seconds) or self.max_wait_seconds < 1:
            raise ValueError("max_wait_seconds must be at least 1")
        if self.max_wait_seconds < self.first_wait_seconds:
            raise ValueError("max_wait_seconds must not be below first_wait_seconds")
        if not math.isfinite(self.multiplier) or self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def ceiling(self, attempt: int) -> float:
        """The largest wait ``attempt`` may draw: ``min(max_wait, first * multiplier**attempt)``."""
        if attempt < 0:
            raise ValueError("attempt must not be negative")
        if self.multiplier == 1:
            return self.first_wait_seconds
        # Past this attempt the cap applies; checking first keeps multiplier**attempt from overflowing
        # (a float power raises OverflowError near attempt 1024 for a multiplier of 2).
        saturating = math.log(self.max_wait_seconds / self.first_wait_seconds, self.multiplier)
        if attempt >= saturating:
            return self.max_wait_seconds
        return min(self.max_wait_seconds, self.first_wait_seconds * self.multiplier**attempt)

    def wait_for(self, order_id: str, attempt: int, retry_after: float | None = None) -> int:
        """Whole seconds to wait before poll ``attempt`` of ``order_id``; at least ``ceil(retry_after)``.

        Never more than ``max_wait_seconds`` unless Planet's Retry-After asks for longer.
        """
        ceiling = self.ceiling(attempt)
        drawn = random.Random(f"{order_id}:{attempt}").uniform(0, ceiling)
        # Round half up, then keep within [1, max_wait]; max_wait may be fractional, the result may not.
        wait = min(max(1, math.floor(drawn + 0.5)), max(1, math.floor(self.max_wait_seconds)))
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            wait = max(wait, math.ceil(retry_after))
        return wait

    def sequence(self, order_id: str, attempts: int) -> list[int]:
        """The waits of the first ``attempts`` polls of ``order_id``, without Retry-After."""
        return [self.wait_for(order_id, attempt) for attempt in range(attempts)]
