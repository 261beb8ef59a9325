"""Marks and unrealised PnL (pure), shared by the API and the leader scorecard: a position is
marked at the mid of the gateway's top of book (``pf:book:{token}``)."""

from __future__ import annotations


def as_float(raw: object, default: float = 0.0) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def mark_price(book: dict[str, str]) -> float | None:
    """Mid of the best bid and ask; one side if the other is missing; None without a book."""
    bid, ask = as_float(book.get("bid"), -1.0), as_float(book.get("ask"), -1.0)
    if bid > 0 and ask > 0:
        return (bid + ask) / 2
    if bid > 0:
        return bid
    if ask > 0:
        return ask
    return None


def unrealized(position: float, avg_cost: float, mark: float | None) -> float:
    if mark is None or abs(position) < 1e-12:
        return 0.0
    return position * (mark - avg_cost)
