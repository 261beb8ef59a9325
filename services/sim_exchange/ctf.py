"""Conditional-token operations in sim mode (pure): split, merge, the neg-risk convert and redeem.

On Polygon these are contract calls (ConditionalTokens ``splitPosition``/``mergePositions``, the
NegRiskAdapter's ``convertPositions``); there is no CLOB endpoint for them. sim_exchange applies
the same bookkeeping to its accounts and serves it under ``/_sim/ctf/*`` so the arbitrage
executor's sim path can run end to end:

* split ``amount`` of a market: cash − amount, YES + amount, NO + amount;
* merge ``amount``: YES − amount, NO − amount, cash + amount (needs both, unreserved);
* convert ``amount`` NO of ``m`` outcomes of a neg-risk event: those NOs − amount, YES of every
  other outcome + amount, cash + (m − 1) × amount;
* redeem a resolved market (``winners``, set by :mod:`resolution`): the winning shares pay $1
  each, both tokens go to 0. The ConditionalTokens shape redeems the whole balance (a second
  redeem pays 0); the NegRiskAdapter shape redeems the ``amounts`` given and refuses more than
  is held. An unresolved market refuses.

Every operation is recorded (``ops``) so tests and people can see what the executor did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.sim_exchange.market import SimMarket, px
from services.sim_exchange.matching import EPS, Matcher
from services.sim_exchange.negrisk import SimEvent


class CtfError(ValueError):
    """Refused (the text is the contract's revert reason, more or less)."""


@dataclass(frozen=True)
class CtfOp:
    kind: str  # split | merge | convert | redeem
    address: str
    market: str  # condition id (split/merge) or neg-risk market id (convert)
    amount: float  # redeem: the $ paid
    ts: float
    tx_hash: str


class Ctf:
    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        self.ops: list[CtfOp] = []
        self.winners: dict[str, str] = {}  # condition id -> winning token id (resolved markets)

    def _record(self, kind: str, address: str, market: str, amount: float) -> CtfOp:
        op = CtfOp(kind, address.lower(), market, amount, time.time(),
                   "0x" + f"{len(self.ops) + 1:064x}")
        self.ops.append(op)
        return op

    @staticmethod
    def _amount(amount: float) -> float:
        if not amount > 0:
            raise CtfError("amount must be positive")
        return round(amount, 6)

    def split(self, address: str, market: SimMarket, amount: float) -> CtfOp:
        amount = self._amount(amount)
        acct = self.matcher.account(address)
        if self.matcher.available_cash(acct) < amount - EPS:
            raise CtfError("not enough collateral to split")
        acct.cash = round(acct.cash - amount, 6)
        for t in market.tokens:
            acct.positions[t.token_id] = px(acct.positions.get(t.token_id, 0.0) + amount)
        return self._record("split", address, market.condition_id, amount)

    def merge(self, address: str, market: SimMarket, amount: float) -> CtfOp:
        amount = self._amount(amount)
        acct = self.matcher.account(address)
        for t in market.tokens:
            if self.matcher.available_shares(acct, t.token_id) < amount - EPS:
                raise CtfError(f"not enough {t.outcome} shares to merge {amount:g}")
        for t in market.tokens:
            acct.positions[t.token_id] = px(acct.positions[t.token_id] - amount)
        acct.cash = round(acct.cash + amount, 6)
        return self._record("merge", address, market.condition_id, amount)

    def convert(self, address: str, event: SimEvent, outcome_indexes: list[int], amount: float) -> CtfOp:
        amount = self._amount(amount)
        picked = sorted(set(outcome_indexes))
        if not picked or any(i < 0 or i >= len(event.markets) for i in picked):
            raise CtfError("outcome indexes out of range")
        acct = self.matcher.account(address)
        for i in picked:
            if self.matcher.available_shares(acct, event.markets[i].no.token_id) < amount - EPS:
                raise CtfError(f"not enough NO shares of outcome {i} to convert {amount:g}")
        for i, m in enumerate(event.markets):
            if i in picked:
                acct.positions[m.no.token_id] = px(acct.positions[m.no.token_id] - amount)
            else:
                acct.positions[m.yes.token_id] = px(acct.positions.get(m.yes.token_id, 0.0) + amount)
        acct.cash = round(acct.cash + (len(picked) - 1) * amount, 6)
        return self._record("convert", address, event.neg_risk_market_id, amount)

    def redeem(self, address: str, market: SimMarket, amounts: tuple[float, float] | None = None) -> CtfOp:
        """Pay the winning shares of a resolved market. ``amounts`` ([YES, NO], NegRiskAdapter
        shape) redeems exactly that much; None (ConditionalTokens shape) the whole balance."""
        win = self.winners.get(market.condition_id)
        if win is None:
            raise CtfError(f"condition {market.condition_id} is not resolved (payout denominator is 0)")
        acct = self.matcher.account(address)
        held = [acct.positions.get(t.token_id, 0.0) for t in market.tokens]
        take = held if amounts is None else [round(a, 6) for a in amounts]
        if any(a < 0 for a in take) or any(a > h + EPS for a, h in zip(take, held, strict=True)):
            raise CtfError(f"redeem of {take} is more than held {held}")
        paid = 0.0
        for t, a in zip(market.tokens, take, strict=True):
            if a > 0:
                acct.positions[t.token_id] = px(max(acct.positions.get(t.token_id, 0.0) - a, 0.0))
                paid += a if t.token_id == win else 0.0
        acct.cash = round(acct.cash + paid, 6)
        return self._record("redeem", address, market.condition_id, round(paid, 6))
