"""The catalogue in force (E1): Gamma ``/events/keyset`` pages (500 a page, paged by
``after_cursor``, both market systems: docs/venue.md G1-G2) -> :func:`catalogue.build` ->
``pf:arb:catalogue`` (replaced in one MULTI) every ``arbitrage.catalogue_refresh_sec``.

Its tokens go into ``pf:gw:want:arb_scanner`` (+ ``pf:gw:notify``) so the gateway streams them,
and into the tick feed: a new token is subscribed and its ``pf:book`` hash read at once (the
sets are evaluated on it), a token that left is dropped. A set that left the catalogue closes
its open episodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from loguru import logger

from services.arb_scanner import catalogue
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.context import ScanContext, sleep_unless
from services.arb_scanner.detect import Kind
from services.arb_scanner.evaluation import TickEvaluation
from shared.keys import REQUESTER_ARB_SCANNER
from shared.venue.errors import VenueError
from shared.venue.gamma_keyset import BOTH_SYSTEMS, EVENTS_PAGE_MAX, read_keyset


class CatalogueSync:
    def __init__(self, ctx: ScanContext, ticks: TickEvaluation) -> None:
        self.ctx = ctx
        self.ticks = ticks
        self.kinds = {Kind(k) for k in ctx.cfg.kinds}

    async def fetch_events(self) -> list[Any]:
        base = await self.ctx.venue_url("gamma_url")
        return await read_keyset(self.ctx.http, base, "events", [("closed", "false"), *BOTH_SYSTEMS],
                                 EVENTS_PAGE_MAX, self.ctx.cfg.catalogue_max_events)

    async def refresh(self) -> bool:
        """Read Gamma and install what it lists; False (and nothing changed) when Gamma failed."""
        stats = self.ctx.stats
        try:
            rows = await self.fetch_events()
        except (VenueError, httpx.HTTPError, ValueError) as exc:
            stats["catalogue_errors"] += 1
            logger.warning("catalogue refresh failed: {}", exc)
            return False
        sets, skipped = catalogue.build(rows, self.kinds, self.ctx.cfg.min_liquidity)
        await self.install(sets)
        stats["catalogue_skipped"] = len(skipped)
        for why in skipped[:5]:
            logger.info("catalogue skipped: {}", why)
        return True

    async def install(self, sets: list[ArbSet]) -> None:
        r, k, ctx = self.ctx.redis, self.ctx.keys, self.ctx
        wanted = {t for s in sets for t in s.tokens}
        await self.ticks.close_left({s.id for s in sets})
        async with r.pipeline(transaction=True) as p:
            p.delete(k.arb_catalogue())
            for i in range(0, len(sets), 1000):
                p.hset(k.arb_catalogue(), mapping={s.id: s.to_json() for s in sets[i:i + 1000]})
            await p.execute()
        have = set(await r.smembers(k.gw_want(REQUESTER_ARB_SCANNER)))
        new, gone = wanted - have, have - wanted
        if new or gone:
            async with r.pipeline(transaction=True) as p:
                if new:
                    p.sadd(k.gw_want(REQUESTER_ARB_SCANNER), *new)
                if gone:
                    p.srem(k.gw_want(REQUESTER_ARB_SCANNER), *gone)
                p.publish(k.gw_notify(), "arb_scanner")
                await p.execute()
        ctx.sets = {s.id: s for s in sets}
        ctx.by_token = catalogue.index(sets)
        ctx.stats["catalogue_sets"] = len(sets)
        # the feed follows exactly the catalogue's tokens (after a restart the wanted set in Redis
        # may already hold them all: the feed, not Redis, says what is subscribed)
        feed = self.ticks.feed
        followed = set(feed.tokens)
        await feed.remove_many(sorted(followed - wanted))
        await feed.add_many(sorted(wanted - followed))  # each new token's hash is read: its sets evaluated
        logger.info("catalogue: {} sets over {} tokens ({} new, {} gone)", len(sets), len(wanted), len(new), len(gone))

    async def run(self, stop: asyncio.Event) -> None:
        while not await sleep_unless(stop, self.ctx.cfg.catalogue_refresh_sec):
            await self.refresh()
