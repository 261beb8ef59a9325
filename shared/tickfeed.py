"""Worker-side tick subscription: one pub/sub connection for every token a process owns.

Each token has a latest-tick slot, not a queue: a session that was busy sees the freshest tick
next, never a backlog of stale ones. A new subscription starts from the ``pf:book:{token}`` hash,
so a session can act before the next change arrives. A seq gap needs no re-read: every tick
carries the whole top of book.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from loguru import logger

from shared.keys import Keys
from shared.ticks import Tick


class TickFeed:
    def __init__(self, r: aioredis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self.pubsub = r.pubsub(ignore_subscribe_messages=True)
        self.latest: dict[str, Tick] = {}
        self._changed: dict[str, asyncio.Condition] = {}
        self.received = 0
        self.bad = 0

    async def add(self, token_id: str) -> None:
        self._changed.setdefault(token_id, asyncio.Condition())
        await self.pubsub.subscribe(self.keys.tick(token_id))
        tick = Tick.from_hash(await self.r.hgetall(self.keys.book(token_id)))
        if tick is not None:
            await self._offer(tick)

    async def remove(self, token_id: str) -> None:
        await self.pubsub.unsubscribe(self.keys.tick(token_id))
        self.latest.pop(token_id, None)
        self._changed.pop(token_id, None)

    async def _offer(self, tick: Tick) -> None:
        cond = self._changed.get(tick.token_id)
        if cond is None:
            return
        old = self.latest.get(tick.token_id)
        if old is not None and tick.seq <= old.seq and tick.ts_recv <= old.ts_recv:
            return  # an older tick than the one we hold (e.g. the hash read raced the channel)
        self.latest[tick.token_id] = tick
        async with cond:
            cond.notify_all()

    async def next_tick(self, token_id: str, newer_than: Tick | None, timeout: float) -> Tick | None:
        """The latest tick once it differs from ``newer_than``; None after ``timeout`` seconds."""
        cond = self._changed.setdefault(token_id, asyncio.Condition())

        def fresh() -> bool:
            cur = self.latest.get(token_id)
            return cur is not None and cur != newer_than

        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(fresh), timeout)
            except TimeoutError:
                return None
        return self.latest.get(token_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                msg = await self.pubsub.get_message(timeout=0.5)
            except (ConnectionError, OSError) as exc:
                logger.warning("tick feed connection lost ({}); resubscribing", exc)
                await asyncio.sleep(0.5)
                continue
            if msg is None or msg.get("type") != "message":
                continue
            try:
                tick = Tick.from_json(msg["data"])
            except (ValueError, KeyError, TypeError):
                self.bad += 1
                continue
            self.received += 1
            await self._offer(tick)

    async def close(self) -> None:
        await self.pubsub.aclose()
