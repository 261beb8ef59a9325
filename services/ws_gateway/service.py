"""WsGatewayService: stream every wanted token, publish top-of-book ticks (B1-B4).

* Wanted = union of every ``gw:want:*`` set, reconciled on each ``gw:notify`` message and every
  ``gateway.reconcile_interval_sec`` (pub/sub is lossy, so the timer is the safety net).
* Tokens are sharded over :class:`MarketConnection` s of at most
  ``gateway.max_tokens_per_connection`` tokens (see :mod:`shards`).
* Each frame is decoded, applied to the books, and every changed top becomes a PUBLISH on
  ``tick:{token}`` plus the same fields in ``book:{token}`` -- in one MULTI per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.ws_gateway.book import Books
from services.ws_gateway.connection import MarketConnection
from services.ws_gateway.shards import plan_shards
from shared.backoff import Backoff
from shared.config import Settings
from shared.polymarket.market_ws import MarketEvent, MarketFrameError, decode_frame
from shared.redisio.health import beat
from shared.service import RedisService
from shared.ticks import Tick

SERVICE = "ws_gateway"
_OPTIONAL_TICK_FIELDS = ("bid", "ask", "last")  # absent from the hash when None: delete stale ones


class WsGatewayService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.books = Books()
        self.wanted: set[str] = set()
        self.conns: list[MarketConnection] = []
        self._conn_tasks: dict[MarketConnection, asyncio.Task[None]] = {}
        self._conn_serial = 0
        self._backoff = Backoff.from_config(settings.retry_strategy)
        self._reconcile_lock = asyncio.Lock()
        self._reconcile_now = asyncio.Event()
        self.frames = self.ticks = self.parse_errors = self.publish_errors = 0

    async def run(self) -> None:
        await self.connect_redis()
        tasks = [asyncio.create_task(c) for c in (self._notify_loop(), self._reconcile_loop(), self._heartbeat_loop())]
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(self._close_conn(c) for c in list(self.conns)), return_exceptions=True)
            await self.close_redis()

    async def step(self) -> None:
        """One reconcile of the wanted set (tests drive this; run() calls it on notify and on a timer)."""
        await self.reconcile()

    # --- wanted set -> connections ---------------------------------------------------------

    async def read_wanted(self) -> set[str]:
        wanted: set[str] = set()
        async for key in self.redis.scan_iter(match=self.keys.gw_want_pattern(), count=500, _type="set"):
            wanted |= set(await self.redis.smembers(key))  # type: ignore[misc]
        return wanted

    async def reconcile(self) -> None:
        async with self._reconcile_lock:
            wanted = await self.read_wanted()
            added, removed = wanted - self.wanted, self.wanted - wanted
            if added:
                await self._track(sorted(added))
            plan = plan_shards([c.tokens for c in self.conns], wanted, self.settings.gateway.max_tokens_per_connection)
            existing = list(self.conns)
            for conn, tokens in zip(existing, plan, strict=False):
                if tokens:
                    await conn.set_tokens(tokens)
                else:
                    await self._close_conn(conn)
            for tokens in plan[len(existing):]:
                if tokens:
                    await self._open_conn(tokens)
            self.wanted = wanted
            if removed:
                await self._untrack(sorted(removed))
            if added or removed:
                logger.info("wanted set: +{} -{} = {} token(s) on {} connection(s)", len(added), len(removed),
                            len(wanted), len(self.conns))

    async def _track(self, tokens: list[str]) -> None:
        # Continue each token's seq from its hash, so a restarted gateway never goes backwards.
        async with self.redis.pipeline(transaction=False) as pipe:
            for tid in tokens:
                pipe.hget(self.keys.book(tid), "seq")
            seqs = await pipe.execute()
        for tid, seq in zip(tokens, seqs, strict=True):
            self.books.track(tid, int(seq) if seq and str(seq).isdigit() else 0)

    async def _untrack(self, tokens: list[str]) -> None:
        for tid in tokens:
            self.books.forget(tid)
        # No longer updated: say so to late readers of the hash instead of leaving it looking live
        # (only where a hash exists: seq > 0 means we or a previous run wrote one).
        written = [tid for tid in tokens if self.books.seq(tid) > 0]
        if written:
            async with self.redis.pipeline(transaction=False) as pipe:
                for tid in written:
                    pipe.hset(self.keys.book(tid), "stale", "1")
                await pipe.execute()

    async def _open_conn(self, tokens: set[str]) -> None:
        self._conn_serial += 1
        conn = MarketConnection(f"conn-{self._conn_serial}", self.settings.polymarket.ws_market_url,
                                self.settings.gateway.ping_interval_sec, self._backoff,
                                self.on_frame, self.books.invalidate, self.books.ready)
        await conn.set_tokens(tokens)
        self.conns.append(conn)
        self._conn_tasks[conn] = asyncio.create_task(conn.run(), name=conn.name)

    async def _close_conn(self, conn: MarketConnection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        task = self._conn_tasks.pop(conn, None)
        await conn.close()
        if task is not None:
            try:
                await asyncio.wait_for(task, 5)  # cancels it if it does not end in time
            except TimeoutError:
                logger.warning("{} did not close within 5s: cancelled", conn.name)
            except Exception as exc:
                logger.warning("{} ended with {}: {}", conn.name, type(exc).__name__, exc)

    # --- frames -> ticks ------------------------------------------------------------------

    async def on_frame(self, text: str, ts_recv: int) -> None:
        self.frames += 1
        events: list[MarketEvent]
        try:
            events = decode_frame(text)
        except MarketFrameError as exc:
            self.parse_errors += 1
            logger.warning("bad frame skipped ({}): {}", exc, text[:200])
            events = list(exc.events)
        ticks = self.books.apply(events, ts_recv)
        if ticks:
            await self.publish(ticks)

    async def publish(self, ticks: list[Tick]) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for tick in ticks:
                    pipe.publish(self.keys.tick(tick.token_id), tick.to_json())
                    fields = tick.to_hash()
                    gone = [f for f in _OPTIONAL_TICK_FIELDS if f not in fields]
                    if gone:
                        pipe.hdel(self.keys.book(tick.token_id), *gone)
                    pipe.hset(self.keys.book(tick.token_id), mapping=fields)  # type: ignore[arg-type]
                await pipe.execute()
            self.ticks += len(ticks)
        except (RedisError, OSError) as exc:  # ticks are lossy by design; the next change re-sends
            self.publish_errors += 1
            logger.warning("publishing {} tick(s) failed: {}", len(ticks), exc)

    # --- background loops -----------------------------------------------------------------

    async def _notify_loop(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.keys.gw_notify())
                self._reconcile_now.set()  # notifies sent while we were not listening are lost
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        self._reconcile_now.set()
            except (RedisError, OSError) as exc:
                logger.warning("notify listener: {}; resubscribing", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_now.wait(), self.settings.gateway.reconcile_interval_sec)
            self._reconcile_now.clear()
            try:
                await self.reconcile()
            except (RedisError, OSError) as exc:
                logger.warning("reconcile failed: {}", exc)
            except Exception:  # a bug here must not freeze the wanted set for the process's life
                logger.exception("reconcile failed")

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.monitoring.heartbeat_interval_sec
        while True:
            try:
                await beat(self.redis, self.keys, SERVICE, self.instance, interval, self.summary())
            except (RedisError, OSError) as exc:
                logger.warning("heartbeat failed: {}", exc)
            await asyncio.sleep(interval)

    def summary(self) -> dict[str, Any]:
        return {
            "connections": len(self.conns), "connected": sum(c.connected for c in self.conns),
            "tokens": len(self.wanted), "frames": self.frames, "ticks": self.ticks,
            "parse_errors": self.parse_errors, "publish_errors": self.publish_errors,
            "reconnects": sum(max(0, c.connects - 1) for c in self.conns),
            "resyncs": sum(c.resyncs for c in self.conns),
            "ignored_deltas": self.books.ignored_deltas, "drift": self.books.drift,
            "untracked_events": self.books.untracked,
        }
