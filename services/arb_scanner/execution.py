"""Execution (E4, ``arbitrage.execute``): one arbitrage at a time, from a queue the tick
evaluation fills (:meth:`Execution.offer`).

Each one passes the risk check (:mod:`risk`, with the fleet's budget: :mod:`budget`), trades on a
fresh REST book (:mod:`depth`), re-evaluated with the room the check left; then the
:class:`~services.arb_scanner.execute.Executor` sends the legs and merges or splits. The result is
audited on ``pf:events`` (``arb.executed``) and booked in ``pf:arb:*``; complete sets kept go to
``pf:arb:held`` for :mod:`resolution`. A :class:`~services.arb_scanner.ctf.CtfHalt` (an order or a
chain call whose outcome is unknown) stops execution until a person looks (``arb.halted``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from services.arb_scanner import risk
from services.arb_scanner.budget import FleetBudget
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.context import SERVICE, ScanContext
from services.arb_scanner.ctf import CtfError, CtfHalt
from services.arb_scanner.depth import Depth
from services.arb_scanner.detect import EPS, Kind, Params, Verdict, evaluate
from services.arb_scanner.evaluation import TickEvaluation
from services.arb_scanner.execute import ExecReport, Executor
from services.arb_scanner.resolve import HeldSet
from shared.clock import now_ms
from shared.messages import stable_id


class Execution:
    def __init__(self, ctx: ScanContext, depth: Depth, ticks: TickEvaluation) -> None:
        self.ctx = ctx
        self.depth = depth
        self.ticks = ticks
        self.queue: asyncio.Queue[tuple[str, Kind]] = asyncio.Queue()
        self.pending: set[tuple[str, Kind]] = set()
        self.executor: Executor | None = None  # None: execution off, or halted
        self.budget: FleetBudget | None = None

    def offer(self, s: ArbSet, kind: Kind) -> None:
        """An opportunity on the full books: queued once, while execution is on and it may trade."""
        if self.executor is None or not self._may_execute(s, kind):
            return
        if (s.id, kind) not in self.pending:
            self.pending.add((s.id, kind))
            self.queue.put_nowait((s.id, kind))

    def _may_execute(self, s: ArbSet, kind: Kind) -> bool:
        cfg = self.ctx.cfg
        if kind is Kind.NEGRISK_BUY_ALL and not cfg.hold_to_resolution:
            return False
        return s.end_ts is None or s.end_ts - time.time() >= cfg.min_seconds_to_end

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            set_id, kind = await self.queue.get()
            try:
                await self.execute_one(set_id, kind)
            except Exception:
                logger.exception("arbitrage execution of {} {} failed", kind, set_id[:12])
            finally:
                self.pending.discard((set_id, kind))

    async def risk_state(self, s: ArbSet) -> risk.RiskState:
        r, k = self.ctx.redis, self.ctx.keys
        now = now_ms()
        async with r.pipeline(transaction=False) as p:
            p.hget(k.arb_exposure(), s.id)
            p.hget(k.arb_exposure(), "_total")
            p.zcount(k.arb_trades(), now - 60_000, "+inf")
            p.hget(k.arb_pnl_daily(), datetime.now(UTC).strftime("%Y-%m-%d"))
            p.get(k.halt())
            held, total, trades, pnl, halt = await p.execute()
        return risk.RiskState(float(held or 0), float(total or 0), int(trades or 0), float(pnl or 0), halt or "")

    async def execute_one(self, set_id: str, kind: Kind) -> None:
        s = self.ctx.sets.get(set_id)
        if s is None or self.executor is None:
            return
        cfg, stats, params = self.ctx.cfg, self.ctx.stats, self.ticks.params
        limits = risk.Limits(cfg.max_notional_per_market, cfg.max_notional_total, cfg.max_trades_per_minute,
                             cfg.max_daily_loss)
        state = await self.risk_state(s)
        decision = risk.check(limits, state)
        if decision.allowed and self.budget is not None:  # the fleet's total, shared with the maker workers
            fleet_room = await self.budget.room(s.id) - state.held_market
            decision = risk.Decision(fleet_room > EPS, min(decision.room, fleet_room),
                                     "" if fleet_room > EPS else "fleet risk budget (risk.max_notional_total) in use")
        if not decision.allowed:
            stats["execution_refusals"] += 1
            logger.info("arbitrage {} {} not executed: {}", kind, set_id[:12], decision.reason)
            return
        if not await self.depth.fetch(s.tokens):  # trade on the venue's book of this moment
            return
        got = self.ticks.legs(s, kind)
        if got is None:
            return
        legs, _ = got
        probe = evaluate(kind, legs, params)
        cost_per_set = 1.0 if not kind.buys else max(probe.cost / probe.size if probe.size else 1.0, EPS)
        capped = Params(params.min_edge, params.haircut, params.near_miss_band, params.min_notional,
                        risk.max_sets(decision.room, cost_per_set))
        ev = evaluate(kind, legs, capped)
        if ev.verdict is not Verdict.OPPORTUNITY:
            logger.info("arbitrage {} {} gone before execution: {}", kind, set_id[:12], ev.reason or ev.verdict)
            return
        if self.budget is not None:
            # the most the legs can pay (every leg at its limit, plus fees); a split costs $1 a set
            spend = sum(ev.limits) * ev.size + ev.fees if kind.buys else ev.size
            claim = await self.budget.claim(s.id, state.held_market + spend)
            if not claim.ok:
                stats["execution_refusals"] += 1
                logger.info("arbitrage {} {} not executed: fleet risk budget ({:.2f} committed)", kind,
                            set_id[:12], claim.committed)
                return
        exec_id = stable_id(SERVICE, set_id, kind, now_ms())
        await self.ctx.redis.zadd(self.ctx.keys.arb_trades(), {exec_id: now_ms()})
        stats["executions"] += 1
        logger.warning("executing {} on {}: {:g} sets, expected profit {:.4f}", kind, set_id[:12], ev.size, ev.profit)
        try:
            rep = await self.executor.run(s, ev)
        except CtfError as exc:  # an order or a chain call with an unknown outcome (CtfHalt: the executor
            # handles every CtfRejected itself, so one reaching here is as unknown): stop until a person looks
            logger.error("arbitrage stopped: {}", exc)
            self.executor = None
            report = exc.report if isinstance(exc, CtfHalt) else None
            await self.ctx.audit("arb.halted", "error", set_id, str(exc),
                                 {"kind": str(kind), **({"execution": report} if report else {})})
            return
        await self.record(exec_id, s, rep.detail(), rep.pnl, rep.held_cost)
        if rep.held_sets > EPS:
            await self.hold(s, rep)
        if self.budget is not None:  # the claim comes down to what is still held (an unknown outcome keeps it)
            await self.budget.settle(s.id, state.held_market + rep.held_cost)

    async def record(self, exec_id: str, s: ArbSet, detail: dict[str, Any], pnl: float, held: float) -> None:
        r, k = self.ctx.redis, self.ctx.keys
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        async with r.pipeline(transaction=True) as p:
            if held:
                p.hincrbyfloat(k.arb_exposure(), s.id, held)
                p.hincrbyfloat(k.arb_exposure(), "_total", held)
            p.hincrbyfloat(k.arb_pnl_daily(), day, pnl)
            p.zremrangebyscore(k.arb_trades(), "-inf", now_ms() - 3_600_000)
            await p.execute()
        level = "info" if detail.get("status") == "done" else "warning"
        await self.ctx.audit("arb.executed", level, s.id, str(detail.get("status")), {"exec_id": exec_id, **detail})

    async def hold(self, s: ArbSet, rep: ExecReport) -> None:
        """Remember the complete sets kept, so their resolution can be redeemed and booked."""
        r, k = self.ctx.redis, self.ctx.keys
        raw = await r.hget(k.arb_held(), s.id)
        held = (HeldSet.from_json(raw).add(rep.held_sets, rep.held_sets_cost) if raw
                else HeldSet.of(s, str(rep.kind), rep.held_sets, rep.held_sets_cost))
        await r.hset(k.arb_held(), s.id, held.to_json())
