"""The session's decisions (pure; no I/O).

This is the walking skeleton's trigger: buy ``order_size`` once when the best ask sits inside
the allowed band (``min_price`` .. ``min(max_price, buy_price_threshold)``), hold, and liquidate
on EXIT. The full volatility strategy (D3-D6: drop window, profit target, incremental drops,
deadlines) replaces :class:`EntryStrategy` behind the same calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.config import ExecutionSection, MakerStrategySection
from shared.ticks import Tick


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


class EntryStrategy:
    def __init__(self, params: MakerStrategySection, execution: ExecutionSection) -> None:
        self.p = params
        self.x = execution
        self.entered = False

    def on_tick(self, tick: Tick, position: float) -> OrderIntent | None:
        """A BUY when flat, not yet entered, and the ask is inside the band; else nothing."""
        if self.entered or position > 0 or tick.ask is None or tick.stale:
            return None
        cap = min(self.p.max_price, self.p.buy_price_threshold)
        if not (self.p.min_price <= tick.ask <= cap):
            return None
        size = shares(self.p.order_size)
        if size * tick.ask < self.p.min_quote_amount:
            return None
        return OrderIntent("BUY", round_to_tick(tick.ask, tick.tick_size, down=False), size,
                           f"ask {tick.ask} inside [{self.p.min_price}, {cap}]")

    def exit_order(self, tick: Tick | None, position: float, attempt: int) -> OrderIntent | None:
        """The liquidation order for attempt ``attempt`` (0-based): the best bid, conceding
        ``price_tolerance_step`` per retry when aggressive, never below ``exit_floor_price``."""
        size = shares(position)
        if size <= 0:
            return None
        tick_size = tick.tick_size if tick else 0.01
        bid = tick.bid if tick and tick.bid is not None else self.x.exit_floor_price
        concession = attempt * self.x.price_tolerance_step if self.x.exit_sell_mode == "aggressive" else 0.0
        price = max(self.x.exit_floor_price, bid - concession, tick_size)
        return OrderIntent("SELL", round_to_tick(price, tick_size, down=True), size,
                           f"exit attempt {attempt + 1} at bid {bid}")
