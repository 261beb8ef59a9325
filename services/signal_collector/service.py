"""SignalCollectorService: every copy-trade source into one de-duplicated signals stream (A1-A8).

* Poller (the backstop, always on): per poll of one target, read ``/trades`` since the cursor,
  keep what the cursor has not seen, and hand signals + new cursor to :class:`SignalWriter`,
  which XADDs them (oldest first) and stores the cursor in one script: a crash can only
  re-offer a signal, which the seen-set then drops.
* Live-data socket (``copytrade.rtds_enabled``): trades of followed wallets become signals the
  moment their frame arrives; same id as the poller's, so whichever is first wins and the
  other is dropped by the seen-set.
* Chain (``copytrade.chain_enabled``): the exchanges' ``OrderFilled`` logs over Polygon JSON-RPC
  (``eth_subscribe`` on a websocket URL, ``eth_getLogs`` sweeps always), read into the same trades,
  so the same ids: see :mod:`chain`.
* Market screen (``screen.enabled``): see :mod:`screener`.
* Config reload every ``config_reload_sec``: targets added, disabled or removed take effect
  without a restart; cursors live in Redis and are never reset by a reload; an invalid file keeps
  the last good config and says so on the events stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.signal_collector.budget import RequestBudget
from services.signal_collector.chain import ChainSource
from services.signal_collector.counters import Counters, TargetState, poll_slots
from services.signal_collector.cursor import Cursor, first_cursor, select_new
from services.signal_collector.emit import SignalWriter
from services.signal_collector.leader_stats import refresh_stats
from services.signal_collector.live import LiveSource
from services.signal_collector.meta import MetaCache
from services.signal_collector.metrics import LatencyBook
from services.signal_collector.recent import RecentIds
from services.signal_collector.reload import CollectorReloader
from services.signal_collector.screener import ScreenError, ScreenSource
from services.signal_collector.signals import signal_id, to_signal, wanted
from services.signal_collector.targets import active
from services.signal_collector.values import refresh_values
from shared.backoff import Backoff, honour_retry_after
from shared.clock import now_ms, now_s
from shared.config import Settings, Target, load_secrets
from shared.messages import Signal
from shared.redisio.health import beat
from shared.service import RedisService
from shared.venue.data_api import Trade, parse_trades
from shared.venue.environment import VenueEnvironment, resolve_environment, with_rpc_secret
from shared.venue.live_data import LiveTrade
from shared.venue.trades_feed import FetchError, Throttled, fetch_trades

SERVICE = "signal_collector"
HTTP_TIMEOUT_SEC = 10.0


class SignalCollectorService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None,
                 config_file: Path | str | None = None) -> None:
        super().__init__(settings, instance, redis)
        self._http: httpx.AsyncClient | None = None
        self._states: dict[str, TargetState] = {}
        cfg = settings.copytrade
        self.budget = RequestBudget(cfg.max_concurrent_requests, cfg.max_requests_per_10s)
        self._poll_slots = poll_slots(cfg.max_concurrent_requests)
        self._backoff = Backoff.from_config(settings.retry_strategy)
        self.counters = Counters()
        self.latency = LatencyBook()
        self.reloader = CollectorReloader(settings, config_file)
        self._writer: SignalWriter | None = None
        self._meta: MetaCache | None = None
        self.live: LiveSource | None = None
        self.chain: ChainSource | None = None
        self.screen: ScreenSource | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recent = RecentIds()
        self._env: VenueEnvironment | None = None  # resolved once, before the first poll

    async def venue(self) -> VenueEnvironment:
        """The venue environment (the sim's or production's): resolved on first use."""
        if self._env is None:
            self._env = await resolve_environment(self.settings.polymarket, self.settings.mode)
        return self._env

    # --- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        await self.connect_redis()
        await self.venue()
        self._spawn("heartbeat", self._heartbeat_loop())
        self._spawn("reload", self._reload_loop())
        self._spawn("values", self._values_loop())
        self._apply_sources()
        try:
            while not self._stop.is_set():
                # Polls START every poll_interval_sec (not interval after the last one ended), so a
                # trade waits at most one interval plus one poll's own time, however many targets.
                started = time.monotonic()
                try:
                    await self.step()
                except Exception:  # a bug in one poll must not end the service; it is logged loudly
                    logger.exception("poll failed")
                wait = self.settings.copytrade.poll_interval_sec - (time.monotonic() - started)
                await self.sleep_unless_stopped(max(0.01, wait))
        finally:
            if self.live is not None:
                await self.live.close()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            await self.aclose()

    async def _values_loop(self) -> None:
        """Leaders' portfolio values for proportional sizing (services/signal_collector/values.py) and
        their own venue PnL and volume for the scorecard (leader_stats.py)."""
        while not self._stop.is_set():
            try:
                data_url = (await self.venue()).url("data_url")
                await refresh_values(self.redis, self.keys, self._http_client(), data_url, self.settings.copytrade,
                                     self.budget)
                await refresh_stats(self.redis, self.keys, self._http_client(), data_url, self.settings.copytrade,
                                    self.budget)
            except Exception:  # a bug here must not end the service
                logger.exception("portfolio values or leader stats failed")
            await self.sleep_unless_stopped(self.settings.copytrade.value_refresh_sec)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(coro, name=name)

    def _apply_sources(self) -> None:
        """Start or stop the live-data, chain and screen sources to match the current settings."""
        env, cfg = self._env, self.settings.copytrade
        assert env is not None  # run() resolved it before any source starts
        if self._toggle("live", cfg.rtds_enabled):
            self.live = LiveSource(env.url("rtds_ws_url"), lambda: self.settings.copytrade,
                                   self._backoff, self.on_live_trades)
            self._spawn("live", self.live.run())
        if self._toggle("chain", cfg.chain_enabled):
            url = cfg.chain_rpc_url or with_rpc_secret(env, load_secrets()).url("rpc_url")
            self.chain = ChainSource(url, env, lambda: self.settings.copytrade, self._backoff, self.redis, self.keys,
                                     self._http_client(), self.on_chain_trades)
            self._spawn("chain", self.chain.run())
        if self._toggle("screen", self.settings.screen.enabled):
            self._spawn("screen", self._screen_loop())

    def _toggle(self, name: str, want: bool) -> bool:
        """True when source ``name`` is to be started now; a running one not wanted any more is stopped."""
        task = self._tasks.get(name)
        if want:
            return task is None or task.done()
        if task is not None:
            task.cancel()
            del self._tasks[name]
        return False

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await self.close_redis()

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SEC)
        return self._http

    @property
    def writer(self) -> SignalWriter:
        if self._writer is None:
            self._writer = SignalWriter(self.redis, self.keys)
        return self._writer

    @property
    def meta(self) -> MetaCache:
        if self._meta is None:
            if self._env is None:
                raise RuntimeError("the venue environment is resolved in run()/step() before metadata is read")
            self._meta = MetaCache(self.redis, self.keys, self._http_client(), self._env.url("gamma_url"))
        return self._meta

    # --- polling ------------------------------------------------------------------------------
    async def step(self) -> int:
        """One poll of every enabled target that is not backing off; returns signals emitted."""
        await self.venue()
        targets = list(active(self.settings.copytrade.targets).values())
        results = await asyncio.gather(*(self._poll_guarded(t) for t in targets))
        return sum(results)

    async def _poll_guarded(self, target: Target) -> int:
        state = self._states.setdefault(target.account.lower(), TargetState())
        if time.monotonic() < state.retry_at:
            return 0
        try:
            async with self._poll_slots:
                emitted = await self._poll(target, state)
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
            delay = honour_retry_after(delay, exc.retry_after, self._backoff.max_backoff_sec)
            if exc.retry_after:  # the venue throttles our IP, not this wallet: hold everyone back
                self.budget.pause(delay)
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

    async def _signals(self, trades: list[Trade], target: Target, seen_ms: int, source: str) -> list[Signal]:
        """Signals for the trades this process has not emitted already (the Redis seen-set stays the
        authority across restarts and instances; this only spares it the obvious repeats: the
        ``orders_matched`` twin of a ``trades`` frame, the poller re-reading a live trade)."""
        fresh = [t for t in trades if signal_id(target.account, t) not in self._recent]
        self.counters.duplicates_dropped += len(trades) - len(fresh)
        metas = await self.meta.get_many([t.token_id for t in fresh]) if fresh else {}
        return [to_signal(t, target, seen_ms, source, metas[t.token_id]) for t in fresh]

    async def _poll(self, target: Target, state: TargetState) -> int:
        cursor = await self._load_cursor(target, state)
        cfg = self.settings.copytrade
        rows = await fetch_trades(self._http_client(), (await self.venue()).url("data_url"), target.account,
                                  cursor.read_from(cfg.poll_overlap_sec), cfg.page_size, self.budget)
        seen_ms = now_ms()
        self.counters.polls += 1
        trades, bad = parse_trades(rows)
        if bad:
            self.counters.malformed += len(bad)
            logger.warning("{}: skipped {} malformed trade row(s), e.g. {}", target.account, len(bad), bad[0])
        account = target.account.lower()
        mine = [t for t in trades if not t.account or t.account == account]
        self.counters.foreign += len(trades) - len(mine)
        new, after = select_new(cursor, mine, cfg.poll_overlap_sec)
        # the overlap re-reads trades this process already emitted: drop those quietly (they are
        # not duplicates anyone sent), and let the seen-set judge the rest
        new = [t for t in new if t.timestamp >= cursor.ts or signal_id(account, t) not in self._recent]
        if not new and after == cursor:
            return 0
        keep = [t for t in new if wanted(t, target)]
        skipped = [t for t in new if not wanted(t, target)]
        self.counters.below_min_size += len(skipped)
        self._recent.add_all(signal_id(account, t) for t in skipped)  # the overlap does not count them twice
        sigs = await self._signals(keep, target, seen_ms, "poll")
        emitted = await self.writer.write(account, sigs, self.keys.cursor(account), after.to_hash(now_ms()),
                                          trim_below=after.ts - cfg.dedup_window_sec)
        state.cursor = after
        self._count(sigs, emitted, "poll", seen_ms)
        return len(emitted)

    def _count(self, sigs: list[Signal], emitted: list[str], source: str, seen_ms: int) -> None:
        done = now_ms()
        ids = set(emitted)
        self._recent.add_all(s.id for s in sigs)
        self.counters.signals += len(ids)
        setattr(self.counters, f"signals_{source}", getattr(self.counters, f"signals_{source}") + len(ids))
        self.counters.duplicates_dropped += len(sigs) - len(ids)
        for s in sigs:
            if s.id in ids:
                self.latency.observe(source, "detect", s.ts_init - s.ts_event)
                self.latency.observe(source, "process", done - seen_ms)
                logger.info("signal {} {} {} x {} @ {} via {} (tx {})", s.side, s.account, s.token_id, s.size,
                            s.price, source, s.tx_hash[:12])

    # --- pushed sources: live-data and chain ---------------------------------------------------
    async def on_live_trades(self, events: list[LiveTrade], recv_ms: int) -> None:
        await self.on_pushed([ev.trade for ev in events], recv_ms, "rtds")

    async def on_chain_trades(self, trades: list[Trade], recv_ms: int) -> None:
        if await self.on_pushed(trades, recv_ms, "chain"):
            raise RedisError("chain: signals not written")  # the sweep keeps its cursor and reads them again

    async def on_pushed(self, trades: list[Trade], recv_ms: int, source: str) -> int:
        """Trades of followed wallets a pushing source saw -> signals now (unless another source was
        first); returns how many wallets' trades could not be written (the poller picks them up)."""
        followed = active(self.settings.copytrade.targets)
        by_account: dict[str, list[Trade]] = {}
        for t in trades:
            if t.account in followed:
                by_account.setdefault(t.account, []).append(t)
        failed = 0
        for account, mine in by_account.items():
            target = followed[account]
            try:
                cursor = await self._load_cursor(target, self._states.setdefault(account, TargetState()))
                floor = cursor.ts - self.settings.copytrade.dedup_window_sec
                fresh = [t for t in mine if t.timestamp >= floor]
                stale = "stale_live" if source == "rtds" else f"stale_{source}"
                setattr(self.counters, stale, getattr(self.counters, stale) + len(mine) - len(fresh))
                sigs = await self._signals([t for t in fresh if wanted(t, target)], target, recv_ms, source)
                if not sigs:
                    continue
                emitted = await self.writer.write(account, sigs)
            except (RedisError, OSError) as exc:
                failed += 1
                self.counters.redis_errors += 1
                self.counters.last_error = f"Redis: {type(exc).__name__}: {exc}"
                logger.warning("{}: could not emit {} trade(s) of {}: {}", source, len(mine), account, exc)
                continue
            self._count(sigs, emitted, source, recv_ms)
        return failed

    # --- screen -------------------------------------------------------------------------------
    async def _screen_loop(self) -> None:
        gamma_url = (await self.venue()).url("gamma_url")
        self.screen = ScreenSource(self._http_client(), self.meta, self.writer, self.latency, lambda: self.settings,
                                   gamma_url)
        while True:
            try:
                await self.screen.step()
            except (ScreenError, RedisError, OSError) as exc:
                self.counters.screen_errors += 1
                self.counters.last_error = str(exc)
                logger.warning("screen: refresh failed: {}", exc)
            await asyncio.sleep(self.settings.screen.refresh_sec)

    # --- config reload ------------------------------------------------------------------------
    async def reload_config(self) -> bool:
        """Re-read the config file; True when new settings took effect."""
        new = await self.reloader.reload(self.settings, self.redis, self.keys, SERVICE)
        if new is None:
            return False
        old_cfg = self.settings.copytrade
        self.settings = new
        for account in set(self._states) - set(active(new.copytrade.targets)):
            self._states.pop(account)  # its cursor stays in Redis: re-enabling resumes there
        cfg = new.copytrade
        if (cfg.max_concurrent_requests, cfg.max_requests_per_10s) != (old_cfg.max_concurrent_requests,
                                                                         old_cfg.max_requests_per_10s):
            self.budget = RequestBudget(cfg.max_concurrent_requests, cfg.max_requests_per_10s)
            self._poll_slots = poll_slots(cfg.max_concurrent_requests)
        if self._tasks:  # running: sources follow the new settings
            self._apply_sources()
        return True

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.config_reload_sec)
            try:
                await self.reload_config()
            except Exception:  # the reload must never stop collecting
                logger.exception("config reload failed")

    # --- health -------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.settings.monitoring.heartbeat_interval_sec
        while True:
            try:
                await beat(self.redis, self.keys, SERVICE, self.instance, interval, self.summary())
            except Exception as exc:  # a missed beat must not stop polling
                logger.warning("heartbeat failed: {}", exc)
            await asyncio.sleep(interval)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "targets": len(active(self.settings.copytrade.targets)),
            **{k: v for k, v in vars(self.counters).items()},
            "backing_off": sum(1 for s in self._states.values() if s.retry_at > time.monotonic()),
            "budget_waits": self.budget.waits, "paused_for_sec": round(self.budget.paused_for(), 1),
            "config": self.reloader.status(), "latency": self.latency.summary(),
        }
        if self._meta is not None:
            out["meta"] = {"fetches": self._meta.fetches, "misses": self._meta.misses}
        if self.live is not None and "live" in self._tasks:
            out["rtds"] = {"connected": self.live.connected, **vars(self.live.counters)}
        if self.chain is not None and "chain" in self._tasks:
            out["chain"] = {"endpoint": self.chain.endpoint, **vars(self.chain.counters)}
        if self.screen is not None:
            out["screen"] = {"refreshes": self.screen.refreshes, "signals": self.screen.signals,
                             "bad_markets": self.screen.bad_markets, "rejected": dict(self.screen.rejected)}
        return out
