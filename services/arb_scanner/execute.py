"""Executing one arbitrage (E4): both legs at once, unwind what is left alone, merge or split.

Buying sets (``buy_both``, ``negrisk_buy_all``): every leg is a BUY at its limit price, sent
concurrently as FOK (or FAK). The sets completely bought (the smallest fill) are merged for $1
each (binary) or held to resolution (neg-risk); what one leg bought beyond that is sold back at
once (FAK, down to ``unwind_slippage`` under the limit): a lone leg is a directional bet, not an
arbitrage.

Selling sets (``split_sell``, ``negrisk_sell_all``): the sets are made first (split $1 into
YES + NO; for an event, split outcome 0 and convert its NO into the YES of every other outcome),
then every leg is a SELL. Unsold complete sets are merged back (binary); leftovers are sold FAK.

Fills settle late (:mod:`settle`): after the legs, and after an unwind, the executor waits for
their trades; a FAILED trade is voided from its leg (its shares never moved), so the sets are
counted from what settled. A merge refused because the shares are not there yet is retried with
backoff (``merge_retry_sec``), re-reading the legs between tries.

The report carries every cash flow, so the caller books PnL and the $ still held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from loguru import logger

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.ctf import Ctf, CtfHalt, CtfRejected, CtfShort
from services.arb_scanner.detect import EPS, Evaluation, Kind, floor_size, whole_cent_size
from services.arb_scanner.settle import SettleRules, Settling, voided
from shared.backoff import Backoff
from shared.venue.ids import system_of
from shared.venue.taker import TakeResult, TakerOrders

# a merge short of shares: retried after 0.5 s, 1 s, 2 s ... 8 s, until merge_retry_sec has passed
MERGE_BACKOFF = Backoff(max_attempts=1_000_000, initial_backoff_sec=0.5, backoff_multiplier=2.0,
                        max_backoff_sec=8.0, jitter_fraction=0.2)


@dataclass
class LegFill:
    token_id: str
    side: str
    filled: float  # matched shares, less those of trades that FAILED at settlement
    avg_price: float
    fee: float
    error: str = ""
    trade_ids: tuple[str, ...] = ()
    voided: float = 0.0  # shares of its trades that FAILED
    failed_trades: tuple[str, ...] = ()


@dataclass
class ExecReport:
    kind: Kind
    set_id: str
    size: float  # sets asked for
    status: str = "done"  # done | partial | failed | refused
    legs: list[LegFill] = field(default_factory=list)
    unwinds: list[LegFill] = field(default_factory=list)
    merged: float = 0.0
    merge_tries: int = 0  # merges of the bought sets tried (more than one: short of shares until the legs settled)
    split: float = 0.0
    held_sets: float = 0.0  # complete sets kept (neg-risk buy-all: paid at resolution)
    held_sets_cost: float = 0.0  # $ paid for those sets (part of held_cost; booked when they redeem)
    cash_out: float = 0.0  # $ paid: buys, fees, splits
    cash_in: float = 0.0  # $ received: sells, merges
    held_cost: float = 0.0  # $ of positions still held (sets to resolution, stuck leftovers)
    errors: list[str] = field(default_factory=list)

    @property
    def pnl(self) -> float:
        """Realised: cash in − cash out + what is still held, at cost (counted when it pays)."""
        return round(self.cash_in - self.cash_out + self.held_cost, 6)

    def detail(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind), "set": self.set_id, "size": self.size, "status": self.status,
            "merged": self.merged, "merge_tries": self.merge_tries, "split": self.split, "held_sets": self.held_sets,
            "held_sets_cost": round(self.held_sets_cost, 6),
            "cash_out": round(self.cash_out, 6), "cash_in": round(self.cash_in, 6),
            "held_cost": round(self.held_cost, 6), "pnl": self.pnl, "errors": self.errors,
            "legs": [vars(x) for x in self.legs], "unwinds": [vars(x) for x in self.unwinds],
        }


class Executor:
    def __init__(self, orders: TakerOrders, ctf: Ctf, order_type: Literal["FOK", "FAK"],
                 unwind_slippage: float, settling: Settling | None = None) -> None:
        self.orders = orders
        self.ctf = ctf
        self.order_type = order_type
        self.unwind_slippage = unwind_slippage
        self.settling = settling or Settling(orders, SettleRules())

    async def run(self, s: ArbSet, ev: Evaluation) -> ExecReport:
        rep = ExecReport(ev.kind, s.id, ev.size)
        try:
            if ev.kind.buys:
                await self._buy_sets(s, ev, rep)
            else:
                await self._sell_sets(s, ev, rep)
        except CtfHalt as exc:  # an order or a merge/split/convert sent with no answer: the caller halts
            rep.status = "unknown"
            rep.errors.append(str(exc))
            exc.report = rep.detail()
            raise
        if rep.errors and rep.status == "done":
            rep.status = "partial"
        return rep

    async def _legs(self, s: ArbSet, ev: Evaluation, side: Literal["BUY", "SELL"], size: float) -> list[LegFill]:
        system = system_of(s.market_version)
        results: list[TakeResult] = await asyncio.gather(*[
            self.orders.take(t, side, limit, size, s.tick_size, s.neg_risk, self.order_type, system, s.min_order_size)
            for t, limit in zip(s.tokens, ev.limits, strict=True)])
        out = []
        for i, (t, res) in enumerate(zip(s.tokens, results, strict=True)):
            fee = s.fees[i].fee(res.filled, res.avg_price) if res.filled > 0 else 0.0
            out.append(LegFill(t, side, res.filled, res.avg_price, fee, res.error, res.trade_ids))
            if res.ambiguous:
                raise CtfHalt(f"order on {t[:12]} has an unknown outcome ({res.error}): stopping")
        return out

    async def _buy_sets(self, s: ArbSet, ev: Evaluation, rep: ExecReport) -> None:
        size = whole_cent_size(ev.size, ev.limits)  # every leg buys exactly the same shares
        if size <= EPS:
            rep.status = "failed"
            rep.errors.append(f"{ev.size:g} sets round to none at which every leg costs whole cents")
            return
        rep.legs = await self._legs(s, ev, "BUY", size)
        await self._settle(s, rep.legs, rep, self.settling.deadline())  # a FAILED trade's shares never came
        complete = floor_size(min(x.filled for x in rep.legs))
        if complete > EPS and ev.kind is Kind.BUY_BOTH:
            rep.merged = await self._merge_bought(s, rep)
            rep.cash_in += rep.merged
            # a leg may have lost a FAILED trade while the merge waited: the sets are what was merged, or held
            complete = rep.merged or floor_size(min(x.filled for x in rep.legs))
            rep.held_sets = 0.0 if rep.merged else complete
        elif complete > EPS:
            rep.held_sets = complete
        if complete <= EPS:
            rep.status = "failed" if not any(x.filled > 0 for x in rep.legs) else "partial"
        rep.cash_out += sum(x.filled * x.avg_price + x.fee for x in rep.legs)
        if rep.held_sets > EPS:
            rep.held_sets_cost = round(sum(complete * x.avg_price for x in rep.legs), 6)
            rep.held_cost += rep.held_sets_cost
        for i, leg in enumerate(rep.legs):
            extra = floor_size(leg.filled - complete)
            if leg.error:
                rep.errors.append(f"leg {i} ({leg.token_id[:12]}): {leg.error}")
            if extra > EPS:
                await self._unwind(s, i, extra, max(leg.avg_price, ev.limits[i]), rep)

    async def _merge_bought(self, s: ArbSet, rep: ExecReport) -> float:
        """Merge the complete sets the legs bought; the amount merged, 0 when refused (the sets are
        held). Refused for shares not there yet (:class:`CtfShort`: a leg's trades not settled), it
        is retried with backoff until ``merge_retry_sec`` has passed, re-reading the legs' trades
        between tries: one that FAILED meanwhile is voided and the sets shrink to what is left."""
        until = self.settling.now() + self.settling.rules.merge_retry_s
        while True:
            complete = floor_size(min(x.filled for x in rep.legs))
            if complete <= EPS:
                return 0.0
            rep.merge_tries += 1
            try:
                await self.ctf.merge(s.condition_ids[0], complete, s.market_version)
                return complete
            except CtfShort as exc:
                pause = MERGE_BACKOFF.delay(rep.merge_tries)
                if self.settling.now() + pause > until:
                    rep.errors.append(f"{exc} (short of shares after {rep.merge_tries} tries in "
                                      f"{self.settling.rules.merge_retry_s:g} s: the sets are held)")
                    return 0.0
                logger.info("merge of {:g} on {} short of shares (legs not settled yet): retry {} in {:.1f} s",
                            complete, s.id[:12], rep.merge_tries, pause)
                await self.settling.sleep(pause)
                await self._settle(s, rep.legs, rep, self.settling.now())  # one reading: void what FAILED
            except CtfRejected as exc:
                rep.errors.append(str(exc))
                return 0.0

    async def _settle(self, s: ArbSet, fills: list[LegFill], rep: ExecReport, until: float) -> None:
        """Wait (until ``until``, loop time) for the fills' trades to settle; take the shares of
        every trade that FAILED out of its fill (and its $ and fee with them), saying so."""
        ids = [t for f in fills for t in f.trade_ids if t not in f.failed_trades]
        if not ids:
            return
        views = await self.settling.wait(ids, until)
        for f in fills:
            gone = voided([t for t in f.trade_ids if t not in f.failed_trades], views)
            if not gone.trades:
                continue
            cash = max(f.filled * f.avg_price - gone.cash, 0.0)
            f.filled = round(f.filled - gone.shares, 6) if f.filled - gone.shares > EPS else 0.0
            f.avg_price = cash / f.filled if f.filled > 0 else 0.0
            leg = s.tokens.index(f.token_id)
            f.fee = s.fees[leg].fee(f.filled, f.avg_price) if f.filled > 0 else 0.0
            f.voided = round(f.voided + gone.shares, 6)
            f.failed_trades += gone.trades
            rep.errors.append(f"{f.side} of {f.token_id[:12]}: trade {', '.join(gone.trades)} FAILED at settlement, "
                              f"{gone.shares:g} shares voided")
            logger.warning("arbitrage {} of {}: {:g} shares voided, trade {} FAILED", f.side, f.token_id[:12],
                           gone.shares, ", ".join(gone.trades))

    async def _sell_sets(self, s: ArbSet, ev: Evaluation, rep: ExecReport) -> None:
        try:
            await self.ctf.split(s.condition_ids[0], ev.size, s.market_version)
        except CtfRejected as exc:
            rep.status = "failed"
            rep.errors.append(str(exc))
            return
        if ev.kind is Kind.NEGRISK_SELL_ALL:
            try:
                await self.ctf.convert(s.neg_risk_market_id, [0], ev.size)
            except CtfRejected as exc:  # split done, convert not: merge the split back
                rep.status = "failed"
                rep.errors.append(str(exc))
                try:
                    await self.ctf.merge(s.condition_ids[0], ev.size, s.market_version)
                except CtfRejected as exc2:
                    rep.errors.append(f"merging the split back: {exc2}")
                    rep.split = ev.size
                    rep.cash_out += ev.size
                    rep.held_cost += ev.size  # one YES + one NO of outcome 0 a set: $1 at cost
                return
        rep.split = ev.size
        rep.cash_out += ev.size
        rep.legs = await self._legs(s, ev, "SELL", ev.size)
        await self._settle(s, rep.legs, rep, self.settling.deadline())  # a FAILED sale: the shares stayed
        rep.cash_in += sum(x.filled * x.avg_price - x.fee for x in rep.legs)
        unsold = [floor_size(ev.size - x.filled) for x in rep.legs]
        back = min(unsold) if ev.kind is Kind.SPLIT_SELL else 0.0
        if back > EPS:
            try:
                await self.ctf.merge(s.condition_ids[0], back, s.market_version)
                rep.merged = back
                rep.cash_in += back
            except CtfRejected as exc:
                rep.errors.append(str(exc))
                back = 0.0
        if any(u > EPS for u in unsold):
            rep.status = "partial"
        for i, leg in enumerate(rep.legs):
            if leg.error:
                rep.errors.append(f"leg {i} ({leg.token_id[:12]}): {leg.error}")
            left = floor_size(unsold[i] - back)
            if left > EPS:
                await self._unwind(s, i, left, ev.limits[i], rep)

    async def _unwind(self, s: ArbSet, leg: int, size: float, ref_price: float, rep: ExecReport) -> None:
        """Sell ``size`` of one leg now (FAK), accepting down to ``unwind_slippage`` under ``ref_price``."""
        token = s.tokens[leg]
        floor = max(s.tick_size, round(round((ref_price - self.unwind_slippage) / s.tick_size) * s.tick_size, 6))
        res = await self.orders.take(token, "SELL", floor, size, s.tick_size, s.neg_risk, "FAK",
                                     system_of(s.market_version), s.min_order_size)
        fee = s.fees[leg].fee(res.filled, res.avg_price) if res.filled > 0 else 0.0
        sold = LegFill(token, "SELL", res.filled, res.avg_price, fee, res.error, res.trade_ids)
        await self._settle(s, [sold], rep, self.settling.deadline())  # a FAILED sale left the shares with us
        rep.unwinds.append(sold)
        rep.cash_in += sold.filled * sold.avg_price - sold.fee
        stuck = floor_size(size - sold.filled)
        if stuck > EPS:
            rep.held_cost += stuck * ref_price
            rep.errors.append(f"unwind of {token[:12]}: {stuck:g} left ({sold.error or 'partial fill'})")
            logger.warning("arbitrage unwind left {} of {} ({})", stuck, token[:12], sold.error)
