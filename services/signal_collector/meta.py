"""MetaCache: token metadata (A8) fetched once from Gamma, cached in memory and in ``pf:meta:{token}``.

Lookup order: memory, then Redis (another process or an earlier run fetched it), then Gamma
``/markets?clob_token_ids=<token>``, whose answer fills the cache for every token of that market.
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
from shared.polymarket.gamma import GammaMarket, TokenMeta, parse_markets, token_meta

FETCH_TIMEOUT_SEC = 2.0
RETRY_AFTER_SEC = 30.0
MAX_MEMORY = 50_000  # tokens kept in memory; Redis holds them all


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
        meta = self._mem.get(token_id)
        if meta is not None:
            return meta
        meta = TokenMeta.from_hash(await self.redis.hgetall(self.keys.meta(token_id)))  # type: ignore[misc]
        if meta is not None:
            self._remember([meta])
            return meta
        if time.monotonic() - self._failed_at.get(token_id, -RETRY_AFTER_SEC) < RETRY_AFTER_SEC:
            self.misses += 1
            return None
        market = await self._fetch(token_id)
        if market is None:
            self._failed_at[token_id] = time.monotonic()
            self.misses += 1
            return None
        self._failed_at.pop(token_id, None)
        await self.put_market(market)
        return self._mem.get(token_id)

    async def _fetch(self, token_id: str) -> GammaMarket | None:
        self.fetches += 1
        try:
            resp = await self.http.get(f"{self.gamma_url}/markets", params={"clob_token_ids": token_id},
                                       timeout=FETCH_TIMEOUT_SEC)
            body = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("metadata of {}: Gamma unreachable: {}: {}", token_id[:12], type(exc).__name__, exc)
            return None
        if body is None:
            logger.warning("metadata of {}: Gamma answered {}", token_id[:12], resp.status_code)
            return None
        markets, _ = parse_markets(body)
        for m in markets:
            if token_id in m.token_ids:
                return m
        # A new market is on Gamma minutes before the CLOB and vice versa; try again later.
        logger.info("metadata of {}: not on Gamma (yet)", token_id[:12])
        return None
