"""ArbScannerService: the arb_scanner's setup, run/stop and wiring (E1-E4). The decisions live in
detect.py, catalogue.py, tracker.py, risk.py and resolve.py; each loop is a room of its own:

* :mod:`catalogue_sync` -- Gamma ``/events`` -> ``pf:arb:catalogue`` every
  ``arbitrage.catalogue_refresh_sec``; its tokens into ``pf:gw:want:arb_scanner`` and the tick feed.
* :mod:`evaluation` -- the shared tick feed (``seq`` gaps and reconnects re-read ``pf:book``);
  each tick re-evaluates its sets; opportunities and near misses to ``pf:opportunities``; the rescan.
* :mod:`depth` -- the legs' full books from the venue's ``POST /books``, through the shared decoder.
* :mod:`execution` -- (``arbitrage.execute``) one at a time, after a fresh book and the risk
  check; audited as ``arb.executed``, booked in ``pf:arb:*``.
* :mod:`resolution` -- held sets checked every ``arbitrage.resolution_check_sec``, redeemed and
  booked (``arb.redeemed``).

They share one :class:`~services.arb_scanner.context.ScanContext` (Redis, settings, HTTP, counters,
the catalogue in force, the audit writer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.arb_scanner.budget import FleetBudget
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.catalogue_sync import CatalogueSync
from services.arb_scanner.context import SERVICE, ScanContext
from services.arb_scanner.ctf import Ctf, CtfError, check_execution_mode, make_ctf
from services.arb_scanner.depth import Depth
from services.arb_scanner.detect import Kind
from services.arb_scanner.evaluation import TickEvaluation
from services.arb_scanner.execute import Executor
from services.arb_scanner.execution import Execution
from services.arb_scanner.resolution import ResolutionWatch
from shared.config import Settings, load_secrets
from shared.redisio.health import beat
from shared.service import RedisService
from shared.ticks import Tick


def _pct(values: deque[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


class ArbScannerService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.cfg = settings.arbitrage
        self.ctx = ScanContext(settings, instance, self.keys, lambda: self.redis)
        self.depth = Depth(self.ctx)
        self.ticks = TickEvaluation(self.ctx, self.depth)
        self.catalogue = CatalogueSync(self.ctx, self.ticks)
        self.execution = Execution(self.ctx, self.depth, self.ticks)
        self.resolution = ResolutionWatch(self.ctx)
        self.ticks.on_opportunity = self.execution.offer
        self.ctf: Ctf | None = None

    # what the rooms hold, read where the service is observed (tests, the benchmark)
    @property
    def kinds(self) -> set[Kind]:
        return self.catalogue.kinds

    @property
    def sets(self) -> dict[str, ArbSet]:
        return self.ctx.sets

    @property
    def tops(self) -> dict[str, Tick]:
        return self.ticks.tops

    @property
    def stats(self) -> dict[str, int]:
        return self.ctx.stats

    @property
    def executor(self) -> Executor | None:
        return self.execution.executor

    # ---- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.connect_redis()
        try:
            if not self.cfg.enabled:
                logger.info("arbitrage.enabled is false: arb_scanner idles (heartbeat only)")
                while not await self.sleep_unless_stopped(self.settings.monitoring.heartbeat_interval_sec):
                    await self._heartbeat("disabled")
                return
            self.ctx.open_http()
            if self.cfg.execute:
                await self._setup_execution()
            while not self.stopping and not await self.catalogue.refresh():
                await self.sleep_unless_stopped(5.0)
            stop = self._stop
            tasks = [asyncio.create_task(c) for c in (
                self.catalogue.run(stop), self.ticks.feed.run(stop), self.ticks.rescan(stop),
                self.depth.run(stop, self.ticks.evaluate_set), self._heartbeat_loop(), self.execution.run(stop),
                self.resolution.run(stop))]
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.ticks.close()
            await self.ctx.close_http()
            if self.ctf is not None:
                await self.ctf.aclose()
            await self.close_redis()

    async def _setup_execution(self) -> None:
        from shared.venue.clob import make_clob_client  # the SDK only when trading
        from shared.venue.taker import TakerOrders

        check_execution_mode(self.settings)  # before the SDK client: paper mode must never reach the venue
        secrets = load_secrets()
        env = await self.ctx.venue()
        client = await asyncio.to_thread(make_clob_client, self.settings, secrets, env)
        orders = TakerOrders(client)
        self.ctf = self.resolution.ctf = make_ctf(self.settings, orders.address, secrets, env)
        await self._approve(self.ctf)
        self.execution.executor = Executor(orders, self.ctf, self.cfg.order_type, self.cfg.unwind_slippage)
        self.execution.budget = self.resolution.budget = FleetBudget(self.redis, self.keys,
                                                                     self.settings.risk.max_notional_total)
        logger.warning("arbitrage execution is ON ({} mode, account {})", self.settings.mode, orders.address)

    async def _approve(self, ctf: Ctf) -> None:
        """On chain, the allowances the position calls need (docs/arbitrage.md "Approvals"): read
        first, send only what is missing. A failure is reported and execution goes on: a merge
        without them reverts, which the executor already handles (the sets are held)."""
        from services.arb_scanner.chain_ctf import ChainCtf

        if not isinstance(ctf, ChainCtf) or not self.cfg.chain.approve:
            return
        try:
            sent = await ctf.ensure_approvals()
        except CtfError as exc:  # rejected or unknown alike: reported, and execution goes on
            logger.error("approvals not in place: {}", exc)
            await self.ctx.audit("arb.approvals", "error", "", str(exc), {})
            return
        if sent:
            logger.warning("approvals sent: {}", sent)
            await self.ctx.audit("arb.approvals", "warning", "", f"{len(sent)} sent", {"sent": sent})

    # ---- health ---------------------------------------------------------------------------------
    async def _heartbeat(self, state: str) -> None:
        latency = self.ticks.latency_ms
        with contextlib.suppress(RedisError, OSError):
            await beat(self.redis, self.keys, SERVICE, self.instance, self.settings.monitoring.heartbeat_interval_sec,
                       {"state": state, **self.ctx.stats, **self.ticks.counters(), "tokens": len(self.ctx.by_token),
                        "execute": self.execution.executor is not None,
                        "detect_p50_ms": _pct(latency, 0.5), "detect_p99_ms": _pct(latency, 0.99)})

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._heartbeat("running")
            if await self.sleep_unless_stopped(self.settings.monitoring.heartbeat_interval_sec):
                return
