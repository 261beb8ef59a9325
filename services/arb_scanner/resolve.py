"""Sets held to resolution (pure): what is held, whether its markets have resolved, what it pays.

A ``negrisk_buy_all`` execution keeps its complete sets (one YES of every outcome) until the
event resolves; a binary set whose merge was refused is kept the same way. The service stores one
:class:`HeldSet` per set id in ``pf:arb:held`` and, every ``arbitrage.resolution_check_sec``,
reads each condition's CLOB ``/markets/{condition_id}`` (shared/venue/clob_market.py). When every
condition of the set shows a winner, :func:`decide` says what to redeem and what it pays:
$1 a share of every held token that won, nothing for the rest. The PnL booked is that payout less
the sets' cost (fees were booked at execution).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.detect import EPS
from shared.venue.clob_market import MarketState


@dataclass(frozen=True)
class HeldSet:
    set_id: str
    kind: str
    sets: float  # complete sets held: one share of every token
    cost: float  # $ paid for them (without fees)
    condition_ids: tuple[str, ...]  # one per token's market (a binary set: both tokens, one condition)
    tokens: tuple[str, ...]
    neg_risk: bool
    redeemed: tuple[str, ...] = ()  # conditions already redeemed (a retry skips them)
    market_version: str = "v1"  # the set's market system (records written before it existed: v1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> HeldSet:
        d = json.loads(raw)
        return cls(str(d["set_id"]), str(d["kind"]), float(d["sets"]), float(d["cost"]),
                   tuple(d["condition_ids"]), tuple(d["tokens"]), bool(d["neg_risk"]),
                   tuple(d.get("redeemed") or ()), str(d.get("market_version") or "v1"))

    @classmethod
    def of(cls, s: ArbSet, kind: str, sets: float, cost: float) -> HeldSet:
        per_token = s.condition_ids if len(s.condition_ids) == len(s.tokens) else (s.condition_ids[0],) * len(s.tokens)
        return cls(s.id, kind, round(sets, 6), round(cost, 6), tuple(per_token), s.tokens, s.neg_risk,
                   market_version=s.market_version)

    def add(self, sets: float, cost: float) -> HeldSet:
        return replace(self, sets=round(self.sets + sets, 6), cost=round(self.cost + cost, 6))

    def with_redeemed(self, condition_id: str) -> HeldSet:
        return replace(self, redeemed=(*self.redeemed, condition_id))


@dataclass(frozen=True)
class Redeem:
    condition_id: str
    amounts: tuple[float, float]  # [YES, NO] shares of this condition held in the set


@dataclass(frozen=True)
class Resolution:
    set_id: str
    redeems: tuple[Redeem, ...]  # still to do (conditions already redeemed are left out)
    payout: float  # $ the held sets pay
    pnl: float  # payout − cost
    winners: tuple[str, ...]  # the held tokens that won


def decide(held: HeldSet, markets: dict[str, MarketState]) -> Resolution | None:
    """The resolution of ``held``, or None while any of its markets has no winner yet."""
    conditions = tuple(dict.fromkeys(held.condition_ids))
    states = [markets.get(c) for c in conditions]
    if any(m is None or not m.closed or not m.winners for m in states):
        return None
    won = set().union(*(m.winners for m in states if m is not None))
    winners = tuple(t for t in held.tokens if t in won)
    payout = round(held.sets * len(winners), 6)
    redeems = []
    for c in conditions:
        if c in held.redeemed:
            continue
        mine = [t for t, tc in zip(held.tokens, held.condition_ids, strict=True) if tc == c]
        # a binary set holds both tokens of its one condition; a neg-risk set the YES of each
        yes, no = (held.sets, held.sets) if len(mine) == 2 else (held.sets, 0.0)
        redeems.append(Redeem(c, (yes, no)))
    return Resolution(held.set_id, tuple(redeems), payout, round(payout - held.cost, 6), winners)


def settled_exposure(exposure: float, cost: float) -> float:
    """What stays in the set's ``pf:arb:exposure`` after its held sets are booked (leftover legs)."""
    left = round(exposure - cost, 6)
    return left if left > EPS else 0.0
