"""Position, average cost and PnL of a token from its fills (pure)."""

from __future__ import annotations

import datetime as dt


def apply_fill(fields: dict[str, str], side: str, price: float, size: float, fee: float) -> tuple[dict[str, str], float]:
    """New position fields for the token hash, and the change in exposure (notional at cost).

    A BUY raises the position and re-averages the cost; a SELL realises PnL against the average
    cost. Fees always reduce realised PnL. Exposure is |position| x average cost.
    """
    pos = float(fields.get("position", 0) or 0)
    avg = float(fields.get("avg_cost", 0) or 0)
    realized = float(fields.get("realized_pnl", 0) or 0)
    before = pos * avg
    if side == "BUY":
        new_pos = pos + size
        avg = (pos * avg + size * price) / new_pos if new_pos > 0 else 0.0
        pos = new_pos
    else:
        held = max(pos, 0.0)
        sold = min(size, held)
        realized += sold * (price - avg)
        pos = pos - size
        if abs(pos) <= 1e-9:
            pos, avg = 0.0, 0.0
        elif pos < 0:
            # Sold more than held: a short (only possible when risk.allow_short is on, or by a
            # bug the orchestrator reports). It is kept visible, never clamped away.
            avg = price if held > 0 or avg == 0 else avg
    realized -= fee
    after = abs(pos) * avg
    updated = {
        "position": f"{pos:.6f}",
        "avg_cost": f"{avg:.6f}",
        "realized_pnl": f"{realized:.6f}",
        "exposure": f"{after:.6f}",
    }
    return updated, after - before


def utc_day(ms: int) -> str:
    """The day realised PnL is booked under (a field of pf:pnl:daily): the UTC date of ``ms``."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")
