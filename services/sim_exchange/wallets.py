"""Scripted followed wallets: each trades on its own (seeded, Poisson arrivals) like a real trader.

A wallet BUYs a random token at its best ask, and later SELLs what it holds at the best bid. Its
first trade comes within ~5 s of start so a demo shows activity quickly. Trades go to the Data
API feed, the live-data socket and the market socket (``last_trade_price``); they do not move
the crowd book.
"""

from __future__ import annotations

import asyncio
import random

from loguru import logger

from services.sim_exchange.state import SimState
from shared.config import SimWallet


class ScriptedWallet:
    def __init__(self, state: SimState, wallet: SimWallet, seed: int) -> None:
        self.state = state
        self.address = wallet.account.lower()
        self.rate = wallet.trades_per_minute
        self.rng = random.Random(f"{seed}:{self.address}")
        self.holdings: dict[str, float] = {}

    def next_delay(self, first: bool) -> float:
        if first:
            return self.rng.uniform(0.5, 5.0)
        return self.rng.expovariate(self.rate / 60.0)

    def trade_once(self) -> dict[str, object] | None:
        """Decide and record one trade; returns the stored Data-API row."""
        sell = bool(self.holdings) and self.rng.random() < 0.45
        if sell:
            token = self.rng.choice(sorted(self.holdings))
            size = self.holdings.pop(token)
            price = self.state.top(token)[0]
            side = "SELL"
        else:
            market = self.rng.choice(self.state.sim.markets)
            token = self.rng.choice(market.tokens).token_id
            size = float(self.rng.randint(5, 60))
            price = self.state.top(token)[1]
            side = "BUY"
        if price is None:
            return None
        if side == "BUY":
            self.holdings[token] = self.holdings.get(token, 0.0) + size
        row = self.state.feed.make_row({"proxyWallet": self.address, "side": side, "asset": token,
                                        "size": size, "price": price})
        logger.debug("scripted wallet {} {} {} @ {}", self.address[:10], side, size, price)
        stored = self.state.external_trade(row)
        self.state.chain.seal()
        return stored

    async def run(self) -> None:
        if self.rate <= 0:
            return
        first = True
        while True:
            await asyncio.sleep(self.next_delay(first))
            first = False
            try:
                self.trade_once()
            except Exception:
                logger.exception("scripted wallet {} failed a trade", self.address)
