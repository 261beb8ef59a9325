"""Authenticated CLOB routes: API keys (L1), orders, cancels, open orders, trades, balances (L2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger

from services.sim_exchange import wire
from services.sim_exchange.auth import ApiKey, AuthError, KeyExists
from services.sim_exchange.balances import BalanceQueryError
from services.sim_exchange.faults import HEARTBEAT_OUTAGE_TEXT
from services.sim_exchange.lifecycle import hashes
from services.sim_exchange.limits import CANCELS, ORDERS
from services.sim_exchange.matching import Fill, Order, OrderError
from services.sim_exchange.orders import parse_post
from services.sim_exchange.state import SimState

MAX_BATCH = 15
PAGE = 500
START_CURSOR, END_CURSOR = "MA==", "LTE="


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _amount(value: float) -> str:
    return wire.num(round(value, 6))


def order_response(order: Order, fills: list[Fill]) -> dict[str, Any]:
    shares = sum(f.size for f in fills)
    cash = sum(f.size * f.price for f in fills)
    making, taking = (cash, shares) if order.side == "BUY" else (shares, cash)
    status = "delayed" if order.status == "DELAYED" else "matched" if fills else "live"
    out = {"success": True, "errorMsg": "", "orderID": order.id, "status": status,
           "makingAmount": _amount(making), "takingAmount": _amount(taking), "tradeIDs": [f.trade_id for f in fills]}
    if known := hashes(fills):  # venue.md T3: hashes only for trades already sent to the chain
        out["transactionsHashes"] = known
    return out


def _page(items: list[Any], cursor: str) -> dict[str, Any]:
    import base64

    try:
        start = 0 if cursor in ("", START_CURSOR) else int(base64.b64decode(cursor).decode())
    except ValueError:
        start = 0
    if start < 0:
        start = len(items)
    chunk = items[start:start + PAGE]
    nxt = start + PAGE
    next_cursor = base64.b64encode(str(nxt).encode()).decode() if nxt < len(items) else END_CURSOR
    return {"data": chunk, "next_cursor": next_cursor, "limit": PAGE, "count": len(chunk)}


def router(state: SimState) -> APIRouter:
    r = APIRouter()

    async def l2(request: Request) -> tuple[ApiKey, bytes]:
        body = await request.body()
        key = state.auth.l2(request.headers, request.method, request.url.path, body.decode("utf-8", "replace"))
        return key, body

    async def authed(request: Request) -> tuple[ApiKey, Any] | JSONResponse:
        try:
            key, body = await l2(request)
        except AuthError as exc:
            return _err(401, str(exc))
        request.state.signer = key.address  # the rate-limit headers are the signer's (lifecycle.py)
        try:
            return key, (json.loads(body) if body else None)
        except ValueError:
            return _err(400, "Invalid payload: body is not JSON")

    @r.post("/auth/api-key")
    @r.get("/auth/derive-api-key")
    async def api_key(request: Request) -> Any:
        try:
            return state.auth.l1(request.headers, create=request.method == "POST").as_json()
        except KeyExists as exc:  # the official clients then derive it (sdk-wire §1.3)
            return _err(400, str(exc))
        except AuthError as exc:
            return _err(401, str(exc))

    @r.post("/auth/builder-api-key")
    async def builder_api_key(request: Request) -> Any:
        """A builder key for relayer calls (wallet creation, gasless batches), minted for the caller."""
        got = await authed(request)
        return got if isinstance(got, JSONResponse) else state.auth.builder_key(got[0].address).as_builder_json()

    @r.get("/auth/builder-api-key")
    async def builder_api_keys(request: Request) -> Any:
        got = await authed(request)
        return got if isinstance(got, JSONResponse) else [
            k.key for k in state.auth.builders.values() if k.address == got[0].address]

    @r.get("/auth/api-keys")
    async def api_keys(request: Request) -> Any:
        got = await authed(request)
        return got if isinstance(got, JSONResponse) else {"apiKeys": [got[0].key]}

    def _place_one(key: ApiKey, payload: Any) -> tuple[dict[str, Any], int]:
        if refused := state.life.post_only_refusal(payload):
            return refused
        try:
            req = parse_post(payload, key, check=lambda order: state.signers.check(order, key.address))
            order, fills = state.place(req)
        except OrderError as exc:
            logger.info("order rejected: {}", exc)
            return {"error": str(exc)}, 400
        logger.info("order {} {} {} @ {} {} -> {}", order.order_type, order.side, order.size, order.price,
                    order.token_id[:10], order.status)
        return order_response(order, fills), 200

    @r.post("/order")
    async def post_order(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        if limited := state.life.charge(request, got[0].address, ORDERS, 1):
            return limited
        body, status = _place_one(*got)
        if status == 200 and (delay := state.faults.take_order_timeout()) is not None:
            logger.warning("fault: stalling the response of order {} for {}s", body["orderID"], delay)
            await asyncio.sleep(delay)
            state.faults.order_timeouts_answered += 1
        return JSONResponse(body, status_code=status)

    @r.post("/orders")
    async def post_orders(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        key, payload = got
        if not isinstance(payload, list):
            return _err(400, "Invalid order payload")
        if len(payload) > MAX_BATCH:
            return _err(400, f"Too many orders in payload: {len(payload)}, max allowed: {MAX_BATCH}")
        if limited := state.life.charge(request, key.address, ORDERS, len(payload)):
            return limited
        out = []
        for item in payload:
            body, status = _place_one(key, item)
            if status != 200:
                body = {"success": False, "errorMsg": body["error"], "orderID": "", "status": "",
                        "makingAmount": "", "takingAmount": "", "transactionsHashes": [], "tradeIDs": []}
            out.append(body)
        return out

    @r.delete("/order")
    async def cancel_order(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        key, body = got
        oid = body.get("orderID") if isinstance(body, dict) else None
        if not oid:
            return _err(400, "Invalid payload: orderID is required")
        if limited := state.life.charge(request, key.address, CANCELS, 1):
            return limited
        return cancel_owned(key, [str(oid)])

    @r.delete("/orders")
    async def cancel_orders(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        key, body = got
        if not isinstance(body, list):
            return _err(400, "Invalid payload: expected a list of order ids")
        if limited := state.life.charge(request, key.address, CANCELS, len(body)):
            return limited
        return cancel_owned(key, [str(o) for o in body])

    @r.delete("/cancel-all")
    async def cancel_all(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        mine = [o.id for o in state.matcher.working_orders() if o.owner == got[0].key]
        if limited := state.life.charge(request, got[0].address, CANCELS, 1 + len(mine)):
            return limited
        return cancel_owned(got[0], mine)

    @r.delete("/cancel-market-orders")
    async def cancel_market(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        key, body = got
        body = body if isinstance(body, dict) else {}
        market, asset = body.get("market"), body.get("asset_id")
        mine = [o.id for o in state.matcher.working_orders() if o.owner == key.key
                and (not market or o.condition_id == market) and (not asset or o.token_id == asset)]
        if limited := state.life.charge(request, key.address, CANCELS, 1 + len(mine)):
            return limited
        return cancel_owned(key, mine)

    @r.get("/data/orders")
    async def open_orders(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        q = request.query_params
        mine = [o for o in state.matcher.orders.values() if o.owner == got[0].key]
        # by id: any status (as the real venue); otherwise only the open ones
        mine = [o for o in mine if (o.id == q["id"] if q.get("id") else o.status in ("LIVE", "DELAYED"))]
        mine = [o for o in mine if (not q.get("market") or o.condition_id == q["market"])
                and (not q.get("asset_id") or o.token_id == q["asset_id"])]
        return _page([wire.open_order(o) for o in mine], q.get("next_cursor", START_CURSOR))

    @r.get("/data/order/{order_id}")
    async def get_order(order_id: str, request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        order = state.matcher.orders.get(order_id)
        if order is None or order.owner != got[0].key:
            return _err(404, f"order {order_id} not found")
        return wire.open_order(order)

    @r.get("/data/trades")
    async def trades(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        q = request.query_params
        rows = [wire.l2_trade(o, f) for o, f in reversed(state.matcher.trades) if o.owner == got[0].key]
        rows = [t for t in rows if (not q.get("id") or t["id"] == q["id"])
                and (not q.get("market") or t["market"] == q["market"])
                and (not q.get("asset_id") or t["asset_id"] == q["asset_id"])
                and (not q.get("before") or int(t["match_time"]) < int(q["before"]))
                and (not q.get("after") or int(t["match_time"]) > int(q["after"]))]
        return _page(rows, q.get("next_cursor", START_CURSOR))

    @r.get("/balance-allowance")
    @r.get("/balance-allowance/update")
    async def balance(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        try:
            return state.balances.read(got[0].address, dict(request.query_params))
        except BalanceQueryError as exc:
            return _err(400, str(exc))

    @r.post("/v1/heartbeats")
    @r.post("/heartbeats")
    async def heartbeat(request: Request) -> Any:
        got = await authed(request)
        if isinstance(got, JSONResponse):
            return got
        body = got[1] if isinstance(got[1], dict) else {}
        beat = state.life.heartbeat(got[0].key, str(body.get("heartbeat_id") or ""))
        if beat is None:  # the heartbeat_outage fault
            return JSONResponse({"error": HEARTBEAT_OUTAGE_TEXT}, status_code=503)
        if not beat.accepted:  # the shape the official SDK turns into OrderHeartbeatMismatchError
            return JSONResponse({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": beat.heartbeat_id},
                                status_code=400)
        return {"heartbeat_id": beat.heartbeat_id}

    def cancel_owned(key: ApiKey, order_ids: list[str]) -> dict[str, Any]:
        """Orders belong to the API key that placed them (whichever wallet made them): others are
        answered "order not found", as unknown ids are."""
        owned = [i for i in order_ids if (o := state.matcher.orders.get(i)) is not None and o.owner == key.key]
        out = state.cancel(owned, None)
        out["not_canceled"].update({i: "order not found" for i in order_ids if i not in owned})
        return out

    return r
