"""FastAPI app: public CLOB routes, Gamma (/gamma), Data API (/data-api), the market socket (/ws/market).

Private CLOB routes live in :mod:`private`, the admin API in :mod:`admin`. Every route is
``async def`` so the whole venue state is only touched from the event loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from services.sim_exchange import (
    admin,
    arb_admin,
    chain_admin,
    copytrade_admin,
    data_v2,
    environment,
    gamma_routes,
    lifecycle,
    livedata,
    private,
    relayer_routes,
    wire,
)
from services.sim_exchange.feed import FeedError
from services.sim_exchange.market import TokenBook
from services.sim_exchange.state import SimState


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _book_or_404(state: SimState, request: Request) -> TokenBook | JSONResponse:
    token = request.query_params.get("token_id") or request.path_params.get("token_id") or ""
    book = state.sim.token(token)
    if book is None:
        return error(404, "No orderbook exists for the requested token id")
    return book


def create_app(state: SimState) -> FastAPI:
    app = FastAPI(title="polyfleet sim_exchange", docs_url="/_sim/docs", openapi_url="/_sim/openapi.json")
    app.state.sim = state

    @app.middleware("http")
    async def rate_limit_fault(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        fault = state.faults.take_429(request.url.path)
        if fault is not None:
            message = "Too Many Requests" if fault.status == 429 else "Service Unavailable"
            return error(fault.status, message, {"Retry-After": f"{fault.retry_after:g}"})
        return await call_next(request)

    # ---- CLOB public ----------------------------------------------------------------------------
    @app.get("/")
    @app.get("/ok")
    async def ok() -> str:
        return "OK"

    @app.get("/time")
    async def server_time() -> int:
        return int(time.time())

    @app.get("/version")
    async def version() -> dict[str, int]:
        return {"version": 2}

    @app.get("/book")
    async def book(request: Request) -> Any:
        b = _book_or_404(state, request)
        return b if isinstance(b, JSONResponse) else state.book(b.token_id)

    @app.post("/books")
    async def books(request: Request) -> Any:
        body = await request.json()
        if not isinstance(body, list):
            return error(400, "Invalid payload: expected a list of {token_id}")
        ids = [str(p.get("token_id", "")) for p in body if isinstance(p, dict)]
        return [state.book(t) for t in ids if t in state.sim.by_token]

    def _price(token: str, side: str) -> str:
        bid, ask = state.top(token)
        return wire.num(bid or 0) if side == "BUY" else wire.num(ask or 1)

    @app.get("/price")
    async def price(request: Request) -> Any:
        b = _book_or_404(state, request)
        if isinstance(b, JSONResponse):
            return b
        side = request.query_params.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            return error(400, "Invalid side")
        return {"price": _price(b.token_id, side)}

    @app.post("/prices")
    async def prices(request: Request) -> Any:
        body = await request.json()
        out: dict[str, dict[str, str]] = {}
        for p in body if isinstance(body, list) else []:
            t, side = str(p.get("token_id", "")), str(p.get("side", "")).upper()
            if t in state.sim.by_token and side in ("BUY", "SELL"):
                out.setdefault(t, {})[side] = _price(t, side)
        return out

    def _mid(token: str) -> str:
        bid, ask = state.top(token)
        if bid is None or ask is None:
            return wire.num(state.sim.by_token[token].mid)
        return wire.num((bid + ask) / 2)

    @app.get("/midpoint")
    async def midpoint(request: Request) -> Any:
        b = _book_or_404(state, request)
        if isinstance(b, JSONResponse):
            return b
        mid = _mid(b.token_id)
        return {"mid": mid, "mid_price": mid}

    @app.post("/midpoints")
    async def midpoints(request: Request) -> Any:
        body = await request.json()
        ids = [str(p.get("token_id", "")) for p in body if isinstance(p, dict)] if isinstance(body, list) else []
        return {t: _mid(t) for t in ids if t in state.sim.by_token}

    @app.get("/spread")
    async def spread(request: Request) -> Any:
        b = _book_or_404(state, request)
        if isinstance(b, JSONResponse):
            return b
        bid, ask = state.top(b.token_id)
        return {"spread": wire.num((ask or 1) - (bid or 0))}

    @app.get("/last-trade-price")
    async def last_trade_price(request: Request) -> Any:
        b = _book_or_404(state, request)
        if isinstance(b, JSONResponse):
            return b
        return {"price": wire.num(b.last_trade_price), "side": b.last_trade_side}

    @app.get("/tick-size")
    @app.get("/tick-size/{token_id}")
    async def tick_size(request: Request) -> Any:
        b = _book_or_404(state, request)
        return b if isinstance(b, JSONResponse) else {"minimum_tick_size": b.tick}

    @app.get("/neg-risk")
    @app.get("/neg-risk/{token_id}")
    async def neg_risk(request: Request) -> Any:
        b = _book_or_404(state, request)
        return b if isinstance(b, JSONResponse) else {"neg_risk": b.neg_risk}

    @app.get("/fee-rate")
    @app.get("/fee-rate/{token_id}")
    async def fee_rate(request: Request) -> Any:
        b = _book_or_404(state, request)
        if isinstance(b, JSONResponse):
            return b
        # base_fee is the old bps field; the formula's rate is in feeSchedule / fd.r
        return {"base_fee": int(round(state.sim.market_of[b.token_id].fee_rate * 10_000))}

    @app.get("/markets-by-token/{token_id}")
    async def market_by_token(token_id: str) -> Any:
        m = state.sim.market_of.get(token_id)
        if m is None:
            return error(404, "market not found")
        return {"condition_id": m.condition_id, "primary_token_id": m.yes.token_id,
                "secondary_token_id": m.no.token_id}

    @app.get("/clob-markets/{condition_id}")
    async def clob_market_compact(condition_id: str) -> Any:
        m = state.sim.condition(condition_id)
        return wire.clob_market_compact(m) if m else error(404, "market not found")

    @app.get("/markets/{condition_id}")
    async def clob_market(condition_id: str) -> Any:
        m = state.sim.condition(condition_id)
        return wire.clob_market(m, state.ctf.winners.get(m.condition_id)) if m else error(404, "market not found")

    @app.get("/markets")
    async def clob_markets() -> Any:
        data = [wire.clob_market(m, state.ctf.winners.get(m.condition_id)) for m in state.sim.markets]
        return {"limit": len(data), "count": len(data), "next_cursor": "LTE=", "data": data}

    # ---- Data API -------------------------------------------------------------------------------
    @app.get("/data-api/trades")
    async def data_trades(request: Request) -> Any:
        try:
            return state.feed.trades(dict(request.query_params))
        except FeedError as exc:
            return error(400, str(exc))

    @app.get("/data-api/activity")
    async def data_activity(request: Request) -> Any:
        try:
            return state.feed.activity(dict(request.query_params))
        except FeedError as exc:
            return error(400, str(exc))

    @app.get("/data-api/value")
    async def data_value(user: str = "") -> Any:
        """A wallet's portfolio value: its positions at the mid (the venue's /value; scripted wallets
        hold nothing here, so 0)."""
        acct = state.matcher.accounts.get(user.lower())
        held = acct.positions.items() if acct is not None else []
        value = sum(size * state.sim.by_token[t].mid for t, size in held if t in state.sim.by_token and size > 0)
        return [{"user": user, "value": round(value, 6)}]

    # ---- sockets --------------------------------------------------------------------------------
    @app.websocket("/ws/market")
    async def ws_market(ws: WebSocket) -> None:
        await state.hub.serve(ws, state.ws_books)

    @app.websocket("/ws/live-data")
    async def ws_live_data(ws: WebSocket) -> None:
        await livedata.serve(ws, state.live)

    app.include_router(private.router(state))
    app.include_router(admin.router(state))
    app.include_router(copytrade_admin.router(state))
    app.include_router(arb_admin.router(state))
    app.include_router(chain_admin.router(state, state.auth.chain_id))
    app.include_router(environment.router(state.env))
    app.include_router(relayer_routes.router(state))
    app.include_router(gamma_routes.router(state))
    app.include_router(data_v2.router(state))
    lifecycle.install(app, state)  # the CLOB gate (restart, rate-limit headers) and /ws/user
    return app
