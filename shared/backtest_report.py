"""The leader backtest's figures (docs/copytrading.md "Backtest"), pure: a :class:`~shared.backtest.Replay`
and the marks of the copies still held -> the JSON the CLI prints and the API answers.

* unrealised PnL: each copy still held x (its mark - our price); the mark is the market's outcome
  (1 or 0) once it resolved, else the current mid; a copy without a mark counts 0 (``unmarked``);
* win rate: the copies whose PnL (realised + unrealised at the marks) is above 0, of those with one
  (an unmarked open copy has none);
* max drawdown: the largest fall of equity (realised + open copies marked) from an earlier peak,
  over the replay (open copies marked at the last price the leader's trades showed) and now (the marks).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.backtest import Copy, FillModel, Replay
from shared.config import CopyRules
from shared.scorecard import reason_class

SHOWN_COPIES = 500  # copies listed in the answer (the figures count them all)
SHOWN_SKIPS = 100


def copy_pnl(c: Copy, mark: float | None) -> float | None:
    """Realised + unrealised at ``mark``; None for a copy still held without a mark."""
    if c.held <= 0:
        return c.realized
    return None if mark is None else c.realized + c.held * (mark - c.price)


def max_drawdown(curve: list[tuple[int, float]]) -> float:
    peak, worst = float("-inf"), 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return worst


def report(rep: Replay, marks: dict[str, float | None], now: int, *, account: str, days: int, model: FillModel,
           rules: CopyRules, truncated: bool = False, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the backtest shows. ``marks``: token -> mark (None: unknown); ``context``: what
    else sized the copies (min_size, order_size, leader value, bankroll), echoed under ``rules``."""
    unrealized, unmarked, pnls = 0.0, 0, []
    rows = []
    for c in rep.copies.values():
        mark = marks.get(c.token_id) if c.held > 0 else None
        pnl = copy_pnl(c, mark)
        if c.held > 0 and mark is None:
            unmarked += 1
        elif c.held > 0 and mark is not None:
            unrealized += c.held * (mark - c.price)
        if pnl is not None:
            pnls.append(pnl)
        rows.append({"token_id": c.token_id, "title": c.title, "outcome": c.outcome, "at": c.at,
                     "leader_price": c.leader_price, "price": round(c.price, 6), "shares": c.shares,
                     "cost": round(c.shares * c.price, 6), "sizing": c.how, "held": c.held,
                     "realized_pnl": round(c.realized, 6), "mark": mark, "pnl": None if pnl is None else round(pnl, 6)})
    total = rep.realized + unrealized
    curve = [*rep.curve, (now, round(total, 6))]
    wins = sum(1 for p in pnls if p > 1e-9)
    return {
        "account": account, "days": days, "window": {"start": rep.start, "end": rep.end}, "truncated": truncated,
        "model": {"slippage_bps": model.slippage_bps, "delay_sec": model.delay_sec, "text": model.describe()},
        "rules": {**rules.model_dump(), **(context or {})},
        "trades": {"replayed": rep.trades, "buys": rep.buys, "sells": rep.sells, "below_min_size": rep.below_min_size},
        "copies": len(rep.copies), "skipped": len(rep.skips),
        "skip_reasons": dict(Counter(reason_class(s.reason) for s in rep.skips).most_common()),
        "exits": {"full": rep.exits_full, "partial": rep.exits_partial, "sells_without_a_copy": rep.sells_without_copy},
        "invested_usd": round(rep.invested, 6), "realized_pnl": round(rep.realized, 6),
        "unrealized_pnl": round(unrealized, 6), "total_pnl": round(total, 6),
        "win_rate": round(wins / len(pnls), 6) if pnls else None, "wins": wins,
        "losses": sum(1 for p in pnls if p < -1e-9), "max_drawdown_usd": round(max_drawdown(curve), 6),
        "open_copies": sum(1 for c in rep.copies.values() if c.held > 0), "unmarked": unmarked,
        "copies_detail": rows[:SHOWN_COPIES],
        "skips_detail": [{"at": s.at, "token_id": s.token_id, "reason": s.reason} for s in rep.skips[:SHOWN_SKIPS]],
    }
