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
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.arb_scanner.budget import FleetBudget
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.catalogue_sync import CatalogueSync
from services.arb_scanner.context import SERVICE, ScanContext
from services.arb_scanner.ctf import Ctf, VenueCtf, check_execution_mode
from services.arb_scanner.depth import Depth
from services.arb_scanner.detect import Kind
from services.arb_scanner.evaluation import TickEvaluation
from services.arb_scanner.execute import Executor
from services.arb_scanner.execution import Execution
from services.arb_scanner.resolution import ResolutionWatch
from services.arb_scanner.settle import SettleRules, Settling
from shared.config import Settings, load_secrets
from shared.redisio.health import beat
from shared.service import RedisService
from shared.ticks import Tick
from shared.venue.environment import VenueEnvironment, with_rpc_secret
from shared.venue.errors import VenueError, VenueSetupError

if TYPE_CHECKING:
    from shared.venue.account import VenueAccount

SETUP_RETRY_SEC = 5.0  # the venue did not answer at start: ask again this often


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
        self.account: VenueAccount | None = None  # the trading account (execution on)
        self._setup_task: asyncio.Task[None] | None = None

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
                check_execution_mode(self.settings)  # paper mode must never reach the venue
                self._setup_task = asyncio.create_task(self._setup_execution())
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
            if self._setup_task is not None:
                self._setup_task.cancel()
                await asyncio.gather(self._setup_task, return_exceptions=True)
            await self.ticks.close()
            await self.ctx.close_http()
            if self.account is not None:
                await self.account.close()
            await self.close_redis()

    async def _setup_execution(self) -> None:
        """Open the trading account (a missing deposit wallet is created through the relayer, said
        in one line), put the approvals in place, then turn execution on. A bad setup leaves
        execution off with one error naming the fix (``arb.setup_error``): nothing sent, nothing
        lost; a venue that does not answer is asked again while the scanner scans."""
        while not self.stopping:
            try:
                await self._open_execution()
                return
            except VenueSetupError as exc:
                logger.error("arbitrage execution stays off: {}; fix: {}", exc.problem, exc.fix)
                await self.ctx.audit("arb.setup_error", "error", "", exc.problem, {"fix": exc.fix})
                return
            except (VenueError, ConnectionError) as exc:  # the venue did not answer: nothing was decided
                logger.warning("arbitrage execution not ready ({}); retrying", exc)
            except Exception:  # a fault of ours: execution stays off, said once
                logger.exception("arbitrage execution setup failed; execution stays off")
                return
            await self.sleep_unless_stopped(SETUP_RETRY_SEC)

    async def _open_execution(self) -> None:
        from shared.venue.orders import VenueOrders  # the SDK only when trading
        from shared.venue.positions import Positions
        from shared.venue.rate_budget import rate_budget
        from shared.venue.taker import TakerOrders
        from shared.venue.wallet_setup import open_trading_account

        secrets = load_secrets()
        env = with_rpc_secret(await self.ctx.venue(), secrets)
        opened = await open_trading_account(self.settings, secrets, env)
        self.account = opened.account
        if opened.created:
            await self.ctx.audit("arb.wallet_created", "warning", "", f"deposit wallet {opened.info.address} created",
                                 {"wallet": opened.info.address, "signer": opened.info.signer})
        await self._approve(opened.account.client, env, opened.info.address)
        # the signer's order budget is the fleet's (shared with the maker workers, docs/venue.md R2)
        orders = TakerOrders(VenueOrders(opened.account, rate_budget(self.settings, self.redis, self.keys,
                                                                     opened.account.rate)))
        positions = Positions(opened.account.client, env.address("neg_risk_adapter"), self.cfg.chain.receipt_timeout_sec)
        self.ctf = self.resolution.ctf = VenueCtf(positions)
        self.execution.budget = self.resolution.budget = FleetBudget(self.redis, self.keys,
                                                                     self.settings.risk.max_notional_total)
        self.execution.executor = Executor(orders, self.ctf, self.cfg.order_type, self.cfg.unwind_slippage,
                                           Settling(orders, SettleRules.from_config(self.cfg)))
        logger.warning("arbitrage execution is ON ({} mode, {})", self.settings.mode, opened.info.describe())

    async def _approve(self, client: Any, env: VenueEnvironment, wallet: str) -> None:
        """Every approval the contracts in use need (docs/arbitrage.md "Positions"): read first,
        sent only when missing (``chain.approve``), so a restart sends nothing twice. Still missing
        afterwards: a setup error naming ``polyfleet setup-wallet``."""
        from shared.venue import approvals

        sent = await approvals.ensure(client, env, wallet, self.cfg.chain.approve, self.cfg.chain.receipt_timeout_sec)
        if sent:
            labels = [f"{a.label} {a.spender}" for a in sent]
            logger.warning("approvals sent for {}: {}", wallet, "; ".join(labels))
            await self.ctx.audit("arb.approvals", "warning", "", f"{len(sent)} sent", {"sent": labels})

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
