"""REST book polling for tokens whose ticks went stale (B6): one poller per worker process.

A session whose tick feed is stale (:meth:`shared.tickfeed.TickFeed.stale`: the gateway is down,
stalled, or flagged the token) asks for its token with :meth:`RestBooks.want`; once ticks are
trusted again it calls :meth:`RestBooks.unwant`. Whatever the number of stale sessions, the
process stays inside the ``orderbook.*`` budget:

* every ``refresh_sec`` the poller fetches ``GET /book`` for at most ``max_fetch_per_loop``
  wanted tokens, those fetched longest ago (or never) first — so the venue sees at most
  ``max_fetch_per_loop / refresh_sec`` requests a second from this process, and a token is
  refreshed every ``refresh_sec × ceil(wanted / max_fetch_per_loop)`` seconds;
* the latest book of at most ``cache_max_items`` tokens is kept (least recently fetched dropped
  first).

No market socket is opened: the gateway stays the only one (B1).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from shared.config import OrderbookSection
from shared.ticks import Tick
from shared.venue.market_ws import MarketFrameError, decode_rest_book

Fetch = Callable[[str], Awaitable[Any]]


def tick_from_rest_book(token_id: str, raw: Any, seq: int, now_ms: int, default_tick: float = 0.01) -> Tick:
    """A ``GET /book`` reply as a tick: best bid = max(bids), best ask = min(asks) (the venue lists
    the best LAST, so the order is never trusted). Raises MarketFrameError on a malformed book."""
    book = decode_rest_book(raw)
    if book.asset_id and book.asset_id != token_id:
        raise MarketFrameError(f"asked for {token_id[:12]}, got the book of {book.asset_id[:12]}")
    bid = max((lv for lv in book.bids if lv.size > 0), key=lambda lv: lv.price, default=None)
    ask = min((lv for lv in book.asks if lv.size > 0), key=lambda lv: lv.price, default=None)
    return Tick(token_id, seq, bid.price if bid else None, ask.price if ask else None,
                bid.size if bid else 0.0, ask.size if ask else 0.0, book.last_trade_price,
                book.tick_size or default_tick, book.timestamp or now_ms, now_ms, stale=False)


class RestBooks:
    def __init__(self, fetch: Fetch, cfg: OrderbookSection, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch, self.cfg, self.clock = fetch, cfg, clock
        self.wanted: set[str] = set()
        self.fetched_at: dict[str, float] = {}  # token -> when its book was last fetched (monotonic)
        self.cache: OrderedDict[str, Tick] = OrderedDict()
        self.seq = 0
        self.fetches = 0
        self.failures = 0
        self.loops = 0

    # --- what sessions call ---------------------------------------------------------------------

    def want(self, token_id: str) -> None:
        if token_id not in self.wanted:
            self.wanted.add(token_id)
            logger.info("{}: ticks stale; polling REST /book ({} token(s) on REST)", token_id[:12], len(self.wanted))

    def unwant(self, token_id: str) -> None:
        if token_id in self.wanted:
            self.wanted.discard(token_id)
            self.fetched_at.pop(token_id, None)
            logger.info("{}: ticks back; REST polling stopped ({} token(s) on REST)", token_id[:12], len(self.wanted))

    def latest(self, token_id: str) -> Tick | None:
        return self.cache.get(token_id)

    # --- the loop ---------------------------------------------------------------------------

    def due(self) -> list[str]:
        """The tokens this loop fetches: never fetched first, then the longest ago; at most
        ``max_fetch_per_loop``."""
        order = sorted(self.wanted, key=lambda t: (self.fetched_at.get(t, float("-inf")), t))
        return order[:self.cfg.max_fetch_per_loop]

    async def poll_once(self, now_ms: int) -> int:
        tokens = self.due()
        self.loops += 1
        if not tokens:
            return 0
        results = await asyncio.gather(*(self.fetch(t) for t in tokens), return_exceptions=True)
        got = 0
        for token_id, raw in zip(tokens, results, strict=True):
            self.fetches += 1
            self.fetched_at[token_id] = self.clock()
            if isinstance(raw, BaseException):
                self.failures += 1
                logger.warning("REST /book for {} failed: {}", token_id[:12], raw)
                continue
            try:
                self.seq += 1
                tick = tick_from_rest_book(token_id, raw, self.seq, now_ms)
            except MarketFrameError as exc:
                self.failures += 1
                logger.warning("REST /book for {} unusable: {}", token_id[:12], exc)
                continue
            self._store(tick)
            got += 1
        return got

    def _store(self, tick: Tick) -> None:
        self.cache[tick.token_id] = tick
        self.cache.move_to_end(tick.token_id)
        while len(self.cache) > self.cfg.cache_max_items:
            self.cache.popitem(last=False)

    async def run(self, stop: asyncio.Event, now_ms: Callable[[], int]) -> None:
        while not stop.is_set():
            try:
                await self.poll_once(now_ms())
            except Exception:  # a bug here must not end REST polling for the process
                logger.exception("REST book poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.refresh_sec)

    def summary(self) -> dict[str, int]:
        return {"rest_tokens": len(self.wanted), "rest_fetches": self.fetches, "rest_failures": self.failures}
