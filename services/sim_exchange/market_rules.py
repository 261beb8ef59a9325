"""Per-market order rules of the binary markets: tick, minimum size and taker delay (pure).

The venue's markets differ (docs/venue.md P1, P2, P6): ticks 0.01 and 0.001, minimum sizes 5 and
15, sports markets that hold a marketable order for a moment. So do the sim's, drawn per seed
with a generator of their own (the walk and the books of the other markets stay as they were):

* the first binary market is always the plain one (tick 0.01, minimum 5, no delay): tests and
  demos that take "the first market" keep a market they can reason about;
* every later one gets tick 0.001 with ``fine_tick_share``, minimum 15 with ``large_min_share``
  and a delay of ``delay_ms`` with ``delayed_share``; when there are later markets and a share is
  above 0, at least one market has the rule (so "both occur" holds for any seed).

Neg-risk event markets keep tick 0.01 and minimum 5.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.sim_exchange.market import SimMarket, fill_ladder, snap

FINE_TICK = 0.001
LARGE_MIN = 15.0


@dataclass(frozen=True)
class MarketRule:
    tick: float = 0.01
    min_size: float = 5.0
    delay_s: float = 0.0


def draw_rules(seed: int, count: int, fine_tick_share: float, large_min_share: float, delayed_share: float,
               delay_s: float) -> list[MarketRule]:
    rng = random.Random(f"market-rules:{seed}")
    draws = [(rng.random(), rng.random(), rng.random()) for _ in range(count)]
    fine = [i > 0 and d[0] < fine_tick_share for i, d in enumerate(draws)]
    large = [i > 0 and d[1] < large_min_share for i, d in enumerate(draws)]
    slow = [i > 0 and d[2] < delayed_share for i, d in enumerate(draws)]
    for flags, share, at in ((fine, fine_tick_share, 1), (large, large_min_share, count - 1),
                             (slow, delayed_share, count - 1)):
        if count > 1 and share > 0 and not any(flags):
            flags[at] = True
    return [MarketRule(FINE_TICK if f else 0.01, LARGE_MIN if m else 5.0, delay_s if d else 0.0)
            for f, m, d in zip(fine, large, slow, strict=True)]


def apply_rules(markets: list[SimMarket], rules: list[MarketRule], seed: int) -> None:
    """Set each market's tick and minimum on both tokens; a book on a new tick is laid out again."""
    rng = random.Random(f"market-rules:books:{seed}")
    for m, rule in zip(markets, rules, strict=True):
        m.seconds_delay = rule.delay_s
        for book in m.tokens:
            book.min_size = rule.min_size
            if book.tick != rule.tick:
                book.tick = rule.tick
                book.mid = snap(book.mid, rule.tick)
                book.bids, book.asks = {}, {}
                fill_ladder(book, rng)
