"""The Data API request budget shared by every target's poll (A5).

Two limits, because the venue has two: requests in flight (``max_concurrent_requests``) and
requests per sliding 10 s (``max_requests_per_10s``; the venue allows 200/10 s on ``/trades``).
A 429 is a verdict on our IP, not on one wallet, so :meth:`RequestBudget.pause` holds back
EVERY target until the server's ``Retry-After`` has passed: a storm is ridden out, not fed.

The rate part is a token bucket over an injectable monotonic clock, so it is tested without
sleeping; the waiting uses asyncio only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

WINDOW_SEC = 10.0


class TokenBucket:
    """``per_window`` tokens per ``window`` seconds, bursting up to ``per_window`` (pure)."""

    def __init__(self, per_window: int, window: float = WINDOW_SEC,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_window)
        self.rate = per_window / window
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()
        self.paused_until = 0.0

    def _refill(self) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return now

    def take(self) -> float:
        """Take one token if there is one (returns 0.0), else the seconds until one is due."""
        now = self._refill()
        if now < self.paused_until:
            return self.paused_until - now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class RequestBudget:
    def __init__(self, max_concurrent: int, per_10s: int) -> None:
        self._sem = asyncio.Semaphore(max_concurrent)
        self.bucket = TokenBucket(per_10s)
        self.waits = 0  # times a request had to wait for the budget

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot: rate token taken, concurrency slot held until the block ends."""
        async with self._sem:
            while (wait := self.bucket.take()) > 0:
                self.waits += 1
                await asyncio.sleep(wait)
            yield

    def pause(self, seconds: float) -> None:
        self.bucket.pause(seconds)

    def paused_for(self) -> float:
        return max(0.0, self.bucket.paused_until - self.bucket.clock())
