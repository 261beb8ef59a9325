"""Risk budget arithmetic (C3), pure: what a session may put at risk, and a reservation's outcome.

The atomic book that holds reservations in Redis is :mod:`services.orchestrator.riskbook`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reservation:
    ok: bool
    committed: float  # the budget in use after the call (before it, when refused)
    refused_by: str = ""  # "per_token" | "total" when not ok


def planned_notional(params: dict[str, Any]) -> float:
    """What one session may put at risk: its order size at the highest price it may buy at.

    ``params`` is the merged START parameter set; the bound uses the session's own overrides, so
    a token configured for bigger orders reserves more.
    """
    strategy = params.get("maker_strategy", {})
    size = float(strategy.get("order_size", 0.0))
    price_cap = min(float(strategy.get("max_price", 1.0)), float(strategy.get("buy_price_threshold", 1.0)))
    return round(size * max(price_cap, 0.0), 6)
