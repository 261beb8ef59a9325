"""Order intents and the price/size arithmetic every decision shares (pure; no I/O).

The decisions themselves are :class:`services.maker_worker.volatility.VolatilityStrategy`
(docs/strategy.md); this module holds what it and the execution layer both need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.config import ExecutionSection


@dataclass(frozen=True)
class OrderIntent:
    side: str  # BUY | SELL
    price: float
    size: float
    reason: str
    exit: bool = False  # a liquidation sell: may go below the entry (docs/strategy.md section 7)


def round_to_tick(price: float, tick: float, down: bool) -> float:
    steps = price / tick
    steps = math.floor(steps + 1e-9) if down else math.ceil(steps - 1e-9)
    decimals = max(0, -int(math.floor(math.log10(tick))))
    return round(steps * tick, decimals + 1)


def shares(size: float) -> float:
    """Sizes go on the wire with two decimals, rounded down (never sell more than we hold)."""
    return math.floor(size * 100 + 1e-9) / 100


def exit_price(bid: float | None, tick_size: float, attempt: int, x: ExecutionSection) -> float:
    """A liquidation price: the bid, conceding ``price_tolerance_step`` per attempt (0-based) when
    ``exit_sell_mode`` is aggressive, never below ``exit_floor_price`` nor one tick."""
    base = bid if bid is not None else x.exit_floor_price
    concession = attempt * x.price_tolerance_step if x.exit_sell_mode == "aggressive" else 0.0
    floor = round_to_tick(max(x.exit_floor_price, tick_size), tick_size, down=False)
    return max(round_to_tick(base - concession, tick_size, down=True), floor)
