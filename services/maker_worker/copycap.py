"""The slippage guard's other half, in the session (docs/copytrading.md "Slippage and depth guard").

The orchestrator checks a copy against the book before it starts it, but only when it has a fresh
one (``pf:book``: the gateway streams a token once somebody wants it, which for a new token is
often after the copy is decided). A copy let through that way ("guard": "no book") carries the
leader's price and limit in its START params (``copy.leader_price``, ``copy.max_slippage_bps``), and
the session never BUYs above ``leader_price × (1 + bps / 10000)``: a BUY the strategy wants above
it is refused like a venue reject (the strategy cools down and tries again on a later tick), so a
copy whose price ran away buys nothing until it comes back within the limit. Pure.
"""

from __future__ import annotations

from typing import Any

from shared.copy_rules import price_limit

EPS = 1e-9


def buy_cap(params: dict[str, Any]) -> float | None:
    """The highest price the session may BUY at, from its START params; None: no cap."""
    copy = params.get("copy")
    if not isinstance(copy, dict):
        return None
    try:
        price, bps = float(copy.get("leader_price") or 0), float(copy.get("max_slippage_bps") or 0)
    except (TypeError, ValueError):
        return None
    if not (0 < price < 1 and bps > 0):
        return None
    return price_limit(price, bps)


def over_cap(cap: float | None, side: str, price: float) -> str | None:
    """Why a BUY at ``price`` is refused (above the cap), or None."""
    if cap is None or side != "BUY" or price <= cap + EPS:
        return None
    return f"copy guard: BUY at {price:.4f} is above the leader's price plus its slippage limit ({cap:.4f})"
