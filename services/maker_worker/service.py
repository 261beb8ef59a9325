"""A maker worker: registers with a lease, takes START/EXIT/STOP from its command stream and runs
one session (an asyncio task) per token it owns.

The lease is renewed by its own task, so a busy session cannot starve it; so are the venue's order
heartbeats (heartbeat.py), which keep the account's resting orders alive while the worker lives and
hold the send gate closed while they fail. On SIGTERM the worker
stops taking tokens, cancels its orders, hands its tokens back and deletes its lease so the
orchestrator reassigns them at once (D10).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.maker_worker import metrics
from services.maker_worker.executor import ClobExecutor, Executor
from services.maker_worker.heartbeat import VenueHeartbeat
from services.maker_worker.latency import LatencyHistogram
from services.maker_worker.lease import LeaseClock
from services.maker_worker.paper import PaperExecutor, PaperVenue
from services.maker_worker.restbook import RestBooks
from services.maker_worker.session import TokenSession
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import Settings, load_secrets
from shared.keys import GROUP_WORKER, STREAM_MAXLEN
from shared.messages import Command, SessionReport, stable_id
from shared.redisio import StreamConsumer, add_message
from shared.redisio.client import TRANSIENT_REDIS_ERRORS
from shared.redisio.health import beat
from shared.service import RedisService
from shared.tickfeed import TickFeed
from shared.venue.account import VenueAccount, open_account
from shared.venue.environment import resolve_environment
from shared.venue.errors import VenueUnavailable
from shared.venue.orders import VenueOrders
from shared.venue.rate_budget import rate_budget

COMMAND_BATCH = 50  # commands read per step


class MakerWorkerService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None,
                 executor: Executor | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.worker_id = instance
        self.executor = executor
        self.sessions: dict[str, tuple[TokenSession, asyncio.Task[None]]] = {}
        self._unreported: dict[str, tuple[TokenSession, str]] = {}  # failed sessions not yet reported
        self.decisions = LatencyHistogram()  # tick ts_recv -> strategy evaluated, every session (heartbeat)
        self.lease = LeaseClock(settings.workers.lease_ms, settings.workers.send_margin)  # gates every order
        self.account: VenueAccount | None = None  # the venue account this worker opened (sim, live)
        self.venue_beat: VenueHeartbeat | None = None  # the account's order heartbeats (dead-man switch)

    async def _setup(self) -> None:
        await self._announce()
        await self._open_venue()
        await self._mark_ready()

    async def _mark_ready(self) -> None:
        """The orchestrator gives this worker tokens from now on (views: ``ready``)."""
        await self.redis.hset(self.keys.worker(self.worker_id), "ready", "1")
        logger.info("worker {} ready: the venue account is open", self.worker_id)

    async def _announce(self) -> None:
        """Redis, the command stream and the lease: first, and fast. A process restarted under the
        same id renews its predecessor's lease (and hands back what it inherited) before the slow
        venue setup, which would otherwise let the lease lapse and the tokens be moved meanwhile."""
        await self.connect_redis()
        self.consumer = StreamConsumer(self.redis, [self.keys.cmd(self.worker_id)], GROUP_WORKER, self.worker_id)
        await self.consumer.ensure_groups()
        # The tick feed and the REST books exist from here on: the lease loop, which runs while the
        # venue opens, reports their counters in the heartbeat.
        self.feed = TickFeed(self.redis, self.keys)
        self.books = RestBooks(self._fetch_book, self.settings.orderbook)
        await self._register()

    async def _open_venue(self) -> None:
        """The venue environment, the tick feed, the REST books and the account (the official SDK opens
        it: several round trips, and a deposit wallet may be created). Commands wait until it is done."""
        self.venue_env = await resolve_environment(self.settings.polymarket, self.settings.mode)
        # B6: one REST poller for the whole process, used only by sessions whose ticks are stale.
        self.http = httpx.AsyncClient(base_url=self.venue_env.url("clob_url"), timeout=5.0)
        if self.executor is None:
            if self.settings.mode == "paper":  # fills against the gateway's ticks; no keys, no orders sent
                self.executor = PaperExecutor(PaperVenue(), self.feed.latest.get)
            else:  # the venue room's account (the official SDK, async): sim_exchange in sim mode
                self.account = await self._open_account()
                orders = VenueOrders(self.account, budget=rate_budget(self.settings, self.redis, self.keys,
                                                                     self.account.rate))
                self.executor = ClobExecutor(orders)
                if self.settings.order_heartbeats.enabled:
                    self.venue_beat = VenueHeartbeat(orders.heartbeat, self.settings.order_heartbeats, self.redis,
                                                     self.keys, self.worker_id)
                    self.lease.venue_gate = self.venue_beat.sendable  # no order while heartbeats fail

    async def _open_account(self) -> VenueAccount:
        """The account, retried while the venue is only unavailable (a 429 or 503 on the key or
        wallet calls, a restart window): a worker restarted into a throttled venue waits it out
        instead of exiting. A wrong setup (VenueSetupError) still stops it at once, naming the fix."""
        backoff = Backoff.from_config(self.settings.retry_strategy)
        attempt = 0
        while True:
            try:
                return await open_account(self.settings, load_secrets(), self.venue_env)
            except (VenueUnavailable, httpx.TransportError) as exc:
                attempt += 1
                retry_after = getattr(exc, "retry_after", None)
                delay = retry_after if retry_after else backoff.delay(min(attempt, 30))
                logger.warning("worker {}: opening the venue account failed ({}: {}); retry {} in {:.1f}s",
                               self.worker_id, type(exc).__name__, exc, attempt, delay)
                try:  # a stop meanwhile ends the wait (and the worker)
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                except TimeoutError:
                    continue
                raise

    async def _fetch_book(self, token_id: str) -> Any:
        resp = await self.http.get("/book", params={"token_id": token_id})
        resp.raise_for_status()
        return resp.json()

    async def _register(self) -> None:
        k, w = self.keys, self.settings.workers
        await self.redis.hset(k.worker(self.worker_id), mapping={
            "host": socket.gethostname(), "pid": os.getpid(), "capacity": w.capacity, "load": 0,
            "started": now_ms(), "last_beat": now_ms(), "draining": "0",
            "ready": "0",  # no new tokens until the venue account is open (_open_venue)
        })
        await self.redis.sadd(k.workers(), self.worker_id)
        await self._renew_lease()
        logger.info("worker {} registered (capacity {}, lease {} ms)", self.worker_id, w.capacity, w.lease_ms)
        await self._hand_back_inherited()

    async def _hand_back_inherited(self) -> None:
        """A process restarted under the same worker id within its lease inherits tokens it does not
        run (their sessions died with the old process) and renews the lease, so the orchestrator
        would never move them. Hand each back at its current epoch: the orchestrator reassigns it."""
        k = self.keys
        for token_id in sorted(await self.redis.smembers(k.worker_tokens(self.worker_id))):
            owner, epoch = await self.redis.hmget(k.token(token_id), ["owner", "epoch"])
            if owner != self.worker_id:
                continue
            ts = now_ms()
            await add_message(self.redis, k.sessions(), SessionReport(
                id=stable_id("session", token_id, epoch, "handed_back", "restart"), ts_event=ts, ts_init=ts,
                producer=self.worker_id, token_id=token_id, epoch=int(epoch or 0), worker=self.worker_id,
                status="handed_back", reason="worker process restarted"), STREAM_MAXLEN["sessions"])
            logger.warning("{} was ours at epoch {} before this process started: handed back", token_id, epoch)

    async def run(self) -> None:
        await self._announce()
        lease = asyncio.create_task(self._lease_loop())  # renewed while the venue setup runs
        try:
            await self._open_venue()
        except BaseException:
            lease.cancel()
            raise
        await self._mark_ready()
        background = [lease, asyncio.create_task(self.feed.run(self._stop)),
                      asyncio.create_task(self.books.run(self._stop, now_ms))]
        try:
            if self.venue_beat is not None:  # armed before the first command: no order rests unprotected
                await self.venue_beat.step()
                background.append(asyncio.create_task(self.venue_beat.run(self._stop)))
            while not self._stop.is_set():
                try:
                    await self.step()
                except TRANSIENT_REDIS_ERRORS as exc:  # Redis restarting or still loading: wait, go on
                    logger.warning("Redis trouble ({}); retrying", exc)
                    await asyncio.sleep(1.0)
        finally:
            await self._drain()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.feed.close()
            await self.http.aclose()
            if self.account is not None:
                await self.account.close()

    async def step(self, block_ms: int = 300) -> None:
        """Read and apply this worker's pending commands; reap finished sessions."""
        started = time.monotonic()
        entries = await self.consumer.read(count=COMMAND_BATCH, block_ms=block_ms)
        for entry in entries:
            msg = entry.message
            if isinstance(msg, Command):
                self._apply(msg)
            await self.consumer.ack(entry.stream, entry.entry_id)
        if self.consumer.at_end:  # every command written before `started` is applied (STOPs gate sends)
            self.lease.commands_read(started)
        for token_id, (session, task) in list(self.sessions.items()):
            if task.done():
                del self.sessions[token_id]
                exc = None if task.cancelled() else task.exception()
                if exc is not None:  # the session could not even report its end: do it for it
                    logger.error("session {} ended with an unreported {}: {}", token_id, type(exc).__name__, exc)
                    self._unreported[token_id] = (session, f"{type(exc).__name__}: {exc}")
        for token_id, (session, reason) in list(self._unreported.items()):
            try:
                await session.report_failure(reason)
                del self._unreported[token_id]
            except (ConnectionError, OSError, RedisError) as exc:  # Redis still away: next step
                logger.warning("could not report the failure of {} yet: {}", token_id, exc)

    def _apply(self, cmd: Command) -> None:
        current = self.sessions.get(cmd.token_id)
        if cmd.action == "START":
            if current and not current[1].done():
                if current[0].epoch >= cmd.epoch:
                    return  # a repeated START for a session we already run
                current[0].stop_requested.set()  # an older epoch of ours: the new one takes over
            assert self.executor is not None
            session = TokenSession(self.redis, self.keys, self.feed, self.executor, self.worker_id,
                                   cmd.token_id, cmd.epoch, cmd.params, self.books, self.decisions, self.lease)
            self.sessions[cmd.token_id] = (session, asyncio.create_task(session.run(), name=f"session-{cmd.token_id}"))
            logger.info("START {} epoch {}", cmd.token_id, cmd.epoch)
        elif current and current[0].epoch == cmd.epoch:
            logger.info("{} {} epoch {}: {}", cmd.action, cmd.token_id, cmd.epoch, cmd.reason)
            if cmd.action == "EXIT" and cmd.params.get("fraction"):
                # a partial exit: the session goes on (named by its signal, so it is done once)
                current[0].request_trim(float(cmd.params["fraction"]), str(cmd.params.get("trim_id") or ""))
            elif cmd.action == "EXIT":
                current[0].exit_requested.set()
            else:
                # STOP: cancel orders and end, keeping the position; with hand_back (a drain) the
                # session reports handed_back so the orchestrator moves the token at once.
                current[0].hand_back = bool(cmd.params.get("hand_back"))
                current[0].stop_requested.set()
        else:
            logger.warning("{} for {} epoch {}: no such session here; ignored", cmd.action, cmd.token_id, cmd.epoch)

    async def _renew_lease(self) -> None:
        w = self.settings.workers
        self.lease.configure(w.lease_ms, w.send_margin)
        tenures = self.lease.tenures
        started = time.monotonic()
        await self.redis.set(self.keys.worker_lease(self.worker_id), "1", px=w.lease_ms)
        self.lease.renewed(started, time.monotonic())
        if tenures and self.lease.tenures != tenures:
            metrics.LEASE_BREAKS.inc()
            logger.warning("worker {}: the lease may have lapsed before this renewal; sessions send again only "
                           "after a fresh ownership check", self.worker_id)

    async def _lease_loop(self) -> None:
        k, w = self.keys, self.settings.workers
        while not self._stop.is_set():
            try:
                await self._renew_lease()
                load = sum(1 for _, t in self.sessions.values() if not t.done())
                metrics.SESSIONS.set(load)
                await self.redis.hset(k.worker(self.worker_id), mapping={"load": load, "last_beat": now_ms()})
                await beat(self.redis, k, "maker_worker", self.worker_id, w.heartbeat_interval_sec,
                           {"sessions": load, "ticks": self.feed.received, **self.books.summary(),
                            **self.decisions.summary("decide"),
                            **(self.venue_beat.summary() if self.venue_beat else {})})
            except (ConnectionError, *TRANSIENT_REDIS_ERRORS) as exc:
                logger.warning("lease renewal failed: {}", exc)
            except Exception:  # a lease loop that dies silently strands every token here
                logger.exception("lease loop step failed; retrying")
            await asyncio.sleep(w.heartbeat_interval_sec)

    async def _drain(self) -> None:
        """Hand every session back, then give up the lease so reassignment is immediate."""
        for session, _ in self.sessions.values():
            session.hand_back = True
            session.stop_requested.set()
        tasks = [t for _, t in self.sessions.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=8.0)
        # A session still running (its order stuck at the venue) must not post once the lease is
        # gone: the orchestrator moves its token at once.
        self.lease.revoke()
        try:
            await self.redis.delete(self.keys.worker_lease(self.worker_id))
            await self.redis.hset(self.keys.worker(self.worker_id), mapping={"load": 0, "stopped": now_ms()})
            await self.redis.srem(self.keys.workers(), self.worker_id)
        except (ConnectionError, *TRANSIENT_REDIS_ERRORS) as exc:
            logger.warning("could not deregister: {}", exc)
