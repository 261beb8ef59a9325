"""Admin routes for arbitrage fixtures: the record of split/merge/convert/redeem, neg-risk events, fees,
set-sum drift.

Position calls reach the sim the way they reach the venue (the SDK over the relayer or JSON-RPC);
``GET /_sim/ctf/ops`` shows what they did to each account. Shapes are a contract: see
docs/sim-exchange.md.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.sim_exchange.state import SimState


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/_sim")

    @r.get("/ctf/ops")
    async def ctf_ops(request: Request) -> Any:
        only = request.query_params.get("address", "").lower()
        return [asdict(o) for o in state.ctf.ops if not only or o.address == only]

    @r.get("/events")
    async def events() -> Any:
        out = []
        for e in state.events:
            outcomes = []
            for m in e.markets:
                bid, ask = state.top(m.yes.token_id)
                outcomes.append({"name": m.group_title, "condition_id": m.condition_id, "yes": m.yes.token_id,
                                 "no": m.no.token_id, "yes_best_bid": bid, "yes_best_ask": ask})
            out.append({"gamma_id": e.gamma_id, "slug": e.slug, "neg_risk_market_id": e.neg_risk_market_id,
                        "offset": e.offset, "outcomes": outcomes})
        return out

    @r.put("/fees/{condition_id}")
    async def put_fees(condition_id: str, request: Request) -> Any:
        market = state.sim.condition(condition_id)
        if market is None:
            return _err(404, f"unknown condition id {condition_id!r}")
        body = await request.json()
        try:
            rate, exponent = float(body.get("rate", market.fee_rate)), float(body.get("exponent", market.fee_exponent))
        except (AttributeError, TypeError, ValueError) as exc:
            return _err(400, f"bad fees: {exc}")
        if not (0 <= rate <= 1 and exponent > 0):
            return _err(400, "rate must be in [0, 1] and exponent > 0")
        market.fee_rate, market.fee_exponent = rate, exponent
        return {"condition_id": condition_id, "rate": rate, "exponent": exponent}

    @r.put("/drift")
    async def put_drift(request: Request) -> Any:
        body = await request.json()
        try:
            step, cap = float(body.get("step", state.sim.arb_drift)), float(body.get("max", state.sim.arb_drift_max))
        except (AttributeError, TypeError, ValueError) as exc:
            return _err(400, f"bad drift: {exc}")
        if step < 0 or not 0 <= cap <= 0.5:
            return _err(400, "step must be >= 0 and max in [0, 0.5]")
        state.sim.arb_drift, state.sim.arb_drift_max = step, cap
        return {"step": step, "max": cap}

    return r
