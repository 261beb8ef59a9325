"""Arbitrage detection math (E2): pure, no I/O, every number hand-checkable.

A *set* is one share of every leg whose payoffs add up to exactly $1:

* binary market: YES + NO (merge returns $1 at once; a split costs $1 at once);
* neg-risk event: the YES of every outcome (exactly one resolves YES). Bought sets pay $1 at
  resolution; sold sets are made with the neg-risk adapter (split one outcome, convert its NO).

Buying sets pays when ``Σ ask + Σ fee < 1 − min_edge``; selling them when
``Σ bid − Σ fee > 1 + min_edge``. Fees are Polymarket's taker fee per share,
``rate × (p(1−p))^exponent`` (exponent 1 is the plain ``size × rate × p × (1−p)``), summed per
fill and rounded to 5 decimals per fill as the venue does.

The comparison is strict: a sum exactly at the threshold is not an opportunity (``EPS`` absorbs
float noise such as 0.48 + 0.50 != 0.98).

Size comes from walking every leg's book at once, best level first, while the *marginal* set
still clears ``min_edge``; then a haircut (books move between detection and the orders), then the
caller's cap, rounded down to the venue's 2 size decimals. A size below the venue minimums
(``min_order_size`` shares, $1 notional per marketable order) is not executable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from shared.venue.fees import FeeSchedule

EPS = 1e-9
SIZE_DECIMALS = 2  # the venue rounds order sizes down to 2 decimals for every tick size

Level = tuple[float, float]  # (price, size in shares), best first


class Kind(StrEnum):
    BUY_BOTH = "buy_both"  # binary: buy YES + NO, merge for $1
    SPLIT_SELL = "split_sell"  # binary: split $1 into YES + NO, sell both
    NEGRISK_BUY_ALL = "negrisk_buy_all"  # neg-risk event: buy every outcome's YES, hold to resolution
    NEGRISK_SELL_ALL = "negrisk_sell_all"  # neg-risk event: make a full YES set for $1, sell every YES

    @property
    def buys(self) -> bool:
        return self in (Kind.BUY_BOTH, Kind.NEGRISK_BUY_ALL)


class Verdict(StrEnum):
    OPPORTUNITY = "opportunity"
    NEAR_MISS = "near_miss"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Leg:
    """One token of a set: the book side we take (asks to buy, bids to sell), best level first."""

    token_id: str
    levels: tuple[Level, ...]
    fee: FeeSchedule = FeeSchedule()
    min_order_size: float = 5.0


@dataclass(frozen=True, slots=True)
class Params:
    min_edge: float = 0.01  # per set, in $, after fees
    haircut: float = 0.2  # fraction of the walked depth left on the table
    near_miss_band: float = 0.01  # edge this close below min_edge is reported as a near miss
    min_notional: float = 1.0  # venue minimum for a marketable order, per leg
    max_size: float = math.inf  # cap in sets (from risk limits), before rounding


@dataclass(frozen=True, slots=True)
class Walk:
    size: float  # sets
    cost: float  # Σ price × size over every leg (what buying pays / selling receives, before fees)
    fees: float  # Σ rounded fees over every fill
    worst: tuple[float, ...]  # per leg, the worst price reached: the limit price of its order
    levels_used: int  # deepest level index reached on any leg, 1-based


@dataclass(frozen=True, slots=True)
class Evaluation:
    kind: Kind
    verdict: Verdict
    tokens: tuple[str, ...]
    top_prices: tuple[float, ...]  # best ask (buy) or best bid (sell) per leg
    top_sum: float
    top_fees: float  # per set at the top prices
    top_edge: float  # per set at the top, after fees
    size: float = 0.0  # executable sets (after haircut, cap, minimums); 0 = not executable
    depth: float = 0.0  # sets the walk found before the haircut
    limits: tuple[float, ...] = ()  # per leg limit price for the FOK/FAK order
    cost: float = 0.0  # buy: Σ price × size paid; sell: Σ price × size received
    fees: float = 0.0
    profit: float = 0.0  # $ after fees for ``size`` sets
    edge: float = 0.0  # profit per set
    levels_used: int = 0
    reason: str = ""
    depth_known: bool = True  # False: sized from the top level only (a tick), not the full book
    extra: dict[str, float] = field(default_factory=dict)


def floor_size(size: float, decimals: int = SIZE_DECIMALS) -> float:
    scale = 10 ** decimals
    return float(math.floor(size * scale + 1e-6) / scale)


def whole_cent_size(size: float, limits: tuple[float, ...] | list[float]) -> float:
    """The largest set size at most ``size`` (2 decimals) at which every BUY leg at its limit
    costs whole cents. A FOK/FAK BUY pays at most 2-decimal collateral (docs/venue.md P3), so
    ``size`` shares at a limit whose product has more decimals cannot be bought exactly: the legs
    would fill different share counts, and the odd hundredths could not be sold back (under the
    venue's $1 minimum). Sized here, every leg buys the same shares. A leg of limit a/b (lowest
    terms) needs hundredths of a share in multiples of b: 0.47 whole shares, 0.5 any even
    hundredth, 0.473 multiples of 10."""
    step = 1
    for limit in limits:
        step = math.lcm(step, Fraction(str(limit)).denominator)
    hundredths = math.floor(size * 100 + 1e-6)
    return float(hundredths // step * step) / 100


def set_edge(prices: list[float] | tuple[float, ...], fees: tuple[FeeSchedule, ...], buys: bool) -> tuple[float, float]:
    """(edge per set after fees, fees per set) at these prices."""
    unit_fee = sum(f.per_share(p) for f, p in zip(fees, prices, strict=True))
    total = sum(prices)
    edge = (1.0 - total - unit_fee) if buys else (total - unit_fee - 1.0)
    return edge, unit_fee


def walk(legs: tuple[Leg, ...], buys: bool, min_edge: float, cap: float = math.inf) -> Walk:
    """Take sets level by level while the marginal set clears ``min_edge`` strictly, up to ``cap``."""
    fees_s = tuple(leg.fee for leg in legs)
    idx = [0] * len(legs)
    rem = [leg.levels[0][1] if leg.levels else 0.0 for leg in legs]
    size = cost = fees = 0.0
    worst = [leg.levels[0][0] if leg.levels else 0.0 for leg in legs]
    deepest = 0
    while size < cap - EPS and all(i < len(leg.levels) for i, leg in zip(idx, legs, strict=True)):
        prices = [leg.levels[i][0] for i, leg in zip(idx, legs, strict=True)]
        edge, _ = set_edge(prices, fees_s, buys)
        if edge - min_edge <= EPS:
            break
        q = min(min(rem), cap - size)
        if q <= EPS:
            break
        size += q
        deepest = max(deepest, max(idx) + 1)
        for k, (p, f) in enumerate(zip(prices, fees_s, strict=True)):
            cost += p * q
            fees += f.fee(q, p)
            worst[k] = p
            rem[k] -= q
            if rem[k] <= EPS:
                idx[k] += 1
                if idx[k] < len(legs[k].levels):
                    rem[k] = legs[k].levels[idx[k]][1]
    return Walk(size, cost, fees, tuple(worst), deepest)


def evaluate(kind: Kind, legs: tuple[Leg, ...], params: Params, depth_known: bool = True) -> Evaluation:
    """Whether ``legs`` bought (or sold) as sets clear ``params.min_edge``, and for how much.

    ``depth_known`` False means the levels are only the top of book (a tick): the verdict and edge
    stand, and the size is what the top levels hold.
    """
    buys = kind.buys
    tokens = tuple(leg.token_id for leg in legs)
    if len(legs) < 2 or any(not leg.levels for leg in legs):
        return Evaluation(kind, Verdict.NONE, tokens, (), 0.0, 0.0, 0.0, reason="a leg has no book on that side")
    top = tuple(leg.levels[0][0] for leg in legs)
    top_edge, top_fees = set_edge(top, tuple(leg.fee for leg in legs), buys)
    base = Evaluation(kind, Verdict.NONE, tokens, top, sum(top), top_fees, top_edge)
    short = top_edge - params.min_edge
    if short <= EPS:
        if short > -params.near_miss_band - EPS:
            return _replace(base, verdict=Verdict.NEAR_MISS, reason=f"edge {top_edge:.4f} not above min_edge "
                                                                   f"{params.min_edge:.4f}")
        return base
    depth = walk(legs, buys, params.min_edge)
    target = floor_size(min(depth.size * (1.0 - params.haircut), params.max_size))
    if target <= 0:
        return _replace(base, verdict=Verdict.NEAR_MISS, depth=depth.size,
                        reason="no size left after the haircut and caps")
    w = walk(legs, buys, params.min_edge, cap=target)
    size = floor_size(w.size)
    profit = (size - w.cost - w.fees) if buys else (w.cost - w.fees - size)
    ev = _replace(base, size=size, depth=depth.size, limits=w.worst, cost=w.cost, fees=w.fees,
                  profit=profit, edge=profit / size if size > 0 else 0.0, levels_used=w.levels_used)
    why = _below_minimum(legs, size, w.worst, params.min_notional)
    if why:
        return _replace(ev, verdict=Verdict.NEAR_MISS, size=0.0, reason=why)
    return _replace(ev, verdict=Verdict.OPPORTUNITY, depth_known=depth_known,
                    reason="" if depth_known else "size from top of book only")


def _below_minimum(legs: tuple[Leg, ...], size: float, limits: tuple[float, ...], min_notional: float) -> str:
    """Why ``size`` sets cannot be traded (empty when they can). A leg that could be bought but
    not sold back (below the minimums) would be stuck if the other leg failed, so both count."""
    for leg, limit in zip(legs, limits, strict=True):
        if size < leg.min_order_size - EPS:
            return f"size {size:g} below the minimum order size {leg.min_order_size:g} of {leg.token_id[:12]}"
        if size * limit < min_notional - EPS:
            return f"order ${size * limit:.2f} below the ${min_notional:g} marketable minimum on {leg.token_id[:12]}"
    return ""


def _replace(ev: Evaluation, **changes: object) -> Evaluation:
    data = {f: getattr(ev, f) for f in Evaluation.__dataclass_fields__}
    data.update(changes)
    return Evaluation(**data)  # type: ignore[arg-type]


def quick_edge(kind: Kind, top: list[float | None], fees: tuple[FeeSchedule, ...]) -> float | None:
    """Top-of-book edge per set, or None if a leg has no price: the per-tick pre-check."""
    if any(p is None for p in top):
        return None
    edge, _ = set_edge([p for p in top if p is not None], fees, kind.buys)
    return edge


@dataclass(frozen=True, slots=True)
class ScoreInputs:
    profit: float
    edge: float
    size: float
    top_size: float  # sets available at the top level of every leg (min over legs)
    seconds_to_end: float | None
    held_to_resolution: bool  # capital locked until the end date (neg-risk buy-all)


def score(s: ScoreInputs) -> float:
    """Expected $ profit, discounted for capital lock-up and for size that relies on deep levels.

    * lock-up: a set held to resolution ties its cost up for days; × 1 / (1 + days / 30);
    * depth: the share of the size sitting at the top level moves least before we fill;
      × (0.5 + 0.5 × min(1, top_size / size));
    * time to end: under one hour left, a market can stop accepting orders mid-trade; × 0.5.
    """
    if s.size <= 0 or s.profit <= 0:
        return 0.0
    out = s.profit
    if s.held_to_resolution:
        days = max(0.0, (s.seconds_to_end or 0.0) / 86_400)
        out /= 1.0 + days / 30.0
    out *= 0.5 + 0.5 * min(1.0, s.top_size / s.size)
    if s.seconds_to_end is not None and s.seconds_to_end < 3_600:
        out *= 0.5
    return round(out, 6)
