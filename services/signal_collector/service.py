"""SignalCollectorService: poll every enabled target, emit new trades as signals (A1-A5).

Per poll of one target: read ``/trades`` since the cursor, keep the trades the cursor has not
seen, XADD them oldest first to the signals stream, then store the cursor -- in one MULTI, signals
before cursor, so a crash can only repeat a signal (same id: harmless), never lose one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.signal_collector.cursor import Cursor, first_cursor, select_new
from services.signal_collector.poller import FetchError, Throttled, fetch_trades
from services.signal_collector.signals import to_signal, wanted
from shared.backoff import Backoff, honour_retry_after
from shared.clock import now_ms, now_s
from shared.config import Settings, Target
from shared.keys import STREAM_MAXLEN
from shared.polymarket.data_api import parse_trades
from shared.redisio.health import beat
from shared.service import RedisService

SERVICE = "signal_collector"
MAX_CONCURRENT_POLLS = 4  # request budget: at most this many /trades calls in flight
HTTP_TIMEOUT_SEC = 10.0


@dataclass
class TargetState:
    cursor: Cursor | None = None  # loaded from Redis on first use
    failures: int = 0
    retry_at: float = 0.0  # monotonic; no request before this


@dataclass
class Counters:
    polls: int = 0
    signals: int = 0
    below_min_size: int = 0
    malformed: int = 0
    foreign: int = 0  # rows of another wallet than the one asked for
    http_errors: int = 0
    redis_errors: int = 0
    last_error: str = ""


class SignalCollectorService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self._http: httpx.AsyncClient | None = None
        self._states: dict[str, TargetState] = {}
        self._sem = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self._backoff = Backoff.from_config(settings.retry_strategy)
        self.counters = Counters()

    async def run(self) -> None:
        await self.connect_redis()
        heart = asyncio.create_task(self._heartbeat_loop())
        try:
            while not self._stop.is_set():
                try:
                    await self.step()
                except Exception:  # a bug in one poll must not end the service; it is logged loudly
                    logger.exception("poll failed")
                await self.sleep_unless_stopped(self.settings.copytrade.poll_interval_sec)
        finally:
            heart.cancel()
            await asyncio.gather(heart, return_exceptions=True)
            await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await self.close_redis()

    async def step(self) -> int:
        """One poll of every enabled target that is not backing off; returns signals emitted."""
        targets = [t for t in self.settings.copytrade.targets if t.enabled]
        results = await asyncio.gather(*(self._poll_guarded(t) for t in targets))
        return sum(results)

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SEC)
        return self._http

    async def _poll_guarded(self, target: Target) -> int:
        state = self._states.setdefault(target.account.lower(), TargetState())
        if time.monotonic() < state.retry_at:
            return 0
        async with self._sem:
            try:
                emitted = await self._poll(target, state, self._http_client())
            except FetchError as exc:
                self.counters.http_errors += 1
                self._failed(target, state, exc)
                return 0
            except (RedisError, OSError) as exc:
                self.counters.redis_errors += 1
                self._failed(target, state, FetchError(f"Redis: {type(exc).__name__}: {exc}"))
                return 0
        state.failures = 0
        state.retry_at = 0.0
        return emitted

    def _failed(self, target: Target, state: TargetState, exc: FetchError) -> None:
        state.failures += 1
        self.counters.last_error = str(exc)
        delay = self._backoff.delay(min(state.failures, 30))
        if isinstance(exc, Throttled):
            delay = honour_retry_after(delay, exc.retry_after, self._backoff.max_backoff_seconds)
        state.retry_at = time.monotonic() + delay
        logger.warning("{}: {} (failure {}); next try in {:.1f}s", target.account, exc, state.failures, delay)

    async def _load_cursor(self, target: Target, state: TargetState) -> Cursor:
        if state.cursor is not None:
            return state.cursor
        key = self.keys.cursor(target.account)
        cursor = Cursor.from_hash(await self.redis.hgetall(key))  # type: ignore[misc]
        if cursor is None:
            cursor = first_cursor(now_s(), self.settings.copytrade.initial_lookback_sec)
            # Stored at once: a restart must not move "now" forward past trades made meanwhile.
            await self.redis.hset(key, mapping=cursor.to_hash(now_ms()))  # type: ignore[misc]
            logger.info("{}: first run, starting at {} (look-back {}s)", target.account, cursor.ts,
                        self.settings.copytrade.initial_lookback_sec)
        state.cursor = cursor
        return cursor

    async def _poll(self, target: Target, state: TargetState, http: httpx.AsyncClient) -> int:
        cursor = await self._load_cursor(target, state)
        rows = await fetch_trades(http, self.settings.polymarket.data_api_url, target.account,
                                  cursor.ts, self.settings.copytrade.page_size)
        self.counters.polls += 1
        trades, bad = parse_trades(rows)
        if bad:
            self.counters.malformed += len(bad)
            logger.warning("{}: skipped {} malformed trade row(s), e.g. {}", target.account, len(bad), bad[0])
        account = target.account.lower()
        mine = [t for t in trades if not t.account or t.account == account]
        self.counters.foreign += len(trades) - len(mine)
        new, after = select_new(cursor, mine)
        if after == cursor:
            return 0
        keep = [t for t in new if wanted(t, target)]
        self.counters.below_min_size += len(new) - len(keep)
        now = now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            for trade in keep:
                msg = to_signal(trade, target, now)
                pipe.xadd(self.keys.signals(), msg.encode(),  # type: ignore[arg-type]
                          maxlen=STREAM_MAXLEN["signals"], approximate=True)
            pipe.hset(self.keys.cursor(target.account), mapping=after.to_hash(now))
            await pipe.execute()
        state.cursor = after
        self.counters.signals += len(keep)
        for trade in keep:
            logger.info("signal {} {} {} x {} @ {} (tx {})", trade.side, account, trade.token_id, trade.size,
                        trade.price, trade.tx_hash[:12])
        return len(keep)

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.monitoring.heartbeat_interval_sec
        while True:
            try:
                await beat(self.redis, self.keys, SERVICE, self.instance, interval, self.summary())
            except Exception as exc:  # a missed beat must not stop polling
                logger.warning("heartbeat failed: {}", exc)
            await asyncio.sleep(interval)

    def summary(self) -> dict[str, Any]:
        c = self.counters
        return {
            "targets": sum(1 for t in self.settings.copytrade.targets if t.enabled),
            "polls": c.polls, "signals": c.signals, "below_min_size": c.below_min_size,
            "malformed": c.malformed, "foreign": c.foreign, "http_errors": c.http_errors,
            "redis_errors": c.redis_errors,
            "backing_off": sum(1 for s in self._states.values() if s.retry_at > time.monotonic()),
            "last_error": c.last_error,
        }
