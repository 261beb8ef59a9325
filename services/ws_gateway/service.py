"""WsGatewayService: stream every wanted token, publish top-of-book ticks (B1-B4).

* Wanted = union of every ``gw:want:*`` set, reconciled on each ``gw:notify`` message and every
  ``gateway.reconcile_interval_sec`` (pub/sub is lossy, so the timer is the safety net).
* Tokens are sharded over :class:`MarketConnection` s of at most
  ``gateway.max_tokens_per_connection`` tokens (see :mod:`shards`).
* Each frame is decoded, applied to the books, and every changed top becomes a PUBLISH on
  ``tick:{token}`` plus the same fields in ``book:{token}`` (:mod:`publisher`: pipelined, batched
  while the previous batch is on the wire).
* A book that disagrees with the venue's ``best_bid``/``best_ask`` is reseeded from REST
  ``/books`` (:mod:`reseed`), and so is a token seeded by a socket ``book`` without ``tick_size``
  (docs/venue.md M2): its tick comes from REST, later from ``tick_size_change``.
* ``market_resolved`` (sent because the subscription asks for custom features, M1) becomes a
  :class:`~shared.messages.Resolution` on ``pf:resolutions`` for the orchestrator.
* A token silent for ``gateway.stale_after_sec`` is checked against REST: the same book means a
  quiet market; a different one means its socket stopped delivering (alive but silent): the book
  is reseeded and the socket replaced. A token REST cannot vouch for either is marked stale (a tick
  with ``stale: true``) until its next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.ws_gateway.book import Books
from services.ws_gateway.connection import ConnectGate, MarketConnection
from services.ws_gateway.metrics import GatewayMetrics
from services.ws_gateway.publisher import TickPublisher
from services.ws_gateway.reseed import BookFetcher
from services.ws_gateway.shards import plan_shards
from shared import gctune
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import STREAM_MAXLEN
from shared.messages import Resolution, stable_id
from shared.redisio import add_message
from shared.redisio.health import beat
from shared.service import RedisService
from shared.ticks import Tick
from shared.venue.environment import resolve_environment
from shared.venue.market_ws import MarketEvent, MarketFrameError, MarketResolved, decode_frame

SERVICE = "ws_gateway"
PRODUCER = "ws_gateway"
BAD_FRAME_LOG_FIRST = 20  # then one log line per BAD_FRAME_LOG_EVERY bad frames (all are counted)
BAD_FRAME_LOG_EVERY = 1000


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
        self._reseed_now = asyncio.Event()
        self._gate = ConnectGate(settings.gateway.connect_stagger_sec)
        self.fetcher = BookFetcher(min_interval=settings.gateway.reseed_min_interval_sec)  # pointed at run()
        self.market_ws_url = ""
        self.metrics = GatewayMetrics()
        self._publisher: TickPublisher | None = None
        self._latest: dict[str, Tick] = {}  # every token's newest tick: rewritten after a Redis reconnect
        self._resolutions: asyncio.Queue[MarketResolved] = asyncio.Queue()
        self._forwarded: set[str] = set()  # condition ids whose resolution this process passed on
        self.frames = self.parse_errors = self.resolutions = 0
        self.reseeds = self.silent_reconnects = self.stale_marked = 0

    @property
    def publisher(self) -> TickPublisher:
        if self._publisher is None:
            self._publisher = TickPublisher(self.redis, self.keys, on_published=self._on_published)
        return self._publisher

    @property
    def ticks(self) -> int:
        return self._publisher.published if self._publisher else 0

    @property
    def publish_errors(self) -> int:
        return self._publisher.errors if self._publisher else 0

    async def run(self) -> None:
        await self.connect_redis()
        env = await resolve_environment(self.settings.polymarket, self.settings.mode)
        self.market_ws_url = env.url("clob_market_ws_url")
        self.fetcher.point_at(env.url("clob_url"))
        loops = {"publisher": self.publisher.run(), "notify": self._notify_loop(), "reconcile": self._reconcile_loop(),
                 "heartbeat": self._heartbeat_loop(), "reseed": self._reseed_loop(), "stale": self._stale_loop(),
                 "resolutions": self._resolution_loop()}
        tasks = {asyncio.create_task(c, name=f"gateway-{name}"): name for name, c in loops.items()}
        try:
            await self._stop.wait()
        finally:
            await asyncio.gather(*(self._close_conn(c) for c in list(self.conns)), return_exceptions=True)
            await self._drain_publisher()
            for t in tasks:
                t.cancel()
            # bounded: a loop stuck in a call that ignores its cancel must not hold the shutdown
            # (seen once in CI under heavy load: the whole stop took over 15 s); the log names it
            _, stuck = await asyncio.wait(tasks, timeout=5)
            if stuck:
                logger.warning("stopping with loop(s) still ending: {}", ", ".join(sorted(tasks[t] for t in stuck)))
            await self.fetcher.aclose()
            await self.close_redis()

    async def _drain_publisher(self, timeout: float = 2.0) -> None:
        """Let queued ticks reach Redis before stopping (bounded: Redis may be the problem)."""
        deadline = time.monotonic() + timeout
        while self.publisher.backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

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
        now = now_ms()
        for tid, seq in zip(tokens, seqs, strict=True):
            self.books.track(tid, int(seq) if seq and str(seq).isdigit() else 0, now_ms=now)

    async def _untrack(self, tokens: list[str]) -> None:
        for tid in tokens:
            self.books.forget(tid)
            self._latest.pop(tid, None)
        self.fetcher.forget(tokens)
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
        conn = MarketConnection(f"conn-{self._conn_serial}", self.market_ws_url,
                                self.settings.gateway.ping_interval_sec, self._backoff,
                                self.on_frame, self.books.invalidate, self.books.ready, self._gate,
                                self.publisher.room)
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

    def on_frame(self, text: str, ts_recv: int) -> None:
        recv_ns = time.perf_counter_ns()
        self.frames += 1
        events: list[MarketEvent]
        try:
            events = decode_frame(text)
        except MarketFrameError as exc:
            self.parse_errors += 1
            if self.parse_errors <= BAD_FRAME_LOG_FIRST or self.parse_errors % BAD_FRAME_LOG_EVERY == 0:
                logger.warning("bad frame #{} skipped ({}): sample {!r}", self.parse_errors, exc, text[:200])
            events = list(exc.events)
        if not events:
            return
        ticks = self.books.apply(events, ts_recv)
        if ticks:
            self.submit(ticks, recv_ns)
            hop = self.metrics.hop_venue_ms
            for t in ticks:
                hop.append(ts_recv - t.ts_event)
        if self.books.drifted or self.books.tick_unknown:
            self._reseed_now.set()
        if self.books.resolved:
            for ev in self.books.resolved:
                self._resolutions.put_nowait(ev)
            self.books.resolved.clear()

    def submit(self, ticks: list[Tick], recv_ns: int = 0) -> None:
        for t in ticks:
            self._latest[t.token_id] = t
        self.publisher.submit(ticks, recv_ns)

    def _on_published(self, batch: list[tuple[Tick, int]], acked_ns: int) -> None:
        hop = self.metrics.hop_gateway_ms
        for _, recv_ns in batch[-64:]:  # a sample is enough; a big batch would cost a deque append each
            if recv_ns:
                hop.append((acked_ns - recv_ns) / 1e6)

    async def publish(self, ticks: list[Tick]) -> None:
        """Queue ticks for Redis (kept for callers outside the frame path)."""
        self.submit(ticks)

    # --- REST: drift reseeds and silent tokens ---------------------------------------------

    async def _reseed_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reseed_now.wait(), 1.0)
            self._reseed_now.clear()
            due = self.fetcher.due(self.books.drifted | self.books.tick_unknown)
            if not due:
                continue
            logger.info("book drift or no tick size on {} token(s): reading REST books", len(due))
            try:
                books, _ = await self.fetcher.fetch(due)
                ts = now_ms()
                for snap in books.values():
                    ticks, _matched = self.books.reseed(snap, ts)
                    self.reseeds += 1
                    self.submit(ticks)
            except Exception:
                logger.exception("drift reseed failed")

    async def _stale_loop(self) -> None:
        stale_ms = int(self.settings.gateway.stale_after_sec * 1000)
        interval = min(max(self.settings.gateway.stale_after_sec / 4, 0.1), 5.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_silent(stale_ms)
            except Exception:
                logger.exception("stale check failed")

    async def check_silent(self, stale_ms: int) -> None:
        """Check tokens silent for ``stale_ms`` against REST; reseed, replace sockets, mark stale."""
        silent = self.fetcher.due(self.books.silent(now_ms(), stale_ms))
        if not silent:
            return
        books, failed = await self.fetcher.fetch(silent)
        ts = now_ms()
        missed: set[str] = set()
        for snap in books.values():
            was_ready = self.books.ready(snap.asset_id)
            ticks, matched = self.books.reseed(snap, ts)
            self.submit(ticks)
            if not matched:
                self.reseeds += 1
                if was_ready:
                    missed.add(snap.asset_id)  # a ready book that fell behind: the socket stopped delivering
        for conn in self.conns:
            lost = missed & conn.tokens
            if lost and conn.connected:
                self.silent_reconnects += 1
                await conn.reconnect(f"{len(lost)} silent token(s) behind the REST book")
        stale = self.books.mark_stale(failed, ts)
        if stale:
            self.stale_marked += len(stale)
            logger.warning("{} token(s) stale: no data for {:.0f}s and REST /books failed", len(stale),
                           stale_ms / 1000)
            self.submit(stale)

    # --- market_resolved -> the orchestrator -----------------------------------------------

    async def _resolution_loop(self) -> None:
        while True:
            ev = await self._resolutions.get()
            while not await self.forward_resolution(ev):
                await asyncio.sleep(1.0)  # Redis trouble: the resolution waits, it is not dropped

    async def forward_resolution(self, ev: MarketResolved) -> bool:
        """Write one resolution to ``pf:resolutions`` (once per market per process; the id makes a
        repeat from another connection or gateway harmless). False when Redis failed."""
        if ev.market in self._forwarded:
            return True
        msg = Resolution(id=stable_id("resolution", ev.market), ts_event=ev.timestamp or now_ms(), ts_init=now_ms(),
                         producer=PRODUCER, condition_id=ev.market, market_id=ev.market_id,
                         token_ids=list(ev.asset_ids), winning_token=ev.winning_asset_id,
                         winning_outcome=ev.winning_outcome)
        try:
            await add_message(self.redis, self.keys.resolutions(), msg, STREAM_MAXLEN["resolutions"])
        except (RedisError, OSError) as exc:
            logger.warning("resolution of {} not written yet: {}", ev.market, exc)
            return False
        self._forwarded.add(ev.market)
        self.resolutions += 1
        logger.info("market {} resolved (winner {} {}): passed on to the orchestrator", ev.market,
                    ev.winning_outcome or "?", ev.winning_asset_id[:16])
        return True

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
            if self.publisher.reconnected:  # Redis may have lost the hashes: write every latest tick again
                self.publisher.reconnected = False
                self.publisher.submit(list(self._latest.values()))
            summary = self.summary()
            self.metrics.export(summary)
            try:
                await beat(self.redis, self.keys, SERVICE, self.instance, interval, summary)
                await self.redis.set(self.keys.gw_alive(), self.instance, px=int(interval * 3000))
            except (RedisError, OSError) as exc:
                logger.warning("heartbeat failed: {}", exc)
            await asyncio.sleep(interval)

    def summary(self) -> dict[str, Any]:
        """The heartbeat body; each call also closes the window the ``*_per_sec`` rates cover."""
        counts = {"frames": self.frames, "ticks": self.ticks}
        return {
            "connections": len(self.conns), "connected": sum(c.connected for c in self.conns),
            "tokens": len(self.wanted), **counts, **self.metrics.rates(counts),
            "parse_errors": self.parse_errors, "publish_errors": self.publish_errors,
            "publish_backlog": self.publisher.backlog, "publish_dropped": self.publisher.dropped,
            "reconnects": sum(max(0, c.connects - 1) for c in self.conns),
            "stalls": sum(c.stalls for c in self.conns), "silent_reconnects": self.silent_reconnects,
            "resyncs": sum(c.resyncs for c in self.conns),
            "stale_tokens": len(self.books.stale_tokens()), "stale_marked": self.stale_marked,
            "reseeds": self.reseeds, "rest_failures": self.fetcher.failures, "resolutions": self.resolutions,
            "tick_unknown": len(self.books.tick_unknown),
            "ignored_deltas": self.books.ignored_deltas, "drift": self.books.drift,
            "untracked_events": self.books.untracked, **self.metrics.latency(), **gctune.pauses(),
        }
