"""Position, average cost and PnL of a token from its fills (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass
class Book:
    """One book of a token's shares: position, average cost and realised PnL.

    A BUY raises the position and re-averages the cost; a SELL realises PnL against the average
    cost. Fees always reduce realised PnL. Exposure is |position| x average cost.
    """

    position: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0

    @property
    def exposure(self) -> float:
        return abs(self.position) * self.avg_cost

    def apply(self, side: str, price: float, size: float, fee: float) -> float:
        """Book one fill; returns the realised PnL it made (fee included)."""
        pos, avg = self.position, self.avg_cost
        realized = 0.0
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
        self.position, self.avg_cost = pos, avg
        self.realized += realized
        return realized

    def adjust(self, shares: float) -> None:
        """Shares that came without fills (a session's own count of what it holds): at the
        average cost, no PnL."""
        self.position += shares
        if abs(self.position) <= 1e-9:
            self.position, self.avg_cost = 0.0, 0.0

    def copy(self) -> Book:
        return Book(self.position, self.avg_cost, self.realized)


def utc_day(ms: int) -> str:
    """The day realised PnL is booked under (a field of pf:pnl:daily): the UTC date of ``ms``."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")
