"""Market resolution in sim mode (pure): the oracle's report, not the payout.

On Polygon the oracle (UMA adapter) reports the payout vector; nothing is paid until a holder
calls ``redeemPositions`` (ConditionalTokens through the collateral adapter, or the
NegRiskAdapter for neg-risk markets). The sim does the same: resolving a market records the
winner (``Ctf.winners``: the CLOB ``/markets/{condition_id}`` shows ``closed`` and the winning
token's ``winner: true``, Gamma ``closed`` and ``outcomePrices`` ["1", "0"]) and pays no one;
``Ctf.redeem`` (``POST /_sim/ctf/redeem`` or ``redeemPositions`` over ``/_sim/rpc``) pays.
``payouts`` lists, for people and tests, what each account *could* redeem at the moment of
resolution. Open orders on a resolved token are canceled and the tokens frozen (the venue stops
trading them).

A neg-risk event resolves as a whole: exactly one outcome's YES wins; every other outcome's NO
wins.

Each resolved market is announced to ``on_resolved`` (the market socket's ``market_resolved``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.sim_exchange.ctf import Ctf
from services.sim_exchange.market import SimMarket, TokenBook
from services.sim_exchange.negrisk import SimEvent


class ResolutionError(ValueError):
    """Refused (already resolved, unknown outcome)."""


@dataclass(frozen=True)
class Payout:
    address: str
    condition_id: str
    token_id: str  # the winning token
    shares: float  # redeemable for $1 each (paid at redeem, not here)
    ts: float


class Resolutions:
    def __init__(self, ctf: Ctf, on_resolved: Callable[[SimMarket, TokenBook], object] | None = None) -> None:
        self.ctf = ctf
        self.on_resolved = on_resolved  # told of each market resolved (market, winning token)
        self.matcher = ctf.matcher
        self.winners = ctf.winners  # condition id -> winning token id, shared with redeem
        self.payouts: list[Payout] = []

    def resolve_market(self, market: SimMarket, yes_wins: bool) -> list[Payout]:
        if market.condition_id in self.winners:
            raise ResolutionError(f"market {market.condition_id} is already resolved")
        win = market.yes if yes_wins else market.no
        self.winners[market.condition_id] = win.token_id
        paid: list[Payout] = []
        for t in market.tokens:
            t.frozen = True
            for o in self.matcher.open_orders(t.token_id):
                self.matcher.cancel(o.id, reason="market_resolved")
        for acct in self.matcher.accounts.values():
            shares = acct.positions.get(win.token_id, 0.0)
            if shares > 0:
                paid.append(Payout(acct.address, market.condition_id, win.token_id, shares, time.time()))
        self.payouts += paid
        if self.on_resolved is not None:
            self.on_resolved(market, win)
        return paid

    def resolve_event(self, event: SimEvent, winner_index: int) -> list[Payout]:
        if not 0 <= winner_index < len(event.markets):
            raise ResolutionError(f"winner index {winner_index} out of range (0..{len(event.markets) - 1})")
        if any(m.condition_id in self.winners for m in event.markets):
            raise ResolutionError(f"event {event.neg_risk_market_id} is already resolved")
        paid: list[Payout] = []
        for i, m in enumerate(event.markets):
            paid += self.resolve_market(m, yes_wins=i == winner_index)
        return paid
