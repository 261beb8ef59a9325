"""Market-data load: ``sim_exchange.ws_rate_per_sec`` book changes a second on the subscribed tokens.

Each change is real: the crowd book of a token is edited (the best level on one side resized, or
now and then removed and later restored, so the top moves) and published through
:meth:`SimState.publish`, so REST ``/book`` and the websocket always agree. Tokens are taken round
robin from whatever the market sockets are subscribed to, so a socket carrying 2,000 tokens sees
all of them move. With one event per frame (``ws_batch`` 1) the rate is the frame rate.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from loguru import logger

from services.sim_exchange.market import fill_ladder

if TYPE_CHECKING:
    from services.sim_exchange.state import SimState

STEP_SEC = 0.005  # emission granularity: frames due are sent every 5 ms


class WsLoad:
    def __init__(self, state: SimState, rate_per_sec: float, seed: int = 1) -> None:
        self.state = state
        self.rate = rate_per_sec
        self.rng = random.Random(seed)
        self.changes = 0
        self._turn = 0
        self._removed: dict[str, tuple[str, float, float]] = {}  # token -> (side, price, size) to restore

    def step(self, count: int) -> int:
        """Make ``count`` book changes on subscribed tokens; returns how many were made."""
        tokens = sorted(self.state.hub.subscribed() & self.state.sim.by_token.keys())
        if not tokens or count <= 0:
            return 0
        touched: list[str] = []
        for _ in range(count):
            token = tokens[self._turn % len(tokens)]
            self._turn += 1
            self._change(token)
            touched.append(token)
        self.state.publish(touched)
        self.changes += len(touched)
        return len(touched)

    def _change(self, token: str) -> None:
        book = self.state.sim.by_token[token]
        removed = self._removed.pop(token, None)
        if removed is not None:  # put back the level taken off last time: the top moves back
            side, price, size = removed
            (book.bids if side == "bids" else book.asks)[price] = size
            return
        if not book.bids or not book.asks:
            fill_ladder(book, self.rng)
            return
        bids_turn = self.rng.random() < 0.5
        levels = book.bids if bids_turn else book.asks
        best = max(levels) if bids_turn else min(levels)
        if len(levels) > 2 and self.rng.random() < 0.2:
            self._removed[token] = ("bids" if bids_turn else "asks", best, levels.pop(best))
        else:
            levels[best] = float(self.rng.randint(1, 500))

    async def run(self) -> None:
        """Emit at ``self.rate`` (read each step, so the admin API can change it live)."""
        owed = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(STEP_SEC)
            now = time.monotonic()
            if self.rate <= 0:
                owed, last = 0.0, now
                continue
            owed = min(owed + (now - last) * self.rate, self.rate)  # never more than 1 s of backlog
            last = now
            due = int(owed)
            if due:
                try:
                    owed -= self.step(due) or due
                except Exception:
                    logger.exception("market-data load step failed")
                    owed = 0.0
