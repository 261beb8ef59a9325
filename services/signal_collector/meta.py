"""MetaCache: token metadata (A8) fetched once from Gamma, cached in memory and in ``pf:meta:{token}``.

Lookup order: memory, then Redis (another process or an earlier run fetched it), then Gamma
``/markets/keyset?clob_token_ids=<token>`` (``position_ids`` for a v2 position id; docs/venue.md
G1), whose answer fills the cache for every token of that market.
:meth:`MetaCache.get_many` does the same for a batch of trades: one Redis round trip, and one Gamma
request per ``GAMMA_BATCH`` unknown tokens (a burst of new tokens was looked up one request at a
time before, which held signals back for a minute in the scale benchmark).
A failed fetch never holds a signal back for long: it is bounded by ``FETCH_TIMEOUT_SEC``, the
signal goes out without metadata (counted), and the token is not asked for again for
``RETRY_AFTER_SEC`` so an outage is not hammered.
"""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis
from loguru import logger

from shared.keys import Keys
from shared.venue.errors import VenueError
from shared.venue.gamma import GammaMarket, TokenMeta, parse_markets, token_meta
from shared.venue.gamma_keyset import MARKETS_PAGE_MAX, outcome_id_queries, read_keyset

FETCH_TIMEOUT_SEC = 2.0
RETRY_AFTER_SEC = 30.0
MAX_MEMORY = 50_000  # tokens kept in memory; Redis holds them all
GAMMA_BATCH = 50  # ids per Gamma request (the keyset takes at most 100 ids a query)


class MetaCache:
    def __init__(self, redis: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, gamma_url: str) -> None:
        self.redis = redis
        self.keys = keys
        self.http = http
        self.gamma_url = gamma_url.rstrip("/")
        self._mem: dict[str, TokenMeta] = {}
        self._failed_at: dict[str, float] = {}
        self.fetches = 0
        self.misses = 0  # signals sent without metadata

    async def put_market(self, market: GammaMarket) -> None:
        """Cache every token of a market read elsewhere (the screen reads whole lists)."""
        fresh = [token_meta(market, t) for t in market.token_ids if t not in self._mem]
        if not fresh:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for meta in fresh:
                pipe.hset(self.keys.meta(meta.token_id), mapping=meta.to_hash())
            await pipe.execute()
        self._remember(fresh)

    def _remember(self, metas: list[TokenMeta]) -> None:
        if len(self._mem) > MAX_MEMORY:
            self._mem.clear()
        for meta in metas:
            self._mem[meta.token_id] = meta

    async def get(self, token_id: str) -> TokenMeta | None:
        return (await self.get_many([token_id]))[token_id]

    async def get_many(self, token_ids: list[str]) -> dict[str, TokenMeta | None]:
        """Metadata of every token asked for (None: unknown for now, counted as a miss)."""
        wanted = list(dict.fromkeys(token_ids))
        out: dict[str, TokenMeta | None] = {t: self._mem.get(t) for t in wanted}
        unknown = [t for t in wanted if out[t] is None]
        if unknown:
            async with self.redis.pipeline(transaction=False) as pipe:
                for t in unknown:
                    pipe.hgetall(self.keys.meta(t))
                stored = await pipe.execute()
            for t, h in zip(unknown, stored, strict=True):
                out[t] = TokenMeta.from_hash(h)
            self._remember([m for m in (out[t] for t in unknown) if m is not None])
        now = time.monotonic()
        to_fetch = [t for t in wanted if out[t] is None
                    and now - self._failed_at.get(t, -RETRY_AFTER_SEC) >= RETRY_AFTER_SEC]
        for i in range(0, len(to_fetch), GAMMA_BATCH):
            batch = to_fetch[i:i + GAMMA_BATCH]
            for market in await self._fetch_markets(batch):
                await self.put_market(market)
            for t in batch:
                out[t] = self._mem.get(t)
                if out[t] is None:
                    self._failed_at[t] = time.monotonic()
                else:
                    self._failed_at.pop(t, None)
        self.misses += sum(1 for t in token_ids if out[t] is None)
        return out

    async def _fetch_markets(self, token_ids: list[str]) -> list[GammaMarket]:
        """The Gamma markets holding any of ``token_ids`` (one request per id kind; [] when it fails)."""
        rows: list[object] = []
        for query in outcome_id_queries(token_ids):
            self.fetches += 1
            asked = sum(1 for name, _ in query if name != "version")
            try:
                rows += await read_keyset(self.http, self.gamma_url, "markets", query, MARKETS_PAGE_MAX, asked,
                                          timeout=FETCH_TIMEOUT_SEC)
            except VenueError as exc:
                logger.warning("metadata of {} token(s): Gamma: {}", asked, exc)
        markets, _ = parse_markets(rows)
        wanted = set(token_ids)
        return [m for m in markets if wanted & set(m.token_ids)]
