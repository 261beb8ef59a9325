"""The orchestrator: signals in, sessions out.

Reads ``pf:signals``, ``pf:sessions``, ``pf:fills``, ``pf:resolutions``, ``pf:redemptions`` and ``pf:control`` with the ``orchestrator``
consumer group; each entry's decision and effects commit in one MULTI with its XACK (see
store.py). Only the instance holding the leader lease does any of this.

This class is the loop (leader lease, reads, heartbeat) and config reload; it hands each entry to
its room: ``intake`` (signals), ``reports`` (session reports, fills, trade statuses, redemptions),
``resolutions`` (resolved markets), ``control`` (operator requests). Every ``copytrade.demotion.check_interval_sec``, ``demotion``
pauses the leaders that break a demotion rule. Between reads, ``upkeep`` moves the tokens of dead and drained workers, runs queued
exits and starts queued tokens as slots free up. The rules themselves live in pure modules
(decisions, scheduling, assignment, positions, risk's planned_notional).
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator import metrics
from services.orchestrator.control import Control
from services.orchestrator.demotion import Demotion
from services.orchestrator.intake import Intake
from services.orchestrator.leader import LeaderLease
from services.orchestrator.metrics import Tally
from services.orchestrator.moves import Moves
from services.orchestrator.reports import Reports
from services.orchestrator.resolutions import Resolutions
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.store import TokenStore
from services.orchestrator.upkeep import Upkeep
from services.orchestrator.views import FleetViews
from shared.clock import now_ms
from shared.config import Settings
from shared.config_reload import ConfigReloader
from shared.keys import GROUP_ORCHESTRATOR
from shared.messages import ControlRequest, Fill, Redemption, Resolution, SessionReport, Signal, TradeStatus
from shared.redisio import StreamConsumer, StreamEntry
from shared.redisio.client import TRANSIENT_REDIS_ERRORS
from shared.redisio.health import beat
from shared.service import RedisService


class OrchestratorService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None,
                 reloader: ConfigReloader | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.reloader = reloader
        self._last_maintain = 0.0
        self._last_beat = 0.0
        self.tally = Tally()
        self._ready = False

    @property
    def decisions(self) -> int:
        return self.tally.decisions

    @property
    def duplicates(self) -> int:
        return self.tally.duplicates

    @property
    def leader_ttl_ms(self) -> int:
        return max(3000, int(3 * self.settings.scheduler.poll_interval_sec * 1000))

    async def _setup(self) -> None:
        await self.connect_redis()
        k = self.keys
        self.store = TokenStore(self.redis, k, f"orchestrator:{self.instance}")
        self.risk = RiskBook(self.redis, k)
        self.lease = LeaderLease(self.redis, k.orchestrator_leader(), self.instance, self.leader_ttl_ms)
        # The rooms read the settings through this accessor, so a reload reaches them at once.
        settings = self._current_settings
        self.views = FleetViews(self.redis, k)
        self.moves = Moves(self.store, self.views)
        self.intake = Intake(self.redis, k, self.store, self.risk, settings, self.tally)
        self.reports = Reports(self.redis, k, self.store, self.risk, settings, self.moves)
        self.demotion = Demotion(self.redis, k, self.store, settings)
        self.control = Control(k, self.store, self.risk, self.views, self.intake, self.demotion)
        self.resolutions = Resolutions(self.redis, k, self.store, self.intake)
        self.upkeep = Upkeep(self.redis, k, self.store, settings, self.views, self.moves, self.intake, self.reports)
        # Only the leader consumes, so an entry idle for a lease period was left by a dead leader.
        # Within one read, control, worker reports and resolutions come before signals: a halt, a
        # freed slot or a resolved market takes effect before the signals that arrived with it.
        self.consumer = StreamConsumer(
            self.redis, [k.control(), k.sessions(), k.fills(), k.resolutions(), k.redemptions(), k.signals()],
            GROUP_ORCHESTRATOR,
            self.instance,
            claim_idle_ms=self.leader_ttl_ms,
        )
        await self.consumer.ensure_groups()
        if self.reloader is None:
            self.reloader = ConfigReloader(self.settings)
        self._ready = True

    def _current_settings(self) -> Settings:
        return self.settings

    async def run(self) -> None:
        await self._setup()
        logger.info("orchestrator {} up; waiting for the leader lease", self.instance)
        try:
            while not self._stop.is_set():
                try:
                    await self.step()
                except (ConnectionError, *TRANSIENT_REDIS_ERRORS) as exc:
                    logger.warning("Redis trouble ({}); retrying", exc)
                    await self.sleep_unless_stopped(1.0)
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                await self.lease.release()
            await self.close_redis()

    async def step(self, block_ms: int = 200) -> None:
        """Reload config if due, hold the lease, read the streams, maintain when its interval passed."""
        if not self._ready:
            await self._setup()
        loop_now = asyncio.get_running_loop().time()
        await self._maybe_reload(loop_now)
        leading, became = await self.lease.renew()
        metrics.LEADER.set(1 if leading else 0)
        if became:
            logger.info("orchestrator {} is the leader", self.instance)
        if not leading:
            await self.sleep_unless_stopped(self.settings.scheduler.poll_interval_sec)
            return
        entries = await self.consumer.read(count=500, block_ms=block_ms)
        if entries:
            await self.handle_batch(entries)
        if loop_now - self._last_maintain >= self.settings.scheduler.poll_interval_sec:
            self._last_maintain = loop_now
            await self.upkeep.maintain()
        elif self.upkeep.schedule_due:
            await self.upkeep.schedule()  # a slot or a queued token appeared: start now, not at the next poll
        if self.demotion.due(loop_now):  # auto-demotion: pause leaders that break a rule
            try:
                await self.demotion.check(loop_now)
            except (ConnectionError, *TRANSIENT_REDIS_ERRORS):
                raise  # Redis trouble: the loop's own retry
            except Exception:  # a scorecard the check cannot read must not stop the orchestrator
                logger.exception("auto-demotion check failed; the next one runs in {} s",
                                 self.settings.copytrade.demotion.check_interval_sec)
        if loop_now - self._last_beat >= self.settings.monitoring.heartbeat_interval_sec:
            self._last_beat = loop_now
            await beat(self.redis, self.keys, "orchestrator", self.instance,
                       self.settings.monitoring.heartbeat_interval_sec,
                       {"decisions": self.decisions, "duplicates": self.duplicates,
                        "skipped": self.consumer.skipped, "leader": True})

    # --- config reload (C9) ----------------------------------------------------------------

    async def _maybe_reload(self, loop_now: float) -> None:
        if self.reloader is None or not self.reloader.due(loop_now):
            return
        result = self.reloader.poll()
        if not result.changed and not result.error:
            return
        pipe = self.redis.pipeline(transaction=True)
        if result.error:
            logger.error("config reload refused; the last good config stays in force: {}", result.error)
            self.store.event(pipe, "config.invalid", reason=result.error, level="error", path=str(self.reloader.path))
        else:
            assert result.settings is not None
            self.settings = result.settings
            logger.info("config reloaded: {} changed", ", ".join(result.changed_sections) or "nothing")
            self.store.event(pipe, "config.reloaded", reason="changed: " + (", ".join(result.changed_sections) or "-"),
                             path=str(self.reloader.path), sections=list(result.changed_sections))
        await pipe.execute()

    # --- one stream entry ------------------------------------------------------------------

    async def handle_batch(self, entries: list[StreamEntry]) -> None:
        """Decide a read's entries in order. Runs of BUY signals for distinct tokens are decided
        together (one read of their context, one reservation call, one MULTI with their acks); any
        other entry, or a second BUY for a token already in the run, closes the run first."""
        run: list[StreamEntry] = []
        for entry in entries:
            msg = entry.message
            is_buy = isinstance(msg, Signal) and msg.side == "BUY"
            if run and (not is_buy or msg.token_id in {e.message.token_id for e in run}):  # type: ignore[attr-defined]
                await self._decide_buys(run)
                run = []
            if is_buy:
                run.append(entry)
            else:
                await self.handle(entry)
        if run:
            await self._decide_buys(run)

    async def handle(self, entry: StreamEntry) -> None:
        msg = entry.message
        if isinstance(msg, Signal) and msg.side == "BUY":
            await self._decide_buys([entry])
            return
        pipe = self.redis.pipeline(transaction=True)
        applied_kind = "signals" if isinstance(msg, Signal) else "fills" if isinstance(msg, Fill) else \
            "resolutions" if isinstance(msg, Resolution) else "redemptions" if isinstance(msg, Redemption) else ""
        if applied_kind and await self.redis.zscore(self.keys.applied(applied_kind), msg.id) is not None:
            # The same signal or fill twice (a producer retried its XADD): applied once already.
            self.tally.duplicate()
            logger.debug("{} {} already applied; acked", applied_kind, msg.id)
        else:
            if isinstance(msg, Signal):
                await self.intake.on_sell(pipe, msg, entry.entry_id)
            elif isinstance(msg, SessionReport):
                await self.reports.on_session(pipe, msg, entry.entry_id)
            elif isinstance(msg, Fill):
                await self.reports.on_fill(pipe, msg, entry.entry_id)
            elif isinstance(msg, TradeStatus):  # idempotent by itself: a known status changes nothing
                await self.reports.on_trade_status(pipe, msg, entry.entry_id)
            elif isinstance(msg, ControlRequest):
                await self.control.on_control(pipe, msg, entry.entry_id)
            elif isinstance(msg, Resolution):
                await self.resolutions.on_resolution(pipe, msg, entry.entry_id)
            elif isinstance(msg, Redemption):
                await self.reports.on_redemption(pipe, msg, entry.entry_id)
                await self.resolutions.on_redeemed(pipe, msg)
            else:
                logger.warning("{} on {} is not for the orchestrator; skipped", msg.TYPE, entry.stream)
            if applied_kind:
                pipe.zadd(self.keys.applied(applied_kind), {msg.id: now_ms()})
        pipe.xack(entry.stream, GROUP_ORCHESTRATOR, entry.entry_id)
        await pipe.execute()
        self.tally.decided()
        if not isinstance(msg, (Fill, TradeStatus)):
            self.upkeep.schedule_due = True

    async def _decide_buys(self, run: list[StreamEntry]) -> None:
        if await self.intake.decide_buys(run):
            self.upkeep.schedule_due = True
