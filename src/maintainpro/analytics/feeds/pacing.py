"""Rate limits as published: at most N units in any window of so many seconds (pure, clocked).

An exact sliding log rather than a token bucket: a bucket that starts full with the limit and
refills at limit/period lets up to twice the limit through in its first period, which a server
counting "120 requests per minute" answers with 429.
"""

from __future__ import annotations

import collections
from collections.abc import Callable


class RateWindow:
    """At most ``limit`` units (requests, rows) in any ``period_s`` seconds."""

    def __init__(self, limit: int, period_s: float, clock: Callable[[], float]) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a rate window needs a positive limit and period")
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._log: collections.deque[tuple[float, int]] = collections.deque()
        self._used = 0

    def _prune(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.period_s:
            self._used -= self._log.popleft()[1]

    @property
    def used(self) -> int:
        """Units taken within the current window."""
        self._prune(self._clock())
        return self._used

    def wait_for(self, amount: int = 1) -> float:
        """Seconds until ``amount`` units fit (0 when they fit now); capped at the limit."""
        amount = min(amount, self.limit)
        now = self._clock()
        self._prune(now)
        excess = self._used + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for at, units in self._log:
            freed += units
            if freed >= excess:
                return max(0.0, at + self.period_s - now)
        return self.period_s  # unreachable while amount <= limit; kept for safety

    def take(self, amount: int = 1) -> None:
        """Record ``amount`` units used now."""
        now = self._clock()
        self._prune(now)
        self._log.append((now, amount))
        self._used += amount
