"""Tick subscription: one pub/sub connection for every token a process follows (a maker worker's
sessions, the arbitrage scanner's catalogue).

* Each token has a latest-tick slot, not a queue: a session that was busy sees the freshest tick
  next, never a backlog of stale ones (:meth:`TickFeed.next_tick`).
* A new subscription starts from the ``pf:book:{token}`` hash, so a session can act before the
  next change arrives.
* A ``seq`` gap (a tick we never saw: pub/sub drops messages across a reconnect) or a lost pub/sub
  connection makes the feed re-read the token's hash (every owned token's, after a reconnect), so
  a quiet market cannot leave a session on a top of book that has since changed.
* Staleness (:meth:`TickFeed.stale`): the gateway flags a token it cannot vouch for
  (``stale: true`` in the tick); and a gateway that is down cannot flag anything, so the feed also
  watches the gateway's liveness key (``pf:gw:alive``, refreshed every gateway heartbeat). A session that sees ``stale``
  should stop quoting on the feed (B6: fall back to REST).
* A ``listener`` (optional) is awaited with every tick the feed takes, from the channel or a
  hash read, for a consumer that reacts to each change instead of waiting on one token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.ticks import Tick

GATEWAY_CHECK_SEC = 2.0
SUBSCRIBE_CHUNK = 500  # channels per SUBSCRIBE and hashes per pipeline when many tokens are added

# (tick, arrived): arrived is time.perf_counter() when the message (or the hash) was in hand
Listener = Callable[[Tick, float], Awaitable[None]]


class TickFeed:
    def __init__(self, r: aioredis.Redis, keys: Keys, listener: Listener | None = None) -> None:
        self.r = r
        self.keys = keys
        self.listener = listener
        self.pubsub = r.pubsub(ignore_subscribe_messages=True)
        self.latest: dict[str, Tick] = {}
        self.received_at: dict[str, float] = {}  # monotonic time the latest tick arrived
        self._changed: dict[str, asyncio.Condition] = {}
        self._reread: set[str] = set()
        self._reread_wake = asyncio.Event()
        self.received = 0
        self.bad = 0
        self.gaps = 0  # seq gaps seen (each triggers a hash re-read)
        self.rereads = 0
        self.reconnects = 0
        self.gateway_alive = True  # until the first check says otherwise
        self._gateway_checked = 0.0

    # --- subscriptions -------------------------------------------------------------------------

    async def add(self, token_id: str) -> None:
        await self.add_many([token_id])

    async def add_many(self, token_ids: Iterable[str]) -> None:
        """Subscribe, then read each token's hash: one SUBSCRIBE and one pipeline per chunk."""
        todo = list(token_ids)
        for i in range(0, len(todo), SUBSCRIBE_CHUNK):
            chunk = todo[i:i + SUBSCRIBE_CHUNK]
            for token_id in chunk:
                self._changed.setdefault(token_id, asyncio.Condition())
            await self.pubsub.subscribe(*(self.keys.tick(t) for t in chunk))
            async with self.r.pipeline(transaction=False) as p:
                for token_id in chunk:
                    p.hgetall(self.keys.book(token_id))
                hashes = await p.execute()
            for h in hashes:
                tick = Tick.from_hash(h)
                if tick is not None:
                    await self._offer(tick, time.perf_counter(), from_hash=True)

    async def remove(self, token_id: str) -> None:
        await self.remove_many([token_id])

    async def remove_many(self, token_ids: Iterable[str]) -> None:
        todo = list(token_ids)
        for i in range(0, len(todo), SUBSCRIBE_CHUNK):  # never an empty UNSUBSCRIBE: that drops every channel
            await self.pubsub.unsubscribe(*(self.keys.tick(t) for t in todo[i:i + SUBSCRIBE_CHUNK]))
        for token_id in todo:
            self.latest.pop(token_id, None)
            self.received_at.pop(token_id, None)
            self._changed.pop(token_id, None)
            self._reread.discard(token_id)

    @property
    def tokens(self) -> list[str]:
        return list(self._changed)

    # --- what a session reads ------------------------------------------------------------------

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

    def age(self, token_id: str) -> float | None:
        """Seconds since the token's latest tick reached us; None before the first one.

        A large age alone is not staleness: the gateway publishes on change only, and a quiet
        market is quiet. See :meth:`stale`.
        """
        at = self.received_at.get(token_id)
        return None if at is None else time.monotonic() - at

    def stale(self, token_id: str) -> bool:
        """True when the token's ticks cannot be trusted: no tick yet, the gateway flagged the token
        stale, or the gateway itself has no fresh heartbeat."""
        tick = self.latest.get(token_id)
        return tick is None or tick.stale or not self.gateway_alive

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        rereader = asyncio.create_task(self._reread_loop(stop))
        try:
            await self._listen(stop)
        finally:
            rereader.cancel()
            await asyncio.gather(rereader, return_exceptions=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._check_gateway()
            if not self.pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                msg = await self.pubsub.get_message(timeout=0.5)
            except (RedisError, ConnectionError, OSError) as exc:
                # Ticks published while we were away are gone: re-read every owned token's hash
                # once the connection is back (redis-py resubscribes on reconnect).
                self.reconnects += 1
                logger.warning("tick feed connection lost ({}); resubscribing and re-reading books", exc)
                self._schedule_reread(self._changed)
                await asyncio.sleep(0.5)
                continue
            if msg is None or msg.get("type") != "message":
                continue
            arrived = time.perf_counter()
            try:
                tick = Tick.from_json(msg["data"])
            except (ValueError, KeyError, TypeError):
                self.bad += 1
                continue
            self.received += 1
            await self._offer(tick, arrived)

    async def _offer(self, tick: Tick, arrived: float, from_hash: bool = False) -> None:
        cond = self._changed.get(tick.token_id)
        if cond is None:
            return
        old = self.latest.get(tick.token_id)
        if old is not None:
            if tick.seq <= old.seq and tick.ts_recv <= old.ts_recv:
                return  # an older tick than the one we hold (e.g. the hash read raced the channel)
            if tick.seq > old.seq + 1 and not from_hash:
                self.gaps += 1
                self._schedule_reread([tick.token_id])
        self.latest[tick.token_id] = tick
        self.received_at[tick.token_id] = time.monotonic()
        async with cond:
            cond.notify_all()
        if self.listener is not None:
            await self.listener(tick, arrived)

    def _schedule_reread(self, tokens: Iterable[str]) -> None:
        self._reread.update(tokens)
        self._reread_wake.set()

    async def _reread_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._reread_wake.wait()
            self._reread_wake.clear()
            todo, self._reread = sorted(self._reread), set()
            for token_id in todo:
                try:
                    await self._read_hash(token_id)
                    self.rereads += 1
                except (RedisError, OSError) as exc:
                    logger.warning("re-reading the book of {} failed: {}", token_id[:12], exc)
                    self._reread.add(token_id)
            if self._reread:
                await asyncio.sleep(0.5)
                self._reread_wake.set()

    async def _read_hash(self, token_id: str) -> None:
        tick = Tick.from_hash(await self.r.hgetall(self.keys.book(token_id)))
        if tick is not None:
            await self._offer(tick, time.perf_counter(), from_hash=True)

    async def _check_gateway(self) -> None:
        now = time.monotonic()
        if now - self._gateway_checked < GATEWAY_CHECK_SEC:
            return
        self._gateway_checked = now
        try:
            alive = bool(await self.r.exists(self.keys.gw_alive()))
        except (RedisError, OSError):
            return  # the listen loop reports Redis trouble
        if alive != self.gateway_alive:
            logger.log("INFO" if alive else "WARNING", "gateway liveness {}", "back" if alive else "missing")
        self.gateway_alive = alive

    async def close(self) -> None:
        await self.pubsub.aclose()
