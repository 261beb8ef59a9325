"""A session's reads from the venue, and its waits for the venue to be tradable again.

* :meth:`VenueReads.read` asks again while the venue is throttled or failing (429, 5xx, no
  answer), after a growing pause, so neither a liquidation nor a resting order's watch is
  abandoned over one 429 or a 503 storm; a trading window (the weekly restart's 425, docs/venue.md
  O1-O2) is waited out without spending those attempts, for at most
  ``execution.venue_window_max_sec``.
* The position comes in two readings, both consistent with the session's pending trades
  (:mod:`services.maker_worker.trades`): :meth:`VenueReads.position` is what the venue will hold
  once they settle (its settled balance, plus the shares pending BUYs bring, less what pending
  SELLs take): the position the strategy and the fills account for. :meth:`VenueReads.sellable`
  is what may be sold now: the settled balance less what pending SELLs already sold.
* :class:`VenueWindow` is an order's wait through a trading window: pause (the venue's
  ``Retry-After``, else a backoff) and send the same order again, bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.executor import Executor, is_transient
from services.maker_worker.trades import TradeFollower
from shared.backoff import Backoff

VENUE_READ_ATTEMPTS = 6  # position reads: about 20 s of retries before a session gives up
VENUE_READ_BACKOFF = Backoff(max_attempts=VENUE_READ_ATTEMPTS, initial_backoff_sec=0.5, backoff_multiplier=2.0,
                             max_backoff_sec=8.0, jitter_fraction=0.2)
# the weekly restart lasts about 90 s, its post-only window 2 minutes (O1-O2): ask every few seconds
WINDOW_BACKOFF = Backoff(max_attempts=1_000, initial_backoff_sec=1.0, backoff_multiplier=2.0,
                         max_backoff_sec=8.0, jitter_fraction=0.2)
CONSISTENT_READS = 3  # position reads retried while a pending trade settles under them

T = TypeVar("T")


def restriction_of(exc: BaseException) -> str:
    """The trading window a venue error names ("" when none)."""
    return str(getattr(exc, "restriction", "") or "")


class VenueReads:
    def __init__(self, executor: Executor, token_id: str, follower: TradeFollower, stop_requested: asyncio.Event,
                 window_max_s: float) -> None:
        self.ex, self.token_id, self.follower = executor, token_id, follower
        self.stop_requested = stop_requested
        self.window_max_s = window_max_s

    async def read(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
        attempt, window = 0, VenueWindow(self.window_max_s, self.pause)
        while True:
            try:
                return await read()
            except Exception as exc:
                restriction = restriction_of(exc)
                if restriction and not self.stop_requested.is_set() and \
                        await window.wait(restriction, getattr(exc, "retry_after", None), what):
                    continue  # the venue restarting: not an attempt
                attempt += 1
                if not is_transient(exc) or attempt >= VENUE_READ_ATTEMPTS or self.stop_requested.is_set():
                    raise
                delay = VENUE_READ_BACKOFF.delay(attempt)
                logger.warning("{}: {} failed ({}); retry {} in {:.1f}s", self.token_id, what, exc, attempt, delay)
                await self.pause(delay)

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once on STOP (a drain must not wait out an order cycle)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)

    async def settled(self) -> float:
        """The shares the wallet holds, settled (the venue's balance)."""
        return await self.read("position read", lambda: self.ex.position(self.token_id))

    async def _consistent(self) -> float:
        """The settled balance, read between two refreshes of the pending trades that saw no
        change: a trade settling between the reads would count twice (or not at all)."""
        held = 0.0
        for _ in range(CONSISTENT_READS):
            await self.follower.refresh()
            seen = self.follower.changes
            held = await self.settled()
            await self.follower.refresh()
            if self.follower.changes == seen:
                break
        return held

    async def position(self) -> float:
        """What the venue holds once the session's pending trades settle (the matched position)."""
        return (await self.holdings())[0]

    async def sellable(self) -> float:
        """What may be sold now: the settled shares less what pending SELLs already sold."""
        return (await self.holdings())[1]

    async def holdings(self) -> tuple[float, float]:
        """(:meth:`position`, :meth:`sellable`) from one consistent read of the balance."""
        held = await self._consistent()
        pending = self.follower.pending
        return round(held + pending.delta(), 6), max(0.0, round(held - pending.selling(), 6))


class VenueWindow:
    """One order's (or read's) wait through the venue's trading windows: a restart (425), then its
    post-only window. Nothing happened at the venue, so the same request may go again; no attempt
    is spent and no price conceded. -> False once the window has lasted ``max_s``."""

    def __init__(self, max_s: float, pause: Callable[[float], Awaitable[None]]) -> None:
        self.max_s, self.pause = max_s, pause
        self.since: float | None = None
        self.waits = 0

    async def wait(self, restriction: str, retry_after: float | None, what: str = "order") -> bool:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            logger.warning("venue {}: {} waits for the window to end (at most {:.0f}s)", restriction, what, self.max_s)
        if now - self.since >= self.max_s:
            return False
        self.waits += 1
        metrics.VENUE_WINDOW_WAITS.labels(restriction).inc()
        await self.pause(min(retry_after or WINDOW_BACKOFF.delay(self.waits), max(0.0, self.max_s - (now - self.since))))
        return True

    def over(self) -> None:
        """A request went through: the next window starts its own clock."""
        self.since, self.waits = None, 0
