"""The maker worker on the venue's real order lifecycle (issue 16, the worker's side): trades that
settle late or FAIL, a ``delayed`` order answer, the weekly restart and its post-only window.
Against a real sim_exchange process set up to do each (``settle_lag_ms``, ``settle_fail_share``,
the ``delayed`` and ``restart`` faults), the venue room on the official SDK, and real Redis. The
sim's orders and trades are the judge; what the worker wrote is read back from ``pf:fills``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from harness import SimExchangeProcess, eventually
from services.maker_worker.session import TokenSession
from shared.keys import Keys
from shared.messages import Fill, TradeStatus, decode, stable_id
from shared.tickfeed import TickFeed
from tests.integration.test_worker_session import _state, own, snapshot, stop_session
from tests.integration.worker_support import WORKER, Venue, open_venue

StartSim = Callable[..., SimExchangeProcess]


def session(r: aioredis.Redis, keys: Keys, feed: TickFeed, v: Venue, epoch: int, **more: Any) -> TokenSession:
    params = {"maker_strategy": {"drop_pct": 0.04, "profit_pct": 0.05, "order_size": 10, "reject_cooldown_sec": 0.5},
              "execution": {"poll_interval_sec": 0.2, "wait_sec": 1, "order_interval_sec": 0.1,
                            "settle_wait_sec": 20, "settle_poll_sec": 0.2}, **more}
    return TokenSession(r, keys, feed, v.executor, WORKER, v.token, epoch, params)


async def start(r: aioredis.Redis, keys: Keys, s: TokenSession, state: str = "FLAT") -> asyncio.Task[None]:
    await own(r, keys, s.token_id, s.epoch)
    task = asyncio.create_task(s.run())
    await eventually(lambda: _up(r, keys, s, state), timeout=10, what=f"session up, {state}")
    return task


async def _up(r: aioredis.Redis, keys: Keys, s: TokenSession, state: str) -> bool:
    """The session resumed (its snapshot is this epoch's) in ``state``."""
    return await r.hget(keys.session(s.token_id), "epoch") == str(s.epoch) and \
        await _state(r, keys, s.token_id, state) is not None


async def written(r: aioredis.Redis, keys: Keys, token: str) -> tuple[list[Fill], list[TradeStatus]]:
    """The fills and trade statuses the worker wrote for ``token`` on pf:fills, in order."""
    msgs = [decode(f) for _, f in await r.xrange(keys.fills())]
    return ([m for m in msgs if isinstance(m, Fill) and m.token_id == token],
            [m for m in msgs if isinstance(m, TradeStatus) and m.token_id == token])


async def statuses(r: aioredis.Redis, keys: Keys, token: str, trade_id: str) -> list[str]:
    return [t.status for t in (await written(r, keys, token))[1] if t.trade_id == trade_id]


async def settled(r: aioredis.Redis, keys: Keys, token: str, trade_id: str, final: str) -> bool:
    return final in await statuses(r, keys, token, trade_id)


async def test_fills_carry_their_trade_and_a_sell_waits_for_the_buy_to_settle(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    async with open_venue(start_sim, r, keys, {"settle_lag_ms": 3000}) as (v, feed):
        s = session(r, keys, feed, v, 1)
        task = await start(r, keys, s)
        await v.path([0.48, 0.47])  # BUY 10 @ 0.48: matched now, settled 3 s later
        (buy,), _ = await written(r, keys, v.token)
        assert (buy.side, buy.size, buy.status) == ("BUY", 10, "MATCHED")
        await v.path([0.52])  # bid 0.51 >= 0.48 x 1.05 while the BUY's shares are not in the wallet yet
        snap = await eventually(lambda: _sold(r, keys, v.token), timeout=20, what="the profit SELL, once settled")
        assert snap["last_reject"] == {}  # not refused, not given up: it waited for the shares
        fills, _ = await written(r, keys, v.token)
        sell = fills[1]
        assert (sell.side, sell.size, sell.price, sell.status) == ("SELL", 10, 0.51, "MATCHED")
        # each fill names the venue trade it came from, and each trade is followed until it settles
        trades = {o["id"]: o for o in await v.orders()}
        assert {buy.order_id, sell.order_id} == set(trades)
        assert buy.trade_id
        assert sell.trade_id not in ("", buy.trade_id)
        assert buy.id == stable_id("fill", buy.trade_id, buy.order_id)
        assert await statuses(r, keys, v.token, buy.trade_id) == ["MINED", "CONFIRMED"]
        await eventually(lambda: settled(r, keys, v.token, sell.trade_id, "CONFIRMED"), timeout=10,
                         what="the SELL's trade followed to CONFIRMED")
        # the SELL went out only once the BUY's trade had settled (3 s after its match)
        assert trades[sell.order_id]["created_at"] - trades[buy.order_id]["created_at"] >= 2.9
        assert json.loads(await r.hget(keys.session(v.token), "trades") or "[]") == []
        await stop_session(s, task)


async def _sold(r: aioredis.Redis, keys: Keys, token: str) -> dict[str, Any] | None:
    snap = await _state(r, keys, token, "FLAT")
    return snap if snap and snap["sells_done"] == 1 else None


async def test_a_buy_whose_trade_fails_is_voided_and_never_sold(start_sim: StartSim, r: aioredis.Redis,
                                                                keys: Keys) -> None:
    async with open_venue(start_sim, r, keys, {"settle_lag_ms": 1500, "settle_fail_share": 1.0}) as (v, feed):
        s = session(r, keys, feed, v, 1)
        task = await start(r, keys, s)
        await v.path([0.48, 0.47])  # BUY 10 @ 0.48: matched, then RETRYING -> FAILED
        await v.path([0.52])  # a profit SELL is due, on shares that never come
        await eventually(lambda: _voided(r, keys, v.token), timeout=15, what="the BUY voided")
        (buy,), reported = await written(r, keys, v.token)
        assert (buy.side, buy.size, buy.status) == ("BUY", 10, "MATCHED")
        assert [(t.trade_id, t.status) for t in reported] == [(buy.trade_id, "RETRYING"), (buy.trade_id, "FAILED")]
        assert s.position == 0
        assert await v.orders("SELL") == []  # a trade that FAILED was never a position: nothing sold
        positions = (await v.http.get("/_sim/positions")).json()
        assert all(p["positions"].get(v.token, 0) == 0 for p in positions.values())
        await stop_session(s, task)


async def _voided(r: aioredis.Redis, keys: Keys, token: str) -> bool:
    snap = await snapshot(r, keys, token)
    return snap.get("position") == 0 and snap.get("state") == "FLAT" and \
        json.loads(await r.hget(keys.session(token), "trades") or "[]") == []


async def test_the_next_owner_follows_the_trades_a_dead_owner_left_pending(start_sim: StartSim, r: aioredis.Redis,
                                                                          keys: Keys) -> None:
    async with open_venue(start_sim, r, keys, {"settle_lag_ms": 6000}) as (v, feed):
        s1 = session(r, keys, feed, v, 1)
        task1 = await start(r, keys, s1)
        await v.path([0.48, 0.47])
        await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="LONG on a matched BUY")
        task1.cancel()  # the worker dies: no hand-back, no report, the trade still MATCHED
        await asyncio.gather(task1, return_exceptions=True)
        (buy,), _ = await written(r, keys, v.token)
        assert await statuses(r, keys, v.token, buy.trade_id) == []

        s2 = session(r, keys, feed, v, 2)
        task2 = await start(r, keys, s2, "LONG")  # 10 held once the trade settles, though the wallet has 0 yet
        assert s2.position == 10
        fills, _ = await written(r, keys, v.token)
        assert [f.id for f in fills] == [buy.id]  # no "unrecorded" SELL booked against the settled balance
        assert stable_id("reconcile", v.token, 2) not in {f.id for f in fills}
        await eventually(lambda: settled(r, keys, v.token, buy.trade_id, "CONFIRMED"), timeout=15,
                         what="the new owner followed the trade to CONFIRMED")
        confirmed = [t for t in (await written(r, keys, v.token))[1] if t.status == "CONFIRMED"]
        assert [(t.epoch, t.worker) for t in confirmed] == [(2, WORKER)]
        assert s2.position == 10
        await stop_session(s2, task2)


async def test_a_delayed_order_is_awaited_not_sent_again(start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    async with open_venue(start_sim, r, keys) as (v, feed):
        market = (await v.http.get("/_sim/markets")).json()[0]
        resp = await v.http.post("/_sim/fault", json={"kind": "delayed", "condition_id": market["condition_id"],
                                                      "delay_ms": 1500})
        assert resp.status_code == 200, resp.text
        s = session(r, keys, feed, v, 1)
        task = await start(r, keys, s)
        await v.path([0.48, 0.47])  # BUY 10 @ 0.48, answered "delayed", matched 1.5 s later
        await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=15, what="LONG once the delay is over")
        await asyncio.sleep(1.0)  # a second send would be out by now
        buys = await v.orders("BUY")
        assert [(o["price"], o["size_matched"]) for o in buys] == [(0.48, 10)]
        fills, _ = await written(r, keys, v.token)
        assert [(f.side, f.size, f.order_id) for f in fills] == [("BUY", 10, buys[0]["id"])]
        assert s.position == 10
        await stop_session(s, task)


async def test_the_weekly_restart_and_its_post_only_window_are_waited_out(start_sim: StartSim, r: aioredis.Redis,
                                                                          keys: Keys) -> None:
    def waits(restriction: str) -> float:
        return REGISTRY.get_sample_value("polyfleet_worker_venue_window_waits_total",
                                         {"restriction": restriction}) or 0.0

    before = {k: waits(k) for k in ("restarting", "post_only")}
    async with open_venue(start_sim, r, keys) as (v, feed):
        s = session(r, keys, feed, v, 1)
        task = await start(r, keys, s)
        resp = await v.http.post("/_sim/fault", json={"kind": "restart", "seconds": 2, "post_only_seconds": 2})
        assert resp.status_code == 200, resp.text
        await v.path([0.48, 0.47])  # BUY 10 @ 0.48 while the engine restarts (425), then post-only (503)
        await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=30, what="LONG after the windows")
        buys = await v.orders("BUY")
        assert [(o["price"], o["size_matched"]) for o in buys] == [(0.48, 10)]  # no price conceded
        events = [f for _, f in await r.xrange(keys.orders()) if f["token_id"] == v.token]
        assert [e["status"] for e in events] == ["matched"]  # nothing counted as refused
        assert (await snapshot(r, keys, v.token))["last_reject"] == {}
        assert waits("restarting") > before["restarting"]
        assert waits("post_only") > before["post_only"]
        await stop_session(s, task)


async def test_a_taker_fill_books_the_markets_fee_the_trade_record_does_not_say(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    """The venue charges a taker's fee out of the pUSD balance and reports ``fee_rate_bps`` 0 on the
    trade (docs/venue.md F1): the worker books it from the market's schedule (here read from
    ``/clob-markets``, the START params having none) and the fill's time is the trade's match time."""
    async with open_venue(start_sim, r, keys, {"fee_rate": 0.05, "fee_exponent": 1.0}) as (v, feed):
        market = (await v.http.get("/_sim/markets")).json()[0]
        wallet = v.executor.venue.account.wallet.lower()
        cash_before = (await v.http.get("/_sim/positions", params={"address": wallet})).json()[wallet]["cash"]
        s = session(r, keys, feed, v, 1)
        s.facts = dataclasses.replace(s.facts, condition_id=market["condition_id"])
        task = await start(r, keys, s)
        await v.path([0.48, 0.47])  # BUY 10 @ 0.48, as taker
        (buy,), _ = await written(r, keys, v.token)
        assert (buy.side, buy.size, buy.price) == ("BUY", 10, 0.48)
        assert buy.fee == round(10 * 0.05 * 0.48 * 0.52, 5) == 0.1248
        (order,) = await v.orders("BUY")
        assert buy.ts_event == int(order["fills"][0]["ts"]) * 1000  # the match time (whole seconds), not the booking
        snap = await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="LONG")
        assert snap["fees"] == buy.fee
        assert snap["realized_pnl"] == -buy.fee
        # the sim charged the same fee from the balance: the fill is what the venue took
        cash = (await v.http.get("/_sim/positions", params={"address": wallet})).json()[wallet]["cash"]
        assert round(cash_before - cash, 6) == round(10 * 0.48 + buy.fee, 6)
        await stop_session(s, task)


async def test_a_partial_exit_is_done_once_across_owners_and_one_asked_of_a_dead_owner_is_not_lost(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    """Each partial exit is named by its signal and rides in every START (services/maker_worker/trims.py):
    the first owner does it once; the next owner, started with the same list, does not do it again,
    and does a new one."""
    async with open_venue(start_sim, r, keys) as (v, feed):
        wallet = v.executor.venue.account.wallet.lower()
        await v.http.put(f"/_sim/accounts/{wallet}", json={"positions": {v.token: 20}})
        trims = {"trims": [["sig-a", 0.5]]}  # asked of an owner that died before doing it
        first = session(r, keys, feed, v, 1, **trims)
        task = await start(r, keys, first, "LONG")
        await eventually(lambda: _sold_shares(v, 10), timeout=15, what="the trim's SELL of 10 (half of 20)")
        await stop_session(first, task)
        # the next owner gets the same START params: the trim is done already, not again
        second = session(r, keys, feed, v, 2, **trims)
        task = await start(r, keys, second, "LONG")
        second.request_trim(0.5, "sig-a")  # the command read again: still done
        second.request_trim(0.5, "sig-b")  # a new one: half of the 10 left
        await eventually(lambda: _sold_shares(v, 15), timeout=15, what="the new trim's SELL of 5")
        await stop_session(second, task)
        assert sum(o["size_matched"] for o in await v.orders("SELL")) == 15
        done = json.loads(await r.hget(keys.session(v.token), "trims") or "{}")
        assert done == {"pending": [], "done": ["sig-a", "sig-b"]}


async def _sold_shares(v: Venue, shares: float) -> bool:
    return sum(o["size_matched"] for o in await v.orders("SELL")) >= shares


async def test_a_copy_let_through_without_a_book_never_buys_above_the_leaders_limit(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    """The leader bought at 0.40 with a 300 bps limit (0.412): the strategy's BUY at 0.48 is refused
    in the session (no order reaches the venue); once the ask is back within the limit it buys."""
    async with open_venue(start_sim, r, keys) as (v, feed):
        s = session(r, keys, feed, v, 1, copy={"account": "0x" + "c" * 40, "guard": "no book",
                                                "leader_price": 0.40, "max_slippage_bps": 300})
        task = await start(r, keys, s)
        await v.path([0.48, 0.47])  # a 4 % drop: the strategy wants to BUY at the 0.48 ask
        snap = await eventually(lambda: _rejected(r, keys, v.token), timeout=20,  # the snapshot: every 5 s
                                what="the BUY refused by the cap")
        assert "copy guard: BUY at 0.4800" in snap["last_reject"]["reason"]
        assert await v.orders("BUY") == []  # nothing was sent
        await v.path([0.44, 0.42, 0.41, 0.40, 0.39])  # falls back within 0.412: a BUY goes out, at or under it
        await eventually(lambda: v.orders("BUY"), timeout=15, what="a BUY within the limit")
        assert all(o["price"] <= 0.412 for o in await v.orders("BUY"))
        await stop_session(s, task)


async def _rejected(r: aioredis.Redis, keys: Keys, token: str) -> dict[str, Any] | None:
    snap = await _state(r, keys, token, "FLAT")
    return snap if snap and "copy guard" in (snap.get("last_reject") or {}).get("reason", "") else None


async def test_a_venue_position_no_fill_recorded_is_booked_when_the_session_reconciles(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    """A trade whose fill never reached pf:fills (its session fenced or killed between the trade and
    the record, the trade still unsettled when the next owner resumed: soak finding) shows when the
    session next takes the venue's word: the difference is booked as a fill, not only counted."""
    async with open_venue(start_sim, r, keys) as (v, feed):
        wallet = v.executor.venue.account.wallet.lower()
        await v.http.put(f"/_sim/accounts/{wallet}", json={"positions": {v.token: 20}})
        s = session(r, keys, feed, v, 1)
        task = await start(r, keys, s, "LONG")  # the resume books the 20 it finds
        await v.http.put(f"/_sim/accounts/{wallet}", json={"positions": {v.token: 30}})  # 10 no fill says
        s.exit_requested.set()  # the liquidation takes the venue's word first
        await asyncio.wait_for(task, 30)
        fills, _ = await written(r, keys, v.token)
        reconciled = {f.id: (f.side, f.size) for f in fills if f.order_id == ""}
        assert reconciled == {stable_id("reconcile", v.token, 1): ("BUY", 20.0),
                              stable_id("reconcile", v.token, 1, "1"): ("BUY", 10.0)}
        sold = sum(f.size for f in fills if f.side == "SELL")
        assert sold == 30  # everything the venue held, and the books say so
        assert sum(f.size if f.side == "BUY" else -f.size for f in fills) == 0


async def test_a_running_session_with_nothing_pending_books_what_the_venue_holds_beyond_its_fills(
        start_sim: StartSim, r: aioredis.Redis, keys: Keys) -> None:
    """The periodic reconcile (execution.reconcile_sec): a session that keeps trading finds a lost
    fill too, not only one that liquidates."""
    async with open_venue(start_sim, r, keys) as (v, feed):
        wallet = v.executor.venue.account.wallet.lower()
        await v.http.put(f"/_sim/accounts/{wallet}", json={"positions": {v.token: 20}})
        s = session(r, keys, feed, v, 1)
        s.execution = s.execution.model_copy(update={"reconcile_sec": 0.5})
        task = await start(r, keys, s, "LONG")
        await v.http.put(f"/_sim/accounts/{wallet}", json={"positions": {v.token: 30}})  # 10 no fill says

        async def booked() -> list[Fill]:
            return [f for f in (await written(r, keys, v.token))[0] if f.id == stable_id("reconcile", v.token, 1, "1")]

        (fill,) = await eventually(booked, timeout=15, what="the periodic reconcile's fill")
        assert (fill.side, fill.size) == ("BUY", 10.0)
        assert s.position == 30
        await stop_session(s, task)
        assert len(await booked()) == 1  # once: the next reconciles find nothing to book
