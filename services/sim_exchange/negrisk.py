"""Simulated neg-risk events and set-sum drift (pure): the markets arbitrage is looked for in.

* A neg-risk event has ``outcomes`` binary markets (each its own YES/NO tokens and condition id),
  grouped under one ``negRiskMarketID``; exactly one outcome resolves YES. The YES mids start as
  a seeded split of 1 and each walk step jitters them and rescales them to ``1 + offset``.
* ``offset`` is the set-sum drift (``sim_exchange.arb_drift``): a mean-reverting walk, capped at
  ``arb_drift_max``, that pushes YES + NO (binary) or Σ YES (event) off 1 so the books cross the
  arbitrage thresholds now and then. With ``arb_drift`` 0 nothing here draws from the random
  generator, so the seeded walk of existing markets is unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.sim_exchange.market import (
    MID_MAX,
    MID_MIN,
    SimMarket,
    TokenBook,
    _hex,
    _token_id,
    drift,
    fill_ladder,
    px,
)


@dataclass
class SimEvent:
    gamma_id: str
    slug: str
    title: str
    neg_risk_market_id: str
    end_date: datetime
    markets: list[SimMarket] = field(default_factory=list)
    offset: float = 0.0

    @property
    def frozen(self) -> bool:
        return any(t.frozen for m in self.markets for t in m.tokens)


def make_events(seed: int, count: int, outcomes: int, first_gamma_id: int, fee_rate: float = 0.0,
                fee_exponent: float = 1.0, now: datetime | None = None) -> list[SimEvent]:
    rng = random.Random(seed * 104_729 + 3)
    base = now or datetime.now(UTC)
    events: list[SimEvent] = []
    for e in range(count):
        nr_id = "0x" + _hex(seed, f"negrisk:{e}")
        end = (base + timedelta(days=14 + e)).replace(microsecond=0)
        event = SimEvent(str(900_000 + e), f"negrisk-event-{e + 1}", f"Who wins contest #{e + 1}?", nr_id, end)
        weights = [rng.uniform(1.0, 3.0) for _ in range(outcomes)]
        total = sum(weights)
        for k in range(outcomes):
            i = first_gamma_id + e * outcomes + k
            cid = "0x" + _hex(seed, f"negrisk:{e}:condition:{k}")
            mid = px(min(max(round(weights[k] / total, 2), MID_MIN), MID_MAX))
            name = f"Candidate {chr(65 + k)}"
            yes = TokenBook(_token_id(seed, f"negrisk:{e}:{k}:yes"), cid, "Yes", 0, mid, neg_risk=True)
            no = TokenBook(_token_id(seed, f"negrisk:{e}:{k}:no"), cid, "No", 1, px(1 - mid), neg_risk=True)
            m = SimMarket(gamma_id=str(i), condition_id=cid, question_id="0x" + _hex(seed, f"negrisk:{e}:q:{k}"),
                          question=f"Will {name} win contest #{e + 1}?", slug=f"{event.slug}-{name.lower()[-1]}",
                          event_slug=event.slug, end_date=end, yes=yes, no=no, fee_rate=fee_rate,
                          fee_exponent=fee_exponent, volume=round(rng.uniform(1_000, 50_000), 2),
                          neg_risk=True, neg_risk_market_id=nr_id, group_title=name, event_id=event.gamma_id)
            fill_ladder(yes, rng)
            fill_ladder(no, rng)
            event.markets.append(m)
        events.append(event)
    return events


def step_event(event: SimEvent, rng: random.Random, volatility: float, step: float, cap: float) -> list[str]:
    """Jitter the YES mids, rescale them to 1 + offset; NO mids follow as 1 - YES. Returns changed tokens."""
    if event.frozen:
        return []
    event.offset = drift(event.offset, rng, step, cap)
    raw = [max(m.yes.mid + rng.gauss(0.0, volatility), MID_MIN) for m in event.markets]
    scale = (1.0 + event.offset) / sum(raw)
    changed: list[str] = []
    for m, value in zip(event.markets, raw, strict=True):
        m.yes.mid = px(min(max(value * scale, MID_MIN), MID_MAX))
        m.no.mid = px(1 - m.yes.mid)
        for t in m.tokens:
            fill_ladder(t, rng)
            changed.append(t.token_id)
    return changed
