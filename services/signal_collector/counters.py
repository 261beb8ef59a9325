"""The collector's per-target poll state and its counters (the heartbeat's summary shows them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.signal_collector.cursor import Cursor


def poll_slots(max_requests: int) -> asyncio.Semaphore:
    """Targets polled at once: twice the HTTP slots, so one target's Redis work overlaps another's
    request, while a few hundred targets never exhaust the Redis connection pool."""
    return asyncio.Semaphore(2 * max_requests)


@dataclass
class TargetState:
    cursor: Cursor | None = None  # loaded from Redis on first use
    failures: int = 0
    retry_at: float = 0.0  # monotonic; no request before this


@dataclass
class Counters:
    polls: int = 0
    signals: int = 0
    signals_poll: int = 0
    signals_rtds: int = 0
    signals_chain: int = 0
    duplicates_dropped: int = 0  # offered by one source after the other had emitted it
    below_min_size: int = 0
    malformed: int = 0
    foreign: int = 0  # rows of another wallet than the one asked for
    stale_live: int = 0  # live frames older than the de-dup window (the poller owned that time)
    stale_chain: int = 0  # the same, for chain logs
    http_errors: int = 0
    redis_errors: int = 0
    screen_errors: int = 0
    last_error: str = ""
