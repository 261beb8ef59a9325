"""Admin routes for the copy-trade sources (issue 3): trade bursts and Gamma overrides.

* ``POST /_sim/burst`` — body ``{"wallets": [addr, ...] | "wallet": addr, "count": n, "token"?,
  "side"? (BUY), "same_second"? (true), "same_tx"? (false), "timestamp"?, "spread_sec"?, "price"?,
  "maker"? (false: the wallet's fills were resting orders, served by ``/trades`` only with
  ``takerOnly=false``)}``:
  ``count`` trades per wallet, all in one second (or spread over ``spread_sec`` seconds), all in
  one transaction when ``same_tx`` (each fill then has its own size, as real fills of one
  settlement do). They reach ``/data-api/trades``, ``/activity``, the live-data socket and the
  chain (OrderFilled logs, :mod:`chainlog`) like any posted trade. Answers ``{"trades": n,
  "first_timestamp", "last_timestamp"}``.
* ``POST /_sim/raw-trades`` — rows stored verbatim (malformed values allowed; ``proxyWallet`` and
  an integer ``timestamp`` required), to prove a consumer skips and counts what it cannot read.
  They are not on the chain (no settlement made them).
* ``PATCH /_sim/gamma/{gamma_id}`` — body: Gamma fields to override (``volumeNum``,
  ``liquidityNum``, ``endDate``, ``closed``, ``outcomePrices`` as a list or JSON text, ...);
  answers the market as Gamma now serves it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.sim_exchange import wire
from services.sim_exchange.feed import FeedError
from services.sim_exchange.state import SimState

MAX_BURST = 100_000


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def burst_rows(wallets: list[str], count: int, token: str, side: str, ts0: int, spread_sec: int,
               same_tx: bool, price: float) -> list[dict[str, Any]]:
    """The raw rows of a burst (pure): distinct fills, oldest first."""
    rows: list[dict[str, Any]] = []
    for w in wallets:
        tx = "0x" + uuid.uuid4().hex + uuid.uuid4().hex
        for i in range(count):
            rows.append({
                "proxyWallet": w, "side": side, "asset": token, "size": 5 + i, "price": price,
                "timestamp": ts0 + (i * spread_sec // max(count, 1)),
                "transactionHash": tx if same_tx else "0x" + uuid.uuid4().hex + uuid.uuid4().hex,
            })
    return rows


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/_sim")

    @r.post("/burst")
    async def burst(request: Request) -> Any:
        body = await request.json()
        if not isinstance(body, dict):
            return _err(400, "body must be an object")
        wallets = body.get("wallets") or ([body["wallet"]] if body.get("wallet") else [])
        try:
            count = int(body.get("count", 1))
            token = str(body.get("token") or state.sim.markets[0].yes.token_id)
            side = str(body.get("side", "BUY")).upper()
            same_second = bool(body.get("same_second", True))
            spread = 0 if same_second else int(body.get("spread_sec", count))
            ts0 = int(body.get("timestamp") or time.time())
            book = state.sim.by_token.get(token)
            price = float(body.get("price") or (book.mid if book else 0.5))
        except (TypeError, ValueError) as exc:
            return _err(400, f"bad burst: {exc}")
        if not wallets or not all(isinstance(w, str) for w in wallets):
            return _err(400, "give wallet or wallets")
        if not 1 <= count * len(wallets) <= MAX_BURST:
            return _err(400, f"a burst is 1 to {MAX_BURST} trades")
        raws = burst_rows([w.lower() for w in wallets], count, token, side, ts0, spread,
                          bool(body.get("same_tx", False)), round(price, 4))
        try:
            rows = [state.feed.make_row(raw) for raw in raws]
        except FeedError as exc:
            return _err(400, str(exc))
        for row in rows:
            state.external_trade(row, maker=bool(body.get("maker", False)))
        state.chain.seal()  # a same_tx burst is one transaction: one block, sealed once it is whole
        return {"trades": len(rows), "first_timestamp": rows[0]["timestamp"], "last_timestamp": rows[-1]["timestamp"]}

    @r.post("/raw-trades")
    async def raw_trades(request: Request) -> Any:
        """Rows stored exactly as given (malformed ones included), for parser robustness tests.
        Each needs ``proxyWallet`` and an integer ``timestamp`` so the feed can select it."""
        body = await request.json()
        rows = body if isinstance(body, list) else [body]
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("proxyWallet"), str) \
                    or not isinstance(row.get("timestamp"), int):
                return _err(400, "each raw row needs proxyWallet (text) and timestamp (integer)")
        for row in rows:
            row = {**row, "proxyWallet": row["proxyWallet"].lower()}
            state.live.push(state.feed.add(row))
        return {"trades": len(rows)}

    @r.patch("/gamma/{gamma_id}")
    async def patch_gamma(gamma_id: str, request: Request) -> Any:
        market = next((m for m in state.sim.markets if m.gamma_id == gamma_id), None)
        if market is None:
            return _err(404, f"unknown gamma market {gamma_id}")
        body = await request.json()
        if not isinstance(body, dict):
            return _err(400, "body must be an object of Gamma fields")
        try:
            state.gamma.set(gamma_id, body)
        except (TypeError, ValueError) as exc:
            return _err(400, f"bad override: {exc}")
        return state.gamma.apply(wire.gamma_market(market, state.tops()))

    return r
