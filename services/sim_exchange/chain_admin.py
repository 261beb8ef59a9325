"""Routes for what happens on Polygon rather than on the CLOB: the JSON-RPC endpoint
(:mod:`services.sim_exchange.rpc`) and market resolution.

* ``POST /_sim/rpc``: JSON-RPC 2.0 (one request or a batch); the same over a websocket at
  ``ws://…/_sim/rpc``, with ``eth_subscribe("logs", …)`` (:mod:`rpcws`); ``GET /_sim/rpc/txs?address=``:
  the transactions mined; ``POST /_sim/rpc/fault``: ``{"kind": "revert"|"drop"|"hide", "count": n}``.

* ``POST /_sim/resolve``: ``{"condition_id", "winner": "Yes"|"No"}`` for a binary market or
  ``{"neg_risk_market_id", "winner_index"}`` for a neg-risk event: the oracle's report. The
  market closes and shows its winner; nobody is paid until they redeem (``POST
  /_sim/ctf/redeem`` or ``redeemPositions`` over ``/_sim/rpc``). The answer's ``payouts`` are
  what each account can redeem at that moment.
* ``GET /_sim/resolve/payouts``: those redeemable amounts, per resolution.

Shapes are a contract: see docs/sim-exchange.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse

from services.sim_exchange import rpcws
from services.sim_exchange.resolution import ResolutionError, Resolutions
from services.sim_exchange.rpc import RpcFault, SimChain
from services.sim_exchange.state import SimState


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def router(state: SimState, chain_id: int) -> APIRouter:
    r = APIRouter(prefix="/_sim")
    resolutions = Resolutions(state.ctf, on_resolved=lambda m, win: state.hub.market_resolved(
        m.gamma_id, m.condition_id, [t.token_id for t in m.tokens], win.token_id, win.outcome, time.time()))
    chain = SimChain(state, chain_id)

    def _one(req: Any) -> dict[str, Any]:
        rid = req.get("id") if isinstance(req, dict) else None
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32600, "message": "invalid request"}}
        params = req.get("params", [])
        try:
            result = chain.handle(req["method"], params if isinstance(params, list) else [params])
        except RpcFault as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": exc.message}}
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"invalid params: {exc}"}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    @r.post("/rpc")
    async def rpc(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
        return [_one(b) for b in body] if isinstance(body, list) else _one(body)

    @r.websocket("/rpc")
    async def rpc_socket(ws: WebSocket) -> None:
        await rpcws.serve(ws, state.chain, _one)

    @r.get("/rpc/txs")
    async def rpc_txs(request: Request) -> Any:
        return chain.log(request.query_params.get("address", ""))

    @r.post("/rpc/fault")
    async def rpc_fault(request: Request) -> Any:
        body = await request.json()
        kind, count = str(body.get("kind", "")), int(body.get("count", 1))
        if kind not in ("revert", "drop", "hide") or count < 0:
            return _err(400, "kind must be revert, drop or hide, count >= 0")
        setattr(chain.faults, kind, count)
        return asdict(chain.faults)

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
                market = state.sim.condition(str(body.get("condition_id", "")))
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
