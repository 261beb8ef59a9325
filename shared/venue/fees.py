"""The venue's taker fee (docs/venue.md F1): one formula for every service that books or
prices a fill.

Only takers pay: ``fee = shares × rate × (p(1−p))^exponent`` in pUSD, from the market's
``feeSchedule`` (Gamma) / ``fd`` (``/clob-markets``), rounded to 5 decimals. The venue takes it out
of the pUSD balance on both sides (a BUY receives every share it bought) and the trade record does
not say it (``fee_rate_bps`` reads 0), so whoever books a fill computes it from the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """A market's taker fee (Gamma ``feeSchedule`` ``rate``/``exponent``; makers pay nothing)."""

    rate: float = 0.0
    exponent: float = 1.0

    def per_share(self, price: float) -> float:
        if self.rate <= 0:
            return 0.0
        return float(self.rate * (price * (1.0 - price)) ** self.exponent)

    def fee(self, size: float, price: float) -> float:
        """The fee of one taker fill, rounded to 5 decimals (anything under 0.000005 rounds to 0)."""
        return round(size * self.per_share(price), 5) if self.rate > 0 else 0.0

    def of_trade(self, trader_side: str, size: float, price: float) -> float:
        """What one of our trades cost in fees: the taker's fee, nothing for a maker."""
        return self.fee(size, price) if trader_side.upper() == "TAKER" else 0.0
