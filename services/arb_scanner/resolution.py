"""Sets held to resolution (with execution on): every ``arbitrage.resolution_check_sec`` each set
in ``pf:arb:held`` has its markets read from the CLOB ``/markets/{condition_id}`` winner flags;
a resolved set is redeemed through the Ctf and booked once (:mod:`resolve` decides,
``arb.redeemed`` on ``pf:events``). A redeem that is refused, reverted or unknown books nothing:
the held record and the claim stay, and the next check retries.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from loguru import logger

from services.arb_scanner.budget import FleetBudget
from services.arb_scanner.context import ScanContext, sleep_unless
from services.arb_scanner.ctf import Ctf, CtfError
from services.arb_scanner.resolve import HeldSet, Resolution, decide, settled_exposure
from shared.venue.clob_market import MarketState, read_market_states


class ResolutionWatch:
    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.ctf: Ctf | None = None  # None: execution is off
        self.budget: FleetBudget | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not await sleep_unless(stop, self.ctx.cfg.resolution_check_sec):
            if self.ctf is None:  # execution is off: nothing of ours to redeem
                continue
            try:
                await self.check_resolutions()
                self.ctx.stats["resolution_checks"] += 1
            except Exception:  # the loop outlives one bad check; the next retries
                logger.exception("resolution check failed")

    async def market_states(self, condition_ids: tuple[str, ...]) -> dict[str, MarketState]:
        return await read_market_states(self.ctx.http, await self.ctx.venue_url("clob_url"), condition_ids)

    async def check_resolutions(self) -> None:
        r, k = self.ctx.redis, self.ctx.keys
        held = {sid: HeldSet.from_json(raw) for sid, raw in (await r.hgetall(k.arb_held())).items()}
        self.ctx.stats["held_sets"] = len(held)
        for h in held.values():
            res = decide(h, await self.market_states(h.condition_ids))
            if res is not None:
                await self.redeem(h, res)

    async def redeem(self, h: HeldSet, res: Resolution) -> None:
        assert self.ctf is not None
        r, k, stats = self.ctx.redis, self.ctx.keys, self.ctx.stats
        for rd in res.redeems:
            try:
                tx = await self.ctf.redeem(rd.condition_id, h.market_version)
            except CtfError as exc:  # rejected or halt alike: the claim stays, the next check retries
                stats["redeem_errors"] += 1
                logger.warning("redeem of {} ({}) not done: {}; retrying later", h.set_id[:12], rd.condition_id[:12],
                               exc)
                return
            logger.info("redeemed {} of set {}: tx {}", rd.condition_id[:12], h.set_id[:12], tx)
            h = h.with_redeemed(rd.condition_id)  # a retry after a later failure skips it
            await r.hset(k.arb_held(), h.set_id, h.to_json())
        exposure = float(await r.hget(k.arb_exposure(), h.set_id) or 0)
        left = settled_exposure(exposure, h.cost)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        async with r.pipeline(transaction=True) as p:  # booked once: the held record goes in the same step
            p.hdel(k.arb_held(), h.set_id)
            if left > 0:
                p.hset(k.arb_exposure(), h.set_id, repr(left))
            else:
                p.hdel(k.arb_exposure(), h.set_id)
            p.hincrbyfloat(k.arb_exposure(), "_total", -(exposure - left))
            p.hincrbyfloat(k.arb_pnl_daily(), day, res.pnl)
            await p.execute()
        if self.budget is not None:
            await self.budget.settle(h.set_id, left)
        stats["redeemed"] += 1
        logger.warning("set {} resolved: {:g} sets paid {:.4f}, PnL {:.4f}", h.set_id[:12], h.sets, res.payout, res.pnl)
        await self.ctx.audit("arb.redeemed", "info", h.set_id, "resolved", {
            "kind": h.kind, "sets": h.sets, "cost": h.cost, "payout": res.payout, "pnl": res.pnl,
            "winners": list(res.winners), "conditions": list(h.condition_ids), "exposure_left": left})
