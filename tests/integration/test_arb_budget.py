"""The arbitrage's claims on the fleet's risk budget live in the orchestrator's pf:reserved, so
the orchestrator's admissions see them and the arbitrage sees the maker workers' (real Redis)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.arb_scanner.budget import FleetBudget
from services.orchestrator.riskbook import RiskBook
from shared.keys import Keys


async def test_arb_claims_and_orchestrator_reservations_share_one_total(r: aioredis.Redis, keys: Keys) -> None:
    budget = FleetBudget(r, keys, total_max=100.0)
    book = RiskBook(r, keys)
    assert (await book.reserve("111", 60.0, per_token_max=100.0, total_max=100.0)).ok
    assert await budget.room("setA") == pytest.approx(40)
    refused = await budget.claim("setA", 45.0)  # 60 + 45 > 100
    assert not refused.ok
    assert refused.committed == pytest.approx(60)
    assert await r.hget(keys.reserved(), "arb:setA") is None
    assert (await budget.claim("setA", 30.0)).ok
    # the orchestrator's next admission sees the arbitrage's 30
    res = await book.reserve("222", 20.0, per_token_max=100.0, total_max=100.0)
    assert not res.ok
    assert res.refused_by == "total"
    assert res.committed == pytest.approx(90)
    # after the execution only what is still held stays claimed; 0 deletes the field
    assert await budget.settle("setA", 5.0) == pytest.approx(65)
    assert await budget.room("setA") == pytest.approx(40)
    assert await budget.settle("setA", 0.0) == pytest.approx(60)
    assert await r.hget(keys.reserved(), "arb:setA") is None
    # the orchestrator's own release is unaffected by arbitrage fields
    async with r.pipeline(transaction=True) as p:
        await book.release(p, "111")
        await p.execute()
    assert float(await r.hget(keys.reserved(), "_committed")) == pytest.approx(0)
