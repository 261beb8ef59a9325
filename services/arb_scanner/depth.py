"""Depth: the legs' full books from the venue's REST ``POST /books`` (docs/arbitrage.md "Ticks and
depth — a decision").

The gateway keeps top of book only. When a set crosses its threshold on the top levels
(:meth:`Depth.want`), its legs' books come in one request, at most once per
``depth_min_interval_sec`` per set, and :meth:`Depth.run` has the set evaluated again on them.
Execution fetches once more right before trading (:meth:`Depth.fetch`).

Every entry goes through the one decoder of the REST book shape
(:func:`shared.venue.market_ws.decode_rest_book`), which refuses NaN, infinities, prices
outside [0, 1] and negative sizes: a refused book is counted (``bad_books``) and not used, so its
set waits for the next fetch instead of being sized on it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from loguru import logger

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.context import ScanContext
from services.arb_scanner.detect import Level
from shared.venue.market_ws import MarketFrameError, decode_rest_book

Levels = tuple[Level, ...]
Book = tuple[Levels, Levels, float]  # bids best first, asks best first, perf_counter when it was asked for


def book_sides(raw: Any) -> tuple[Levels, Levels]:
    """A REST book entry as (bids, asks), best first, empty levels dropped (the venue lists the
    best last: its order is never trusted). Raises MarketFrameError for a book it refuses."""
    book = decode_rest_book(raw)
    bids = tuple(sorted(((lv.price, lv.size) for lv in book.bids if lv.size > 0), reverse=True))
    asks = tuple(sorted((lv.price, lv.size) for lv in book.asks if lv.size > 0))
    return bids, asks


class Depth:
    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.books: dict[str, Book] = {}
        self.asked: dict[str, float] = {}  # set id -> monotonic time of its last depth request
        self.wanted: set[str] = set()
        self.wake = asyncio.Event()

    def want(self, s: ArbSet) -> None:
        """Ask for the set's books, unless they were asked for within ``depth_min_interval_sec``."""
        if time.monotonic() - self.asked.get(s.id, -math.inf) < self.ctx.cfg.depth_min_interval_sec:
            return
        self.asked[s.id] = time.monotonic()
        self.wanted.add(s.id)
        self.wake.set()

    async def fetch(self, tokens: tuple[str, ...]) -> bool:
        """Every token's book in one request; True when each came back usable from this request."""
        stats = self.ctx.stats
        asked = time.perf_counter()
        try:
            resp = await self.ctx.http.post(await self.ctx.venue_url("clob_url") + "/books",
                                            json=[{"token_id": t} for t in tokens])
            resp.raise_for_status()
            rows = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            stats["depth_errors"] += 1
            logger.warning("depth fetch failed: {}", exc)
            return False
        stats["depth_fetches"] += 1
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or row.get("asset_id") not in tokens:
                continue
            try:
                bids, asks = book_sides(row)
            except MarketFrameError as exc:
                stats["bad_books"] += 1
                logger.warning("book of {} refused: {}", str(row.get("asset_id"))[:12], exc)
                continue
            # stamped with when we asked: a tick that arrives during the request is newer
            self.books[str(row["asset_id"])] = (bids, asks, asked)
        return all(t in self.books and self.books[t][2] == asked for t in tokens)

    async def run(self, stop: asyncio.Event, evaluate: Callable[[ArbSet], Awaitable[None]]) -> None:
        """Fetch what :meth:`want` asked for and have each set ``evaluate``d on its books."""
        while not stop.is_set():
            await self.wake.wait()
            self.wake.clear()
            todo, self.wanted = self.wanted, set()
            for set_id in todo:
                s = self.ctx.sets.get(set_id)
                if s is not None and await self.fetch(s.tokens):
                    await evaluate(s)
