"""Routes for what happens on Polygon rather than on the CLOB: market resolution (and the
JSON-RPC endpoint, :mod:`services.sim_exchange.rpc`).

* ``POST /_sim/resolve``: ``{"condition_id", "winner": "Yes"|"No"}`` for a binary market or
  ``{"neg_risk_market_id", "winner_index"}`` for a neg-risk event; every account is paid $1 a
  winning share at once (the sim's stand-in for the oracle report plus ``redeemPositions``).
* ``GET /_sim/resolve/payouts``: what was paid, to whom.

Shapes are a contract: see docs/sim-exchange.md.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.sim_exchange.resolution import ResolutionError, Resolutions
from services.sim_exchange.state import SimState


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/_sim")
    resolutions = Resolutions(state.matcher)

    @r.post("/resolve")
    async def resolve(request: Request) -> Any:
        body = await request.json()
        if not isinstance(body, dict):
            return _err(400, "body must be an object")
        try:
            if "neg_risk_market_id" in body:
                event = state.event(str(body["neg_risk_market_id"]))
                if event is None:
                    return _err(404, f"unknown neg-risk market id {body['neg_risk_market_id']!r}")
                paid = resolutions.resolve_event(event, int(body.get("winner_index", -1)))
                tokens = [t.token_id for m in event.markets for t in m.tokens]
            else:
                market = state.sim.by_condition.get(str(body.get("condition_id", "")))
                if market is None:
                    return _err(404, f"unknown condition id {body.get('condition_id')!r}")
                winner = str(body.get("winner", ""))
                if winner not in ("Yes", "No"):
                    return _err(400, "winner must be Yes or No")
                paid = resolutions.resolve_market(market, winner == "Yes")
                tokens = [t.token_id for t in market.tokens]
        except (ResolutionError, TypeError, ValueError) as exc:
            return _err(400, str(exc))
        state.publish(tokens)  # canceled orders leave the public book
        return {"payouts": [asdict(p) for p in paid]}

    @r.get("/resolve/payouts")
    async def payouts() -> Any:
        return [asdict(p) for p in resolutions.payouts]

    return r
