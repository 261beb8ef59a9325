"""Arbitrage risk limits (E4): per market, total, trades per minute, daily loss (pure).

The state (``RiskState``) is read from Redis by the service before each execution; this module
only decides. ``room`` is the $ a new execution may commit: what is left under the per-market and
total notional limits. An execution is refused (with the reason) when the kill switch is on,
trades in the last minute reached the limit, or today's loss reached ``max_daily_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_notional_per_market: float
    max_notional_total: float
    max_trades_per_minute: int
    max_daily_loss: float


@dataclass(frozen=True, slots=True)
class RiskState:
    held_market: float  # $ held in this set's arbitrage positions
    held_total: float
    trades_last_minute: int
    pnl_today: float
    halt: str = ""  # pf:halt: "", reduce_only or halt


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    room: float  # $ this execution may commit
    reason: str = ""


def check(limits: Limits, st: RiskState) -> Decision:
    if st.halt:
        return Decision(False, 0.0, f"kill switch is {st.halt}")
    if st.pnl_today <= -limits.max_daily_loss:
        return Decision(False, 0.0, f"daily arbitrage loss {-st.pnl_today:.2f} reached max_daily_loss "
                                    f"{limits.max_daily_loss:g}")
    if st.trades_last_minute >= limits.max_trades_per_minute:
        return Decision(False, 0.0, f"{st.trades_last_minute} executions in the last minute "
                                    f"(max_trades_per_minute {limits.max_trades_per_minute})")
    room = min(limits.max_notional_per_market - st.held_market, limits.max_notional_total - st.held_total)
    if room <= 0:
        return Decision(False, 0.0, "notional limit reached (per market or total)")
    return Decision(True, room)


def max_sets(room: float, cost_per_set: float) -> float:
    """Sets that fit in ``room`` $ when one costs ``cost_per_set`` (a split costs $1 a set)."""
    return room / cost_per_set if cost_per_set > 0 else 0.0
