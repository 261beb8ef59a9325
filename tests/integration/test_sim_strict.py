"""The strict sim over real HTTP: it refuses what the venue refuses and settles when the venue settles.

Driven by the official SDK ``polymarket`` with an EOA wallet: its public flows (orders, heartbeats,
rate-limit headers, trading restrictions, the user stream, settlement waits) and, for amounts its
builders would not make, its own signing path on amounts the test chose (sim_sdk_support.exact_order).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account import Account
from polymarket import AsyncSecureClient
from polymarket.errors import (
    OrderHeartbeatMismatchError,
    RateLimitError,
    RequestRejectedError,
    TransactionFailedError,
)
from polymarket.models.clob.order_response import AcceptedOrder
from polymarket.rate_limit import RateLimitUpdate
from polymarket.streams import UserSpec

from harness import SimExchangeProcess, eventually
from shared.config import SIM_PRIVATE_KEY
from shared.venue.environment import VenueEnvironment
from tests.integration.sim_sdk_support import exact_order, post_limit

StartSim = Callable[..., SimExchangeProcess]
EOA = Account.from_key(SIM_PRIVATE_KEY).address
P3 = ("invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals, "
      "taker amount a max of 4 decimals")


# ---- helpers ------------------------------------------------------------------------------------
def markets(sim: SimExchangeProcess) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = httpx.get(f"{sim.url}/_sim/markets", timeout=30).json()
    return got


def token_where(sim: SimExchangeProcess, tick: float, min_size: float) -> str:
    for m in markets(sim):
        book = httpx.get(f"{sim.url}/book", params={"token_id": m["tokens"][0]["token_id"]}, timeout=30).json()
        if float(book["tick_size"]) == tick and float(book["min_order_size"]) == min_size:
            return str(m["tokens"][0]["token_id"])
    raise AssertionError(f"no market with tick {tick} and minimum {min_size}")


def put_book(sim: SimExchangeProcess, token: str, bids: list[Any], asks: list[Any]) -> None:
    resp = httpx.put(f"{sim.url}/_sim/book/{token}", json={"bids": bids, "asks": asks}, timeout=30)
    assert resp.status_code == 200, resp.text


def fault(sim: SimExchangeProcess, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{sim.url}/_sim/fault", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    got: dict[str, Any] = resp.json()
    return got


def sim_orders(sim: SimExchangeProcess) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in httpx.get(f"{sim.url}/_sim/orders", timeout=30).json()}


async def sdk_client(sim: SimExchangeProcess, nonce: int = 0,
                     on_rate_limit_update: Callable[[RateLimitUpdate], None] | None = None) -> AsyncSecureClient:
    environment = VenueEnvironment.from_json("sim", httpx.get(f"{sim.url}/_sim/environment", timeout=30).json()).to_sdk()
    return await AsyncSecureClient.create(private_key=SIM_PRIVATE_KEY, wallet=EOA, environment=environment,
                                          nonce=nonce, on_rate_limit_update=on_rate_limit_update)


async def items(pages: Any) -> list[Any]:
    """Every item of a paginated SDK listing (it yields pages)."""
    return [item async for page in pages for item in page.items]


# ---- refusals -----------------------------------------------------------------------------------
async def refused(send: Awaitable[Any]) -> RequestRejectedError:
    with pytest.raises(RequestRejectedError) as exc:
        await send
    return exc.value


async def test_order_refusals_match_the_venues_rules_and_texts(start_sim: StartSim) -> None:
    sim = start_sim()
    plain = markets(sim)[0]["tokens"][0]["token_id"]
    fine_large = token_where(sim, 0.001, 15.0)  # markets with tick 0.001 and minimum 15 exist beside the plain one
    put_book(sim, plain, [[0.55, 200]], [[0.57, 200]])
    put_book(sim, fine_large, [[0.450, 200]], [[0.455, 200]])
    c = await sdk_client(sim)
    try:
        # P3: $1 at 0.57 built with limit maths (1.76 shares, 1.0032 collateral) is refused as FAK ...
        fak = await refused(c.post_order(await exact_order(sim, c, plain, "BUY", 1_003_200, 1_760_000, "FAK")))
        assert (fak.status, str(fak)) == (400, P3)
        # ... and accepted with market maths ($1.00 for 1.6666 shares, at most 0.60 each); $1 is enough for a
        # marketable order
        ok = await c.post_order(await exact_order(sim, c, plain, "BUY", 1_000_000, 1_666_600, "FAK"))
        assert isinstance(ok, AcceptedOrder), ok
        assert (ok.status, ok.taking_amount) == ("matched", Decimal("1.6666"))  # filled at 0.57

        # P2: the market's own minimum (15) for a resting order; 10 shares rest on the plain market (5)
        small = await refused(post_limit(c, fine_large, "0.449", "10", "BUY"))
        assert str(small).endswith("is invalid. Size (10) lower than the minimum: 15")
        assert (await post_limit(c, fine_large, "0.449", "15", "BUY")).status == "live"
        assert (await post_limit(c, plain, "0.50", "10", "BUY")).status == "live"
        # P5: a crossing post-only order
        cross = await refused(post_limit(c, fine_large, "0.455", "15", "BUY", post_only=True))
        assert str(cross) == "invalid post-only order: order crosses book"
        # P8: balance, with what open orders hold (15 x 0.449 + 10 x 0.50; the FAK's trade is settled)
        httpx.put(f"{sim.url}/_sim/accounts/{EOA}", json={"cash": 15}, timeout=30)
        short = await refused(post_limit(c, plain, "0.50", "10", "BUY"))
        assert str(short) == ("not enough balance / allowance: the balance is not enough -> balance: 15000000, "
                              "sum of matched orders: 11735000, order amount (inc. fees): 5000000")
        # P1: a price between the ticks: signed on the 0.001 grid, posted after the market went to 0.01 (M3)
        httpx.put(f"{sim.url}/_sim/accounts/{EOA}", json={"cash": 1000}, timeout=30)
        between = await c.create_limit_order(asset_id=fine_large, price="0.447", size="20", side="BUY")
        fault(sim, kind="tick_size_change", token_id=fine_large, new_tick_size=0.01)
        off = await refused(c.post_order(between))
        assert str(off).endswith("is invalid. Price (0.447) breaks minimum tick size rule: 0.01")
        # P8, the allowance half: an account that allowed the exchange $3 of collateral (no shares at all)
        httpx.put(f"{sim.url}/_sim/accounts/{EOA}", json={"allowances": {"COLLATERAL": 3, "CONDITIONAL": 0},
                                                          "positions": {plain: 20}}, timeout=30)
        allowed = (await c.get_balance_allowance(asset_type="COLLATERAL")).allowances
        assert set(allowed.values()) == {3_000_000}
        no_allowance = await refused(post_limit(c, plain, "0.50", "10", "BUY"))
        assert str(no_allowance) == ("not enough balance / allowance: the allowance is not enough -> "
                                     "allowance: 3000000, order amount: 5000000")
        no_approval = await refused(post_limit(c, plain, "0.60", "10", "SELL"))
        assert "the allowance is not enough" in str(no_approval)
        assert (await post_limit(c, plain, "0.50", "6", "BUY")).status == "live"
        httpx.put(f"{sim.url}/_sim/accounts/{EOA}", json={"allowances": {"COLLATERAL": None, "CONDITIONAL": None}}, timeout=30)
        # an asset the venue does not list (signed without a lookup)
        bogus = str(int(plain) ^ (1 << 100))
        unknown = await refused(c.post_order(await exact_order(sim, c, bogus, "BUY", 5_000_000, 10_000_000)))
        assert unknown.status == 400
        assert "unknown token id" in str(unknown)
    finally:
        await c.close()


# ---- settlement ---------------------------------------------------------------------------------
async def test_trades_settle_late_and_the_new_shares_wait_for_it(start_sim: StartSim) -> None:
    sim = start_sim({"sim_exchange": {"settle_lag_ms": 6000}})
    token = markets(sim)[0]["tokens"][0]["token_id"]
    put_book(sim, token, [[0.48, 100]], [[0.50, 100]])
    client = await sdk_client(sim)
    events: list[Any] = []

    async def listen() -> None:
        async with await client.subscribe(UserSpec()) as stream:
            async for ev in stream:
                events.append(ev)

    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(0.5)  # subscribed
        placed = await client.place_market_order(asset_id=token, side="BUY", amount=5, order_type="FOK")
        assert (placed.status, len(placed.trade_ids), placed.transactions_hashes) == ("matched", 1, ())  # venue.md T3
        (trade,) = await items(client.list_account_trades(id=placed.trade_ids[0]))
        assert (trade.status, trade.transaction_hash) == ("MATCHED", None)
        held = await client.get_balance_allowance(asset_type="CONDITIONAL", asset_id=token)
        assert held.balance == 0  # matched is not settled: the shares are not there yet
        with pytest.raises(RequestRejectedError) as early:  # selling them is refused until CONFIRMED
            await client.place_limit_order(asset_id=token, price="0.48", size="10", side="SELL")
        assert "not enough balance / allowance" in str(early.value)
        async with httpx.AsyncClient(base_url=sim.url) as http:
            assert (await http.get("/data-api/trades", params={"user": EOA})).json() == []  # not on chain yet
            hashes = await client.wait_for_order_fill_settlement(placed, timeout_s=20)
            assert len(hashes) == 1
            rows = (await http.get("/data-api/trades", params={"user": EOA})).json()
            assert [r["transactionHash"] for r in rows] == list(hashes)  # indexed once mined

        async def confirmed() -> bool:
            (t,) = await items(client.list_account_trades(id=placed.trade_ids[0]))
            return t.status == "CONFIRMED"

        await eventually(confirmed, timeout=15, what="CONFIRMED")
        shares = (await client.get_balance_allowance(asset_type="CONDITIONAL", asset_id=token)).balance
        assert shares == 10_000_000
        sold = await client.place_limit_order(asset_id=token, price="0.48", size="10", side="SELL")
        assert sold.status == "matched"
        await eventually(lambda: _has(events, placed.trade_ids[0], "CONFIRMED"), timeout=10, what="user stream")
    finally:
        listener.cancel()
        await client.close()
    mine = [e.payload for e in events if e.type == "trade" and e.payload.id == placed.trade_ids[0]]
    assert [p.status for p in mine] == ["MATCHED", "MINED", "CONFIRMED"]
    assert not mine[0].transaction_hash  # no transaction before it is sent
    assert mine[1].transaction_hash == mine[2].transaction_hash == hashes[0]
    orders = [e.payload for e in events if e.type == "order" and e.payload.id == placed.order_id]
    assert orders[0].order_event_type == "PLACEMENT"


async def _has(events: list[Any], trade_id: str, status: str) -> bool:
    return any(e.type == "trade" and e.payload.id == trade_id and e.payload.status == status for e in events)


async def test_a_failed_trade_is_undone(start_sim: StartSim) -> None:
    sim = start_sim({"sim_exchange": {"settle_lag_ms": 1000, "settle_fail_share": 1.0}})
    token = markets(sim)[0]["tokens"][0]["token_id"]
    put_book(sim, token, [[0.48, 100]], [[0.50, 100]])
    async with httpx.AsyncClient(base_url=sim.url) as http:
        await http.put(f"/_sim/accounts/{EOA}", json={"cash": 100, "positions": {token: 30}})
    client = await sdk_client(sim)
    try:
        bought = await client.place_market_order(asset_id=token, side="BUY", amount=5, order_type="FOK")
        sold = await client.place_limit_order(asset_id=token, price="0.48", size="30", side="SELL")
        for accepted in (bought, sold):
            with pytest.raises(TransactionFailedError):
                await client.wait_for_order_fill_settlement(accepted, timeout_s=15)
        trades = await items(client.list_account_trades(asset_id=token))
        assert {t.status for t in trades} == {"FAILED"}
        admin = [f for oid in (bought.order_id, sold.order_id) for f in sim_orders(sim)[oid]["fills"]]
        assert {(f["trade_id"], f["status"]) for f in admin} == {(t.id, "FAILED") for t in trades}  # the soak's view
        cash = await client.get_balance_allowance(asset_type="COLLATERAL")
        shares = await client.get_balance_allowance(asset_type="CONDITIONAL", asset_id=token)
        assert (cash.balance, shares.balance) == (100_000_000, 30_000_000)  # nothing moved: the seller keeps its shares
        again = await client.place_limit_order(asset_id=token, price="0.48", size="30", side="SELL")
        assert again.status == "matched"  # and can sell them again: the failed trade holds nothing
    finally:
        await client.close()
    async with httpx.AsyncClient(base_url=sim.url) as http:
        assert (await http.get("/data-api/trades", params={"user": EOA})).json() == []  # never mined


# ---- heartbeats ---------------------------------------------------------------------------------
async def test_heartbeats_cancel_the_keys_orders_when_they_stop(start_sim: StartSim) -> None:
    sim = start_sim({"sim_exchange": {"heartbeat_timeout_ms": 1500}})
    token = markets(sim)[0]["tokens"][0]["token_id"]
    put_book(sim, token, [[0.40, 100]], [[0.60, 100]])
    beating, silent = await sdk_client(sim), await sdk_client(sim, nonce=1)  # two API keys
    try:
        first = await beating.send_order_heartbeat()
        assert first.heartbeat_id
        with pytest.raises(OrderHeartbeatMismatchError) as stale:
            await beating.send_order_heartbeat(heartbeat_id="not-the-last-one")
        assert stale.value.heartbeat_id == first.heartbeat_id
        kept = await beating.place_limit_order(asset_id=token, price="0.30", size="10", side="BUY")
        by_user = await beating.place_limit_order(asset_id=token, price="0.31", size="10", side="BUY")
        other = await silent.place_limit_order(asset_id=token, price="0.32", size="10", side="BUY")
        await beating.cancel_order(order_id=by_user.order_id)
        beat = first.heartbeat_id
        for _ in range(4):  # kept alive past the deadline while it beats
            await asyncio.sleep(0.5)
            beat = (await beating.send_order_heartbeat(heartbeat_id=beat)).heartbeat_id
        assert sim_orders(sim)[kept.order_id]["status"] == "LIVE"

        async def cancelled() -> bool:
            return sim_orders(sim)[kept.order_id]["status"] == "CANCELED"

        await eventually(cancelled, timeout=10, what="heartbeat expiry")  # it stopped
        got = sim_orders(sim)
        assert got[kept.order_id]["cancel_reason"] == "heartbeat_expired"
        assert got[by_user.order_id]["cancel_reason"] == "user"
        assert (got[other.order_id]["status"], got[other.order_id]["cancel_reason"]) == ("LIVE", "")  # another key
        assert (await beating.send_order_heartbeat()).heartbeat_id  # the registration is gone: "" again
    finally:
        await beating.close()
        await silent.close()


# ---- restart, post-only window, rate limits, delayed markets ------------------------------------
async def test_the_weekly_restart_then_its_post_only_window(start_sim: StartSim) -> None:
    sim = start_sim()
    token = markets(sim)[0]["tokens"][0]["token_id"]
    put_book(sim, token, [[0.40, 100]], [[0.60, 100]])
    client = await sdk_client(sim)
    try:
        resting = await client.place_limit_order(asset_id=token, price="0.30", size="10", side="BUY")
        window = fault(sim, kind="restart", seconds=1.5, post_only_seconds=2.0)
        with pytest.raises(RequestRejectedError) as down:
            await client.get_order_book(asset_id=token)
        assert (down.value.status, down.value.restriction) == (425, "restarting")
        async with httpx.AsyncClient(base_url=sim.url) as http:
            assert (await http.get("/gamma/markets/500000")).status_code == 200  # not the CLOB
        while time.time() < window["down_until"]:
            await asyncio.sleep(0.1)
        with pytest.raises(RequestRejectedError) as plain:
            await client.place_limit_order(asset_id=token, price="0.31", size="10", side="BUY")
        assert (plain.value.status, plain.value.restriction) == (503, "post_only")
        batch = await client.post_orders([
            await client.create_limit_order(asset_id=token, price="0.31", size="10", side="BUY"),
            await client.create_limit_order(asset_id=token, price="0.31", size="10", side="BUY", post_only=True)])
        assert batch[0].code == "post_only_mode"  # refused in the batch, per order
        maker = batch[1]
        assert maker.status == "live"  # post-only orders and cancels go through
        assert (await client.cancel_order(order_id=maker.order_id)).canceled == (maker.order_id,)
        while time.time() < window["post_only_until"]:
            await asyncio.sleep(0.1)
        assert (await client.place_limit_order(asset_id=token, price="0.32", size="10", side="BUY")).status == "live"
        assert sim_orders(sim)[resting.order_id]["status"] == "LIVE"  # the engine reloads its books
        lost = fault(sim, kind="restart", seconds=0.2, post_only_seconds=0, cancel_resting=True)
        assert lost["cancelled"] == 2
        assert sim_orders(sim)[resting.order_id]["cancel_reason"] == "restart"
    finally:
        await client.close()


async def test_per_signer_rate_limits_report_their_state_and_refuse_when_empty(start_sim: StartSim) -> None:
    sim = start_sim()
    token = markets(sim)[0]["tokens"][0]["token_id"]
    put_book(sim, token, [[0.40, 100]], [[0.60, 100]])
    seen: list[RateLimitUpdate] = []
    client = await sdk_client(sim, on_rate_limit_update=seen.append)
    try:
        fault(sim, kind="rate_limit", order_burst=3, order_rate=0.5)
        placed = [await client.place_limit_order(asset_id=token, price=f"0.3{i}", size="10", side="BUY")
                  for i in range(3)]
        assert [u.remaining for u in seen[-3:]] == [2, 1, 0]
        assert seen[-1].tier == "standard"
        assert seen[-1].warning is False
        assert seen[-1].reset is not None
        assert seen[-1].reset > time.time()
        with pytest.raises(RateLimitError) as limited:
            await client.place_limit_order(asset_id=token, price="0.35", size="10", side="BUY")
        assert limited.value.retry_after == 2
        assert (await client.cancel_order(order_id=placed[0].order_id)).canceled  # its own bucket
        before = len(seen)
        assert len(await items(client.list_open_orders())) == 2  # reads carry the headers too
        assert len(seen) == before + 1
        assert seen[-1].remaining is not None
    finally:
        await client.close()


async def test_a_delayed_market_answers_delayed_then_matches(start_sim: StartSim) -> None:
    sim = start_sim()
    m = markets(sim)[0]
    token = m["tokens"][0]["token_id"]
    put_book(sim, token, [[0.48, 100]], [[0.50, 100]])
    fault(sim, kind="delayed", condition_id=m["condition_id"], delay_ms=1000)
    client = await sdk_client(sim)
    try:
        resting = await client.place_limit_order(asset_id=token, price="0.40", size="10", side="BUY")
        assert resting.status == "live"  # not marketable: not delayed
        taken = await client.place_market_order(asset_id=token, side="BUY", amount=5, order_type="FAK")
        assert (taken.status, taken.taking_amount, taken.trade_ids) == ("delayed", Decimal(0), ())
        assert sim_orders(sim)[taken.order_id]["status"] == "DELAYED"

        async def matched() -> bool:
            return (await client.get_order(order_id=taken.order_id)).status == "MATCHED"

        await eventually(matched, timeout=10, what="the delayed order matched")
        assert (await client.get_order(order_id=taken.order_id)).size_matched == Decimal("10")
    finally:
        await client.close()
