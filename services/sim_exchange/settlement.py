"""Trade settlement (pure, clock injected): MATCHED -> MINED -> CONFIRMED, or RETRYING -> FAILED.

On the venue a match is only the start: the trade is sent to the chain, mined, then final, and
some fail (docs/venue.md T1-T3). Here every trade moves on a fixed timetable from its match:
``lag / 2`` later it is MINED (or RETRYING), ``lag`` later CONFIRMED (or FAILED). Which trades fail
is drawn from a seeded generator in match order, so a run is repeatable per seed.

Nothing here moves money: the matcher applies a trade to the accounts when it is CONFIRMED and
holds its amounts (collateral for a BUY, shares for a SELL) while it is pending; a FAILED trade is
dropped, so the buyer never gets the shares and the seller keeps them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Generic, TypeVar

MATCHED, MINED, CONFIRMED, RETRYING, FAILED = "MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"
PENDING = (MATCHED, MINED, RETRYING)
FINAL = (CONFIRMED, FAILED)
ON_CHAIN = (MINED, CONFIRMED, RETRYING, FAILED)  # a transaction was sent: the trade has a hash

T = TypeVar("T")


@dataclass
class Transition(Generic[T]):
    trade: T
    status: str


@dataclass
class _Pending(Generic[T]):
    trade: T
    matched_at: float
    fails: bool
    status: str = MATCHED


class Settlement(Generic[T]):
    """The timetable of every unsettled trade; ``T`` is whatever the caller keeps per trade."""

    def __init__(self, lag_s: float, fail_share: float, seed: int) -> None:
        self.lag_s = lag_s
        self.fail_share = fail_share
        self.rng = random.Random(f"settlement:{seed}")
        self.pending: list[_Pending[T]] = []

    def enroll(self, trade: T, matched_at: float) -> None:
        # always draw, so the fail pattern does not depend on the share being 0 earlier in a run
        fails = self.rng.random() < self.fail_share
        self.pending.append(_Pending(trade, matched_at, fails))

    def advance(self, now: float) -> list[Transition[T]]:
        """Every status change due by ``now``, in order (a trade may move twice in one call)."""
        out: list[Transition[T]] = []
        keep: list[_Pending[T]] = []
        for p in self.pending:
            age = now - p.matched_at
            if p.status == MATCHED and age >= self.lag_s / 2:
                p.status = RETRYING if p.fails else MINED
                out.append(Transition(p.trade, p.status))
            if p.status in (MINED, RETRYING) and age >= self.lag_s:
                p.status = FAILED if p.fails else CONFIRMED
                out.append(Transition(p.trade, p.status))
            if p.status not in FINAL:
                keep.append(p)
        self.pending = keep
        return out

    def unsettled(self) -> list[T]:
        return [p.trade for p in self.pending]
