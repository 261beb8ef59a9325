"""Read-only views of the fleet and its tokens, for the rooms that decide from them.

A token row is ``(state, owner, epoch, fields)``: the three fields every rule reads, and the
whole hash for the rest.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.fleet import ACTIVE_STATES, WorkerView, read_workers
from shared.keys import Keys

TokenRow = tuple[str, str, int, dict[str, str]]


class FleetViews:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def workers(self) -> list[WorkerView]:
        """Every registered worker with liveness, capacity and assigned-token count: two round
        trips whatever the number of tokens."""
        return await read_workers(self.redis, self.keys)

    async def views_of(self, token_ids: list[str]) -> dict[str, TokenRow]:
        async with self.redis.pipeline(transaction=False) as p:
            for token_id in token_ids:
                p.hgetall(self.keys.token(token_id))
            rows = await p.execute()
        return {t: (h.get("state", ""), h.get("owner", ""), int(h.get("epoch", 0) or 0), h)
                for t, h in zip(token_ids, rows, strict=True)}

    async def tokens_of(self, worker_id: str) -> dict[str, TokenRow]:
        """The active tokens this worker owns. Entries of the worker's set that the token hash no
        longer confirms are dropped (self-healing index)."""
        ids = sorted(await self.redis.smembers(self.keys.worker_tokens(worker_id)))
        views = await self.views_of(ids)
        stale = [t for t, (state, owner, _, _) in views.items() if owner != worker_id or state not in ACTIVE_STATES]
        if stale:
            await self.redis.srem(self.keys.worker_tokens(worker_id), *stale)
        return {t: v for t, v in views.items() if t not in stale}

    async def active_tokens(self) -> dict[str, TokenRow]:
        async with self.redis.pipeline(transaction=False) as p:
            for state in ACTIVE_STATES:
                p.smembers(self.keys.tokens_in_state(state))
            members = await p.execute()
        return await self.views_of(sorted(set().union(*members)))
