"""Scripted followed wallets: each trades on its own (seeded, Poisson arrivals at its
``trades_per_minute``) in one of three styles, so the leader scorecard's copyability flags
(shared/scorecard.py ``flags``) have something to find:

* ``trader``: directional. BUYs a token at its best ask (never the other outcome of a market it
  holds: that would be quoting both sides), and SELLs a holding at the best bid only after holding
  it ``min_hold_sec`` — longer than the scorecard's market-maker window, so it is copyable;
* ``market_maker``: visits one market at a time and trades both sides of it, one trade per arrival:
  BUY Yes, BUY No, SELL Yes, SELL No (the same size), then the next market. At a few trades a
  minute that is both sides of a market within minutes: the market-maker flag;
* ``high_frequency``: the trader's rules in small clips (1-10 shares), a run of 4-10 clips of one
  token before it moves on; at its (high) rate, many trades an hour: the high-frequency flag.

Each wallet keeps its own clock (the sum of its drawn delays), so what it does is a function of
the seed and the books it sees, not of the wall clock. Its first trade comes within ~5 s of start
so a demo shows activity quickly. Trades go to the Data API feed, the live-data socket and the
market socket (``last_trade_price``); they do not move the crowd book.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from loguru import logger

from services.sim_exchange.market import SimMarket
from services.sim_exchange.state import SimState
from shared.config import SimWallet

MM_LEGS = (("BUY", 0), ("BUY", 1), ("SELL", 0), ("SELL", 1))  # (side, outcome index) per market visit


@dataclass
class Holding:
    shares: float
    since: float  # wallet clock (s) of the first BUY


class ScriptedWallet:
    def __init__(self, state: SimState, wallet: SimWallet, seed: int) -> None:
        self.state = state
        self.address = wallet.account.lower()
        self.style = wallet.style
        self.rate = wallet.trades_per_minute
        self.min_hold = wallet.min_hold_sec
        self.rng = random.Random(f"{seed}:{self.address}")
        self.holdings: dict[str, Holding] = {}
        self.clock = 0.0  # seconds since start, by the wallet's own draws
        self.run_token, self.run_left = "", 0  # high_frequency: the token of the current run of clips
        self.visit: tuple[SimMarket, float] | None = None  # market_maker: the market now, and the size
        self.leg = 0

    def next_delay(self, first: bool) -> float:
        if first:
            return self.rng.uniform(0.5, 5.0)
        return self.rng.expovariate(self.rate / 60.0)

    def trade_once(self) -> dict[str, object] | None:
        """Decide and record one trade; returns the stored Data-API row (None: no price to trade at)."""
        decided = self._market_maker() if self.style == "market_maker" else self._directional()
        if decided is None:
            return None
        side, token, size = decided
        bid, ask = self.state.top(token)
        price = ask if side == "BUY" else bid
        if price is None:
            return None
        if side == "BUY":
            held = self.holdings.setdefault(token, Holding(0.0, self.clock))
            held.shares += size
        else:
            held = self.holdings[token]
            held.shares = round(held.shares - size, 6)
            if held.shares <= 0:
                del self.holdings[token]
        row = self.state.feed.make_row({"proxyWallet": self.address, "side": side, "asset": token,
                                        "size": size, "price": price})
        logger.debug("scripted wallet {} ({}) {} {} @ {}", self.address[:10], self.style, side, size, price)
        stored = self.state.external_trade(row)
        self.state.chain.seal()
        return stored

    # ---- styles ---------------------------------------------------------------------------------
    def _directional(self) -> tuple[str, str, float] | None:
        """trader / high_frequency: sell a holding held long enough, else buy one way only."""
        clips = self.style == "high_frequency"
        ripe = sorted(t for t, h in self.holdings.items() if self.clock - h.since >= self.min_hold)
        if ripe and self.rng.random() < (0.3 if clips else 0.45):
            token = self.rng.choice(ripe)
            return "SELL", token, self.holdings[token].shares
        if clips and self.run_left > 0:
            self.run_left -= 1
            return "BUY", self.run_token, float(self.rng.randint(1, 10))
        token = self._one_way_token()
        if clips:
            self.run_token, self.run_left = token, self.rng.randint(3, 9)
            return "BUY", token, float(self.rng.randint(1, 10))
        return "BUY", token, float(self.rng.randint(5, 60))

    def _one_way_token(self) -> str:
        """A token to buy: of a market it holds, the outcome it holds (never the other one)."""
        market = self.rng.choice(self.state.sim.markets)
        held = [t.token_id for t in market.tokens if t.token_id in self.holdings]
        return held[0] if held else self.rng.choice(market.tokens).token_id

    def _market_maker(self) -> tuple[str, str, float] | None:
        """Both sides of one market, leg by leg; the next market after the fourth."""
        if self.visit is None or self.leg >= len(MM_LEGS):
            self.visit, self.leg = (self.rng.choice(self.state.sim.markets), float(self.rng.randint(10, 50))), 0
        market, size = self.visit
        side, index = MM_LEGS[self.leg]
        self.leg += 1
        token = market.tokens[index].token_id
        if side == "SELL" and token not in self.holdings:
            return None  # its BUY found no ask: nothing to sell
        return side, token, size if side == "BUY" else self.holdings[token].shares

    async def run(self) -> None:
        if self.rate <= 0:
            return
        first = True
        while True:
            delay = self.next_delay(first)
            await asyncio.sleep(delay)
            self.clock += delay
            first = False
            try:
                self.trade_once()
            except Exception:
                logger.exception("scripted wallet {} failed a trade", self.address)
