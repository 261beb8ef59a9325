"""What a token's settlement ledger adds up to (pure): matched and confirmed books, pending, failed.

A fill is booked when it is matched; its trade settles later (docs/venue.md T1-T2). The ledger
(shared/ledger.py) keeps each fill with its trade's status, and :func:`settle` folds it, in the
order the fills were written (their pf:fills entry ids) whatever order the fills and the
statuses were read in, into:

* the **matched** book: every fill not FAILED. ``position`` is what the worker trades on; its
  realised PnL is the token's ``realized_pnl`` and goes to ``pf:pnl:daily`` on the fill's day,
  so a loss counts against ``risk.max_daily_loss`` as soon as it is matched.
* the **confirmed** book: CONFIRMED fills only (``position_confirmed``, ...): what the venue's
  balances show once settled; realised PnL here counts confirmed sells only.
* **pending**: the fills still MATCHED, MINED or RETRYING (shares each way, their $).

A FAILED trade's fills drop out of both books, so re-folding reverses their effect on position,
average cost, exposure and PnL exactly, later fills included. Exposure is the larger of the two
books' (|position| x average cost): a pending BUY is money already paid, a pending SELL's
shares are still ours until it settles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

from services.orchestrator.positions import Book, utc_day
from shared.ledger import FINAL, Adjustment, Base, Ledger, LedgerFill

EPS = 1e-9


@dataclass(frozen=True)
class Totals:
    matched: Book
    confirmed: Book
    pending_buy: float  # shares
    pending_sell: float
    pending_notional: float  # $ of the pending fills (BUY cost + SELL proceeds)
    pending_trades: frozenset[str]
    failed_trades: frozenset[str]  # FAILED trades still in the ledger's entries
    failed_before: int  # FAILED trades folded into the base
    realized_by_day: Mapping[str, float]  # the entries' matched realised PnL per UTC day of the fill

    @property
    def exposure(self) -> float:
        return max(self.matched.exposure, self.confirmed.exposure)

    @property
    def pending(self) -> float:
        return self.matched.position - self.confirmed.position

    def fields(self) -> dict[str, str]:
        """The token hash's position fields (docs/redis-schema.md, pf:token:{token_id})."""
        m, c = self.matched, self.confirmed
        return {
            "position": f"{m.position:.6f}", "avg_cost": f"{m.avg_cost:.6f}", "realized_pnl": f"{m.realized:.6f}",
            "exposure": f"{self.exposure:.6f}",
            "position_confirmed": f"{c.position:.6f}", "avg_cost_confirmed": f"{c.avg_cost:.6f}",
            "realized_pnl_confirmed": f"{c.realized:.6f}",
            "pending": f"{self.pending:.6f}", "pending_buy": f"{self.pending_buy:.6f}",
            "pending_sell": f"{self.pending_sell:.6f}", "pending_notional": f"{self.pending_notional:.6f}",
            "pending_trades": str(len(self.pending_trades)),
            "failed_trades": str(self.failed_before + len(self.failed_trades)),
        }


def _ordered(ledger: Ledger) -> list[LedgerFill | Adjustment]:
    entries: list[LedgerFill | Adjustment] = [*ledger.fills.values(), *ledger.adjustments.values()]
    return sorted(entries, key=lambda e: e.sort_key())


def settle(ledger: Ledger) -> Totals:
    matched, confirmed = Book(*ledger.base.matched), Book(*ledger.base.confirmed)
    buy = sell = notional = 0.0
    pending: set[str] = set()
    failed: set[str] = set()
    by_day: dict[str, float] = defaultdict(float)
    for e in _ordered(ledger):
        if isinstance(e, Adjustment):
            matched.adjust(e.shares)
            confirmed.adjust(e.shares)
            continue
        status = ledger.status_of(e)
        if status == "FAILED":
            failed.add(e.trade)
            continue
        by_day[utc_day(e.ts)] += matched.apply(e.side, e.price, e.size, e.fee)
        if status == "CONFIRMED":
            confirmed.apply(e.side, e.price, e.size, e.fee)
        else:
            pending.add(e.trade)
            notional += e.price * e.size
            if e.side == "BUY":
                buy += e.size
            else:
                sell += e.size
    return Totals(matched, confirmed, buy, sell, notional, frozenset(pending), frozenset(failed),
                  ledger.base.failed_trades, dict(by_day))


def compact(ledger: Ledger) -> Ledger:
    """Fold the settled head of the ledger into its base (at a session's close, when its fills
    are all in): the entries up to the first one still pending, stopping short of a trade with
    fills on both sides of that point. ``settle`` gives the same books before and after."""
    ordered = _ordered(ledger)
    cut = 0
    while cut < len(ordered):
        e = ordered[cut]
        if isinstance(e, LedgerFill) and ledger.status_of(e) not in FINAL:
            break
        cut += 1
    while True:  # a trade is folded whole or not at all, so the failed count counts it once
        later_trades = {e.trade for e in ordered[cut:] if isinstance(e, LedgerFill)}
        split = [i for i, e in enumerate(ordered[:cut]) if isinstance(e, LedgerFill) and e.trade in later_trades]
        if not split:
            break
        cut = split[0]
    head = ordered[:cut]
    if not head:
        return ledger
    folded = settle(Ledger(ledger.base, {e.fill_id: e for e in head if isinstance(e, LedgerFill)},
                           ledger.statuses, {e.epoch: e for e in head if isinstance(e, Adjustment)}))
    m, c = folded.matched, folded.confirmed
    base = Base((m.position, m.avg_cost, m.realized), (c.position, c.avg_cost, c.realized),
                folded.failed_before + len(folded.failed_trades))
    folded_fills = {e.fill_id for e in head if isinstance(e, LedgerFill)}
    folded_epochs = {e.epoch for e in head if isinstance(e, Adjustment)}
    gone = {e.trade for e in head if isinstance(e, LedgerFill)}
    fills = {i: f for i, f in ledger.fills.items() if i not in folded_fills}
    # A status whose trade has no fill here yet stays: its fill may still come.
    statuses = {t: s for t, s in ledger.statuses.items() if t not in gone}
    adjustments = {k: a for k, a in ledger.adjustments.items() if k not in folded_epochs}
    return replace(ledger, base=base, fills=fills, statuses=statuses, adjustments=adjustments)


def daily_changes(old: Totals, new: Totals) -> dict[str, float]:
    """How each UTC day's realised PnL moved from ``old`` to ``new`` (days that did not move left out)."""
    days = set(old.realized_by_day) | set(new.realized_by_day)
    out = {d: new.realized_by_day.get(d, 0.0) - old.realized_by_day.get(d, 0.0) for d in sorted(days)}
    return {d: v for d, v in out.items() if abs(v) > EPS}


@dataclass(frozen=True)
class FailedTrade:
    trade_id: str
    side: str  # BUY, SELL, or BUY+SELL when one trade filled orders of ours on both sides
    size: float
    price: float  # size-weighted
    fills: tuple[str, ...]


def newly_failed(old: Totals, new: Totals, ledger: Ledger) -> list[FailedTrade]:
    """The trades that ``new`` voids and ``old`` did not (``ledger`` is the one ``new`` came from)."""
    out = []
    for trade in sorted(new.failed_trades - old.failed_trades):
        fills = ledger.fills_of(trade)
        size = sum(f.size for f in fills)
        price = sum(f.price * f.size for f in fills) / size if size > 0 else 0.0
        side = "+".join(sorted({f.side for f in fills}))
        out.append(FailedTrade(trade, side, round(size, 6), round(price, 6), tuple(f.fill_id for f in fills)))
    return out
