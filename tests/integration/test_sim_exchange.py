"""sim_exchange as a real process, driven by the real clients (the official SDK ``polymarket``, httpx, websockets)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from polymarket.errors import RequestRejectedError
from polymarket.models.clob.order_response import AcceptedOrder
from websockets.asyncio.client import ClientConnection, connect

from harness import SimExchangeProcess, eventually
from tests.integration.sim_sdk_support import LEGACY_ADDRESS, eoa_client, post_limit

WALLET = "0x9d84ce0306f8551e02efef1680475fc0f1dc1344"
StartSim = Callable[..., SimExchangeProcess]


def first_token(sim: SimExchangeProcess, outcome: int = 0) -> str:
    return str(httpx.get(f"{sim.url}/_sim/markets", timeout=30).json()[0]["tokens"][outcome]["token_id"])


def put_book(sim: SimExchangeProcess, token: str, bids: list[Any], asks: list[Any]) -> dict[str, Any]:
    resp = httpx.put(f"{sim.url}/_sim/book/{token}", json={"bids": bids, "asks": asks}, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def items(pages: Any) -> list[Any]:
    return [item async for item in pages.iter_items()]


def levels(side: Any) -> list[tuple[str, str]]:
    return [(str(level.price), str(level.size)) for level in side]


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, max(deadline - time.monotonic(), 0.01))
        for ev in msg if isinstance(msg, list) else [msg]:
            if pred(ev):
                return dict(ev)


async def test_the_sdk_trades_against_the_sim(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim)
    put_book(sim, token, [{"price": "0.40", "size": "100"}, {"price": "0.41", "size": 50}],
             [{"price": 0.45, "size": 30}, {"price": 0.44, "size": 20}])
    c = await eoa_client(sim)
    try:
        book = await c.get_order_book(asset_id=token)
        assert levels(book.bids)[-1] == ("0.41", "50")
        assert levels(book.asks)[-1] == ("0.44", "20")
        assert (str(book.tick_size), book.neg_risk) == ("0.01", False)
        assert httpx.get(f"{sim.url}/tick-size", params={"token_id": token}, timeout=30).json() == {"minimum_tick_size": 0.01}
        assert httpx.get(f"{sim.url}/neg-risk", params={"token_id": token}, timeout=30).json() == {"neg_risk": False}

        matched = await post_limit(c, token, "0.45", "30", "BUY")
        assert matched.status == "matched"
        assert matched.making_amount == Decimal("13.3")
        assert matched.taking_amount == Decimal("30")
        assert len(matched.trade_ids) == 2
        assert len(matched.transactions_hashes) == 2  # present at once: a client need not poll /data/trades
        assert levels((await c.get_order_book(asset_id=token)).asks) == [("0.45", "20")]

        live = await post_limit(c, token, "0.30", "10", "BUY")
        assert live.status == "live"
        assert live.order_id.startswith("0x")
        assert len(live.order_id) == 66
        got = await c.get_order(order_id=live.order_id)
        assert (got.status, got.price, got.original_size, got.side) == ("LIVE", Decimal("0.3"), Decimal("10"), "BUY")
        assert [o.id for o in await items(c.list_open_orders(asset_id=token))] == [live.order_id]
        assert (await c.cancel_order(order_id=live.order_id)).canceled == (live.order_id,)
        assert (await c.get_order(order_id=live.order_id)).status == "CANCELED"
        assert await items(c.list_open_orders()) == []

        cash = await c.get_balance_allowance(asset_type="COLLATERAL")
        assert cash.balance == int((10_000 - 13.3) * 1e6)
        assert cash.allowances
        shares = await c.get_balance_allowance(asset_type="CONDITIONAL", asset_id=token)
        assert shares.balance == 30_000_000
        trades = await items(c.list_account_trades())
        assert {t.id for t in trades} == set(matched.trade_ids)
        assert all(t.transaction_hash for t in trades)

        sold = await c.place_market_order(asset_id=token, side="SELL", shares="30", min_price="0.41", order_type="FOK")
        assert isinstance(sold, AcceptedOrder), sold
        assert sold.status == "matched"
        assert sold.taking_amount == Decimal("12.3")
    finally:
        await c.close()
    positions = httpx.get(f"{sim.url}/_sim/positions", timeout=30).json()
    me = LEGACY_ADDRESS.lower()
    assert positions[me]["positions"][token] == 0
    assert positions[me]["cash"] == pytest.approx(10_000 - 13.3 + 12.3)
    orders = httpx.get(f"{sim.url}/_sim/orders", params={"token_id": token}, timeout=30).json()
    assert [o["status"] for o in orders] == ["MATCHED", "CANCELED", "MATCHED"]
    fill = orders[0]["fills"][0]
    assert fill == {"price": 0.44, "size": 20.0, "ts": fill["ts"], "trade_id": fill["trade_id"], "status": "CONFIRMED"}
    assert fill["trade_id"]


async def test_rejections_are_clear_400s_and_401s(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim)
    put_book(sim, token, [{"price": 0.40, "size": 100}], [{"price": 0.44, "size": 100}])
    c = await eoa_client(sim)
    try:
        with pytest.raises(RequestRejectedError) as small:
            await post_limit(c, token, "0.30", "2", "BUY")
        assert small.value.status == 400
        assert "lower than the minimum: 5" in str(small.value)
        with pytest.raises(RequestRejectedError) as short:
            await post_limit(c, token, "0.30", "10", "SELL")
        assert str(short.value) == ("not enough balance / allowance: the balance is not enough -> "
                                    "balance: 0, order amount: 10000000")  # the venue's full text (P8)
        with pytest.raises(RequestRejectedError) as cross:
            await post_limit(c, token, "0.45", "10", "BUY", post_only=True)
        assert str(cross.value) == "invalid post-only order: order crosses book"
    finally:
        await c.close()
    unauth = httpx.get(f"{sim.url}/data/orders", headers={"POLY_API_KEY": "nope"}, timeout=30)
    assert unauth.status_code == 401
    assert unauth.json() == {"error": "Unauthorized/Invalid api key"}
    deep = httpx.get(f"{sim.url}/data-api/trades", params={"offset": 20_000}, timeout=30)
    assert deep.status_code == 400
    assert "offset" in deep.json()["error"]
    assert httpx.get(f"{sim.url}/book", params={"token_id": "42"}, timeout=30).status_code == 404


async def test_posted_trades_show_in_data_api_and_activity(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim, outcome=1)
    async with httpx.AsyncClient(base_url=sim.url) as http:
        stored = (await http.post("/_sim/trades", json=[
            {"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": 12, "price": 0.42, "timestamp": 1_700_000_000},
            {"proxyWallet": WALLET, "side": "SELL", "asset": token, "size": "12", "price": "0.47"},
        ])).json()
        assert len(stored) == 2
        assert stored[1]["transactionHash"].startswith("0x")
        rows = (await http.get("/data-api/trades", params={"user": WALLET})).json()
        assert [r["side"] for r in rows] == ["SELL", "BUY"]  # newest first
        from services.sim_exchange.feed import TRADE_FIELDS

        assert all(list(r) == list(TRADE_FIELDS) for r in rows)
        assert rows[1]["timestamp"] == 1_700_000_000
        assert rows[1]["outcome"] == "No"
        assert rows[1]["outcomeIndex"] == 1
        markets = (await http.get("/gamma/markets/keyset", params={"clob_token_ids": token})).json()["markets"]
        assert len(markets) == 1
        assert rows[0]["conditionId"] == markets[0]["conditionId"]
        assert json.loads(markets[0]["clobTokenIds"])[1] == token
        assert json.loads(markets[0]["outcomes"]) == ["Yes", "No"]
        act = (await http.get("/data-api/activity", params={"user": WALLET, "sortDirection": "ASC"})).json()
        assert [(a["type"], a["side"], a["usdcSize"]) for a in act] == [("TRADE", "BUY", 5.04), ("TRADE", "SELL", 5.64)]
        assert (await http.get("/data-api/activity")).status_code == 400


async def test_market_socket_book_price_change_trades_and_ping(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim)
    put_book(sim, token, [{"price": 0.40, "size": 100}, {"price": 0.41, "size": 50}], [{"price": 0.44, "size": 20}])
    async with connect(f"ws://127.0.0.1:{sim.port}/ws/market") as ws:
        await ws.send(json.dumps({"assets_ids": [token], "type": "market"}))
        snapshot = await recv_json(ws)
        assert isinstance(snapshot, list)
        assert snapshot[0]["event_type"] == "book"
        assert snapshot[0]["asset_id"] == token
        assert snapshot[0]["bids"][-1] == {"price": "0.41", "size": "50"}
        assert snapshot[0]["asks"][-1]["price"] == "0.44"
        assert snapshot[0]["timestamp"].isdigit()

        put_book(sim, token, [{"price": 0.40, "size": 100}, {"price": 0.42, "size": 7}], [{"price": 0.44, "size": 20}])
        change = await recv_until(ws, lambda e: e["event_type"] == "price_change")
        got = {(e["side"], e["price"]): e for e in change["price_changes"]}
        assert got[("BUY", "0.42")]["size"] == "7"
        assert got[("BUY", "0.41")]["size"] == "0"
        assert got[("BUY", "0.42")]["best_bid"] == "0.42"
        assert got[("BUY", "0.42")]["best_ask"] == "0.44"

        c = await eoa_client(sim)
        try:
            await post_limit(c, token, "0.44", "5", "BUY")
        finally:
            await c.close()
        trade = await recv_until(ws, lambda e: e["event_type"] == "last_trade_price")
        assert (trade["price"], trade["size"], trade["side"]) == ("0.44", "5", "BUY")
        consumed = await recv_until(ws, lambda e: e["event_type"] == "price_change")
        assert consumed["price_changes"][0]["size"] == "15"

        await ws.send("PING")
        texts = [await asyncio.wait_for(ws.recv(), 5) for _ in range(1)]
        while texts[-1] != "PONG" and len(texts) < 20:
            texts.append(await asyncio.wait_for(ws.recv(), 5))
        assert texts[-1] == "PONG"


async def test_resting_order_fills_when_the_price_walks_through_it(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim)
    put_book(sim, token, [{"price": 0.50, "size": 100}], [{"price": 0.52, "size": 100}])
    c = await eoa_client(sim)
    try:
        live = await post_limit(c, token, "0.47", "10", "BUY")
        assert live.status == "live"
        async with httpx.AsyncClient(base_url=sim.url) as http:
            path = {"path": [0.50, 0.48, 0.44], "interval_ms": 50}
            assert (await http.put(f"/_sim/price/{token}", json=path)).is_success

            async def filled() -> bool:
                order = await c.get_order(order_id=live.order_id)
                return order.status == "MATCHED" and order.size_matched == Decimal("10")

            await eventually(filled, timeout=5, what="resting order filled by the price path")
            fills = (await http.get("/_sim/orders")).json()[0]["fills"]
            assert {f["price"] for f in fills} == {0.47}
    finally:
        await c.close()


async def test_faults_429_tick_size_change_drop_and_order_timeout(start_sim: StartSim) -> None:
    sim = start_sim()
    token = first_token(sim)
    async with httpx.AsyncClient(base_url=sim.url) as http:
        fault = {"kind": "http_429", "count": 2, "retry_after": 3, "path_prefix": "/book"}
        assert (await http.post("/_sim/fault", json=fault)).is_success
        for _ in range(2):
            r = await http.get("/book", params={"token_id": token})
            assert r.status_code == 429
            assert r.headers["retry-after"] == "3"
            assert r.json() == {"error": "Too Many Requests"}
        assert (await http.get("/book", params={"token_id": token})).status_code == 200

        async with connect(f"ws://127.0.0.1:{sim.port}/ws/market") as ws:
            await ws.send(json.dumps({"assets_ids": [token], "type": "MARKET"}))
            await recv_json(ws)
            await http.post("/_sim/fault", json={"kind": "tick_size_change", "token_id": token, "new_tick_size": 0.001})
            ev = await recv_until(ws, lambda e: e["event_type"] == "tick_size_change")
            assert (ev["old_tick_size"], ev["new_tick_size"]) == ("0.01", "0.001")
            assert (await http.get("/tick-size", params={"token_id": token})).json() == {"minimum_tick_size": 0.001}
            assert (await http.post("/_sim/fault", json={"kind": "ws_drop"})).json()["closed"] == 1
            await asyncio.wait_for(ws.wait_closed(), 5)

        await http.post("/_sim/fault", json={"kind": "order_timeout_after_place", "count": 1, "delay_sec": 1.5})
        c = await eoa_client(sim)
        try:
            signed = await c.create_limit_order(asset_id=token, price="0.05", size="10", side="BUY")
            started = time.monotonic()
            res = await c.post_order(signed)
            assert time.monotonic() - started >= 1.4
        finally:
            await c.close()
        assert isinstance(res, AcceptedOrder), res
        assert res.status == "live"
        assert [o["id"] for o in (await http.get("/_sim/orders")).json()] == [res.order_id]
        assert (await http.post("/_sim/fault", json={"kind": "nope"})).status_code == 400
