"""sim_exchange arbitrage fixtures (pure parts): neg-risk events, set-sum drift, CTF bookkeeping."""

from __future__ import annotations

import random

import pytest

from services.sim_exchange.ctf import Ctf, CtfError
from services.sim_exchange.market import MarketSim, drift
from services.sim_exchange.matching import Matcher
from services.sim_exchange.negrisk import make_events, step_event

ADDR = "0x" + "ab" * 20


def test_negrisk_events_have_all_outcomes_and_yes_mids_near_one() -> None:
    events = make_events(seed=5, count=2, outcomes=4, first_gamma_id=600_000, fee_rate=0.04)
    assert [len(e.markets) for e in events] == [4, 4]
    for e in events:
        assert all(m.neg_risk and m.neg_risk_market_id == e.neg_risk_market_id for m in e.markets)
        assert all(m.yes.neg_risk and m.no.neg_risk and m.fee_rate == 0.04 for m in e.markets)
        assert sum(m.yes.mid for m in e.markets) == pytest.approx(1.0, abs=0.03)
        assert len({m.condition_id for m in e.markets}) == 4
    assert make_events(5, 2, 4, 600_000)[0].markets[0].yes.token_id == events[0].markets[0].yes.token_id


def test_event_step_rescales_yes_mids_to_one_plus_offset() -> None:
    event = make_events(seed=1, count=1, outcomes=3, first_gamma_id=1)[0]
    rng = random.Random(3)
    for _ in range(50):
        changed = step_event(event, rng, volatility=0.01, step=0.02, cap=0.05)
        assert len(changed) == 6
        assert abs(event.offset) <= 0.05
        assert sum(m.yes.mid for m in event.markets) == pytest.approx(1 + event.offset, abs=0.002)
        assert all(m.no.mid == pytest.approx(1 - m.yes.mid) for m in event.markets)
    event.markets[0].yes.frozen = True
    assert step_event(event, rng, 0.01, 0.02, 0.05) == []


def test_drift_is_capped_and_draws_nothing_when_off() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert drift(0.03, rng, 0.0, 0.05) == 0.03
    assert rng.getstate() == state  # existing seeded walks are unchanged with drift off
    values = [drift(0.0, random.Random(i), 1.0, 0.05) for i in range(20)]
    assert max(abs(v) for v in values) == pytest.approx(0.05)


def test_binary_markets_drift_across_one() -> None:
    sim = MarketSim(seed=2, count=4, volatility=0.0, arb_drift=0.02, arb_drift_max=0.05)
    sums = []
    for _ in range(200):
        sim.step()
        sums += [m.yes.mid + m.no.mid for m in sim.markets]
    assert min(sums) < 0.98
    assert max(sums) > 1.02


def test_split_merge_convert_bookkeeping() -> None:
    events = make_events(seed=1, count=1, outcomes=3, first_gamma_id=10)
    sim = MarketSim(seed=1, count=1, volatility=0.0, extra=[m for e in events for m in e.markets])
    matcher = Matcher(sim, starting_cash=100.0)
    ctf = Ctf(matcher)
    m = sim.markets[0]
    ctf.split(ADDR, m, 10)
    acct = matcher.account(ADDR)
    assert acct.cash == 90.0
    assert acct.positions[m.yes.token_id] == 10
    assert acct.positions[m.no.token_id] == 10
    ctf.merge(ADDR, m, 4)
    assert acct.cash == 94.0
    assert acct.positions[m.yes.token_id] == 6
    with pytest.raises(CtfError, match="not enough"):
        ctf.merge(ADDR, m, 7)
    with pytest.raises(CtfError, match="collateral"):
        ctf.split(ADDR, m, 1000)
    # neg-risk: split outcome 0, convert its NO -> a YES of every outcome for $1 each
    event = events[0]
    ctf.split(ADDR, event.markets[0], 5)
    ctf.convert(ADDR, event, [0], 5)
    assert [acct.positions.get(x.yes.token_id, 0) for x in event.markets] == [5, 5, 5]
    assert acct.positions[event.markets[0].no.token_id] == 0
    assert acct.cash == 89.0  # 94 - 5 (split) + (1 - 1) x 5 (convert)
    assert [op.kind for op in ctf.ops] == ["split", "merge", "split", "convert"]
