"""Pacing: token buckets that hold each relay to its per-second and per-hour limits.

A bucket is used by reservation: each message takes a token at once (the balance may go
below zero) and waits until the balance it left behind is paid back. Concurrent connections
are thus spaced exactly ``1 / rate`` apart without polling, and a run reaches the configured
rate whenever the relay is faster than it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up; starts with ``tokens``."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        tokens: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs a positive rate and room for one token")
        self.rate, self.capacity, self._clock = rate, capacity, clock
        self._tokens = capacity if tokens is None else min(tokens, capacity)
        self._at = clock()
        self._base = (rate, capacity)
        self._share = 1.0

    def share(self, fraction: float) -> None:
        """Run at ``fraction`` of the configured rate (and allowance), from now on: the
        tokens saved so far are scaled alike, so shares of a common limit add up to it."""
        if fraction <= 0 or fraction == self._share:
            return
        self._refill()
        factor = fraction / self._share
        rate, capacity = self._base
        self.rate, self.capacity = rate * fraction, max(1.0, capacity * fraction)
        self._tokens = min(self.capacity, self._tokens * factor)
        self._share = fraction

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def reserve(self) -> float:
        """Take one token; return how long to wait before using it (0 if available now)."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class RateLimiter:
    """A relay's limits: per second (no burst beyond one message) and per hour.

    ``sent_last_hour`` is what the relay already took in the past hour (from the ledger), so a
    run started right after another does not get a fresh hourly allowance.
    """

    def __init__(
        self,
        per_second: float | None = None,
        per_hour: float | None = None,
        *,
        sent_last_hour: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.per_second, self.per_hour = per_second or None, per_hour or None
        self._buckets: list[TokenBucket] = []
        if self.per_second:
            self._buckets.append(TokenBucket(self.per_second, 1, clock=clock))
        if self.per_hour:
            self._buckets.append(
                TokenBucket(
                    self.per_hour / 3600, self.per_hour, self.per_hour - sent_last_hour, clock=clock
                )
            )

    @property
    def limit(self) -> float | None:
        """The sustained rate in messages per second this limiter allows, None if unlimited."""
        rates = [b.rate for b in self._buckets]
        return min(rates) if rates else None

    def set_share(self, fraction: float) -> None:
        """Hold this process to ``fraction`` of the relay's limits (several workers share a
        relay: each takes 1 / their number)."""
        for bucket in self._buckets:
            bucket.share(fraction)

    async def acquire(self) -> None:
        wait = max((bucket.reserve() for bucket in self._buckets), default=0.0)
        if wait > 0:
            await asyncio.sleep(wait)
