"""Copy trading rules (docs/copytrading.md), pure: how big a copy is, whether the book still lets
it be a copy, and what share of ours a leader's sell sells. No I/O: the orchestrator's intake reads
the inputs (the leader's open copies, the book, what the leader held) and applies the verdicts; the
leader backtest (shared/backtest.py) replays a leader's past trades through the same functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.config import CopyRules

FULL_EXIT_AT = 0.99  # a leader selling this share of its position or more exits ours in full
HELD_DUST = 0.01  # leader shares below this count as nothing held


@dataclass(frozen=True)
class CopySize:
    shares: float  # the copy's order_size (0 = skip)
    notional: float  # $ at the leader's price: what it counts against the leader's budget
    reason: str  # how it was sized, or why it is skipped

    @property
    def ok(self) -> bool:
        return self.shares > 0


def _skip(reason: str) -> CopySize:
    return CopySize(0.0, 0.0, reason)


def size_copy(rules: CopyRules, leader_size: float, leader_price: float, fixed_shares: float,
              leader_open: float = 0.0, leader_value: float | None = None, bankroll: float = 0.0) -> CopySize:
    """The copy of a leader's BUY of ``leader_size`` shares at ``leader_price``.

    fixed: ``fixed_shares`` (the merged maker_strategy.order_size, today's behaviour); percent:
    ``percent`` % of the leader's notional; proportional: the leader's notional as a share of its
    portfolio value (``leader_value``) times ``bankroll``. Then clamped to [min_copy_usd,
    max_copy_usd], then cut to what the leader's budget has left after its open copies
    (``leader_open``, $); a copy the budget cuts below min_copy_usd (or to nothing) is skipped."""
    if rules.sizing == "fixed" and not (rules.min_copy_usd or rules.max_copy_usd or rules.budget_usd):
        return CopySize(fixed_shares, round(fixed_shares * max(leader_price, 0.0), 6), f"fixed {fixed_shares:g} shares")
    if not leader_price > 0:
        return _skip(f"leader price {leader_price:g} unusable: cannot size a copy")
    leader_notional = leader_size * leader_price
    if rules.sizing == "fixed":
        notional, how = fixed_shares * leader_price, f"fixed {fixed_shares:g} shares"
    elif rules.sizing == "percent":
        notional, how = leader_notional * rules.percent / 100, f"{rules.percent:g}% of the leader's ${leader_notional:.2f}"
    else:
        if leader_value is None or leader_value <= 0:
            return _skip("proportional sizing: the leader's portfolio value is unknown")
        share = leader_notional / leader_value
        notional = share * bankroll
        how = (f"leader's ${leader_notional:.2f} is {share:.2%} of its ${leader_value:.2f}; "
               f"{share:.2%} of our ${bankroll:.2f}")
    if rules.max_copy_usd and notional > rules.max_copy_usd:
        notional, how = rules.max_copy_usd, f"{how}, cut to max_copy_usd {rules.max_copy_usd:g}"
    if notional < rules.min_copy_usd:
        notional, how = rules.min_copy_usd, f"{how}, raised to min_copy_usd {rules.min_copy_usd:g}"
    if rules.budget_usd:
        room = rules.budget_usd - leader_open
        if notional > room:
            if room <= 0 or room < rules.min_copy_usd or room < 0.01:
                return _skip(f"leader budget: open copies ${leader_open:.2f} of budget_usd {rules.budget_usd:g} "
                             f"leave ${max(room, 0.0):.2f}, below the copy's minimum")
            notional, how = room, f"{how}, cut to the ${room:.2f} left of budget_usd {rules.budget_usd:g}"
    shares = math.floor(notional / leader_price * 100 + 1e-9) / 100
    if shares <= 0:
        return _skip(f"copy size rounds to 0 shares ({how})")
    return CopySize(shares, round(shares * leader_price, 6), how)


def price_limit(leader_price: float, max_slippage_bps: float) -> float:
    """The highest price a copy may pay: the leader's, worse by at most ``max_slippage_bps``."""
    return leader_price * (1 + max_slippage_bps / 10_000)


def guard(asks: Sequence[tuple[float, float]] | None, leader_price: float, shares: float,
          max_slippage_bps: float) -> str | None:
    """The slippage and depth guard before a copy's first order: the reason to skip, or None.

    ``asks`` are the book's (price, size) levels (any order; None: no book known, the guard cannot
    judge and lets the copy through). The limit is ``leader_price x (1 + bps / 10000)``: the best
    ask above it skips (slippage), and so does less visible size at or below it than the copy
    needs (depth). ``max_slippage_bps`` 0 turns the guard off."""
    if max_slippage_bps <= 0 or asks is None:
        return None
    limit = price_limit(leader_price, max_slippage_bps)
    live = [(p, s) for p, s in asks if s > 0]
    if not live:
        return "slippage guard: no asks on the book"
    best = min(p for p, _ in live)
    if best > limit + 1e-12:
        bps = (best - leader_price) / leader_price * 10_000
        return (f"slippage guard: best ask {best:.4f} is {bps:.0f} bps over the leader's {leader_price:.4f} "
                f"(limit {max_slippage_bps:g} bps)")
    depth = sum(s for p, s in live if p <= limit + 1e-12)
    if depth + 1e-9 < shares:
        return (f"depth guard: {depth:.2f} shares offered within {max_slippage_bps:g} bps of the leader's "
                f"{leader_price:.4f} (up to {limit:.4f}); the copy needs {shares:.2f}")
    return None


def exit_fraction(exit_mode: str, leader_held: float, sell_size: float) -> float | None:
    """The share of our position a leader's SELL of ``sell_size`` sells, or None for a full exit.

    ``leader_held`` is what the leader held before the sell, as the signals we saw add up (BUYs
    less SELLs since we followed it). Full when ``exit_mode`` is full, when nothing is known
    held, or when the sell is FULL_EXIT_AT of it or more."""
    if exit_mode == "full" or leader_held < HELD_DUST or sell_size <= 0:
        return None
    fraction = sell_size / leader_held
    return None if fraction >= FULL_EXIT_AT else round(fraction, 6)


TRIMS_KEPT = 20  # partial exits a token's START params remember (each is done once: the worker keeps ids)


def with_trim(params_json: str | None, trim_id: str, fraction: float) -> str:
    """The token's START params with one more partial exit (``trims``: [id, fraction] pairs, the
    newest TRIMS_KEPT): every START of the token, to whichever worker, carries the trims asked so
    far, and the session does those it has no record of doing (services/maker_worker/trims.py)."""
    params: dict[str, Any] = json.loads(params_json) if params_json else {}
    trims = [t for t in params.get("trims", []) if t[0] != trim_id]
    params["trims"] = [*trims, [trim_id, fraction]][-TRIMS_KEPT:]
    return json.dumps(params, sort_keys=True)


def book_asks(book: dict[str, str] | None, now_ms: int, stale_after_ms: int) -> list[tuple[float, float]] | None:
    """The asks the guard sees in a ``pf:book`` hash (the gateway's top of book: one level), or
    None when there is no book, it is flagged stale, or older than ``stale_after_ms``."""
    if not book or book.get("stale") == "1" or now_ms - int(book.get("ts_recv") or 0) > stale_after_ms:
        return None
    ask = book.get("ask")
    return [(float(ask), float(book.get("ask_size") or 0.0))] if ask else []


def held_field(account: str, token_id: str) -> str:
    """The ``pf:leader:held`` field of what ``account`` holds of ``token_id``."""
    return f"{account.lower()}|{token_id}"
