"""The execution layer against sim_exchange (real process, the venue room on the official SDK, real Redis):
balance shrink-and-retry, a timeout after placement, "Duplicated", the kill switch, a tick size
change, incremental drops, and the REST fallback when ticks go stale (B6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from harness import eventually
from services.maker_worker.execution import Placement
from services.maker_worker.order_watch import Matched
from services.maker_worker.restbook import RestBooks
from services.maker_worker.session import Fenced, TokenSession
from shared.config import OrderbookSection
from shared.keys import Keys
from shared.tickfeed import TickFeed
from tests.integration import test_worker_session as base
from tests.integration.test_worker_session import WORKER, Venue, _state, own, snapshot, stop_session

sim_venue = base.venue  # the worker-session fixture, registered here as "sim_venue"


def session(r: aioredis.Redis, keys: Keys, feed: TickFeed, v: Venue, epoch: int, books: RestBooks | None = None,
            ms: dict[str, Any] | None = None, execution: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None) -> TokenSession:
    params = {"maker_strategy": {"drop_pct": 0.04, "profit_pct": 0.05, "order_size": 10, "reject_cooldown_sec": 0.5,
                                 **(ms or {})},
              "execution": {"poll_interval_sec": 0.2, "wait_sec": 1, "order_interval_sec": 0.1,
                            **(execution or {})}, **(extra or {})}
    return TokenSession(r, keys, feed, v.executor, WORKER, v.token, epoch, params, books)


async def start(r: aioredis.Redis, keys: Keys, s: TokenSession) -> asyncio.Task[None]:
    await own(r, keys, s.token_id, s.epoch)
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, s.token_id, "FLAT"), timeout=10, what="session up")
    return task


async def order_events(r: aioredis.Redis, keys: Keys, token: str) -> list[dict[str, str]]:
    return [f for _, f in await r.xrange(keys.orders()) if f["token_id"] == token]


async def test_balance_reject_shrinks_to_the_cash_and_retries(sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                              keys: Keys) -> None:
    v, feed = sim_venue
    address = v.executor.venue.account.wallet
    resp = await v.http.put(f"/_sim/accounts/{address}", json={"cash": 3.0})
    assert resp.status_code == 200, resp.text
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])  # ask 0.48 <= 0.51 x 0.96: BUY 10 @ 0.48 = $4.80 > $3 cash
    snap = await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=15, what="LONG after the shrink")
    buys = await v.orders("BUY")
    assert [(o["size"], o["size_matched"]) for o in buys] == [(6.12, 6.12)]  # 3 / 0.48 x 0.98
    assert snap["position"] == pytest.approx(6.12)
    statuses = [o["status"] for o in await order_events(r, keys, v.token)]
    assert statuses[:2] == ["rejected", "matched"]
    events = await order_events(r, keys, v.token)
    assert "not enough balance" in events[0]["reason"]
    await stop_session(s, task)


async def test_a_timeout_after_placement_is_reconciled_not_sent_again(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    v, feed = sim_venue
    # The order is stored and matched, then its HTTP answer stalls past the client's 10 s read timeout.
    resp = await v.http.post("/_sim/fault", json={"kind": "order_timeout_after_place", "count": 1, "delay_sec": 11})
    assert resp.status_code == 200
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])
    snap = await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=25, what="LONG after the timeout")
    assert snap["position"] == pytest.approx(10)
    await eventually(lambda: _answered(v), timeout=30, what="the stalled answer sent")  # nothing else must be sent
    buys = await v.orders("BUY")
    assert len(buys) == 1
    assert buys[0]["size_matched"] == 10
    fills = [f for _, f in await r.xrange(keys.fills()) if f["token_id"] == v.token]
    assert [(f["side"], float(f["size"])) for f in fills] == [("BUY", 10.0)]
    events = await order_events(r, keys, v.token)
    assert len({e["intent_id"] for e in events}) == 1
    # the order filled at once, so no open order could name it: the id comes from the order's own
    # hash, looked up at the venue, and the order and fill records carry the venue's id
    assert {e["order_id"] for e in events} == {buys[0]["id"]}
    assert fills[0]["order_id"] == buys[0]["id"]
    await stop_session(s, task)


async def test_duplicated_counts_as_placed(sim_venue: tuple[Venue, TickFeed]) -> None:
    v, _ = sim_venue
    signed = await v.executor.sign(v.token, "BUY", 0.40, 5, 0.01, "GTC")
    first = await v.executor.post_signed(v.token, signed)
    again = await v.executor.post_signed(v.token, signed)  # a retried POST of the same order
    assert first.ok
    assert first.status == "live"
    assert again.ok  # "Duplicated": the venue has it, so it was placed
    assert "Duplicated" in again.error
    assert again.order_id == first.order_id  # the id is the order's hash, known without the venue's answer
    assert len(await v.orders("BUY")) == 1


async def test_reduce_only_kill_switch_blocks_buys_until_lifted(sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                                keys: Keys) -> None:
    v, feed = sim_venue
    await r.set(keys.halt(), "reduce_only")
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])
    snap = await snapshot(r, keys, v.token)
    assert "kill switch reduce_only" in snap["last_reject"]["reason"]
    assert await v.orders() == []
    await r.delete(keys.halt())
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="BUY once the switch is lifted")
    assert len(await v.orders("BUY")) == 1
    await stop_session(s, task)


async def test_a_tick_size_change_takes_effect_on_the_next_order(sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                                 keys: Keys) -> None:
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    resp = await v.http.post("/_sim/fault", json={"kind": "tick_size_change", "token_id": v.token,
                                                  "new_tick_size": 0.001})
    assert resp.status_code == 200
    await v.path([0.49, 0.475])  # ask 0.476: only valid on the new grid
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="LONG on the 0.001 grid")
    buys = await v.orders("BUY")
    assert [(o["price"], o["size_matched"]) for o in buys] == [(0.476, 10)]
    await stop_session(s, task)


async def test_incremental_drop_raises_the_next_threshold(sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                          keys: Keys) -> None:
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1, ms={"enable_incremental_drop_pct": True, "incremental_drop_pct_step": 0.04,
                                         "incremental_drop_pct_cap": 0.2})
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])  # d = 0.04: BUY @ 0.48
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="first BUY")
    await v.path([0.50, 0.52])  # bid 0.51 >= 0.504: SELL; window high now 0.53
    snap = await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="first SELL")
    assert snap["effective_drop_pct"] == pytest.approx(0.08)
    await v.path([0.49])  # ask 0.50 <= 0.53 x 0.96 would buy at d = 0.04, not at 0.08 (0.4876)
    assert len(await v.orders("BUY")) == 1
    await v.path([0.47])  # ask 0.48 <= 0.4876: BUY
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="second BUY")
    assert [o["price"] for o in await v.orders("BUY")] == [0.48, 0.48]
    await stop_session(s, task)


async def test_stale_ticks_fall_back_to_throttled_rest_polling_and_back(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """The fixture's tick publisher stands in for the gateway here; the gateway-process version of
    this test is tests/e2e/test_worker_failover.py."""
    v, feed = sim_venue
    fetched: list[str] = []

    async def fetch(token: str) -> Any:
        fetched.append(token)
        return (await v.http.get("/book", params={"token_id": token})).json()

    books = RestBooks(fetch, OrderbookSection(refresh_sec=0.3, max_fetch_per_loop=1, cache_max_items=10))
    stop = asyncio.Event()
    poller = asyncio.create_task(books.run(stop, lambda: 0))
    await r.set(keys.gw_alive(), "test-gateway", px=60_000)  # what a live gateway keeps refreshed
    await eventually(lambda: _is(feed.gateway_alive), timeout=5, what="feed sees the gateway")
    s = session(r, keys, feed, v, 1, books=books)
    task = await start(r, keys, s)
    assert s.source == "ticks"
    await r.delete(keys.gw_alive())  # the gateway is gone (its liveness key expired)
    await eventually(lambda: _is(s.source == "rest"), timeout=5, what="REST fallback")
    await v.path([0.48, 0.47], interval_ms=400)
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="BUY on REST books")
    loops = books.loops
    assert len(fetched) <= loops  # max_fetch_per_loop = 1
    await r.set(keys.gw_alive(), "test-gateway", px=60_000)
    await eventually(lambda: _is(s.source == "ticks"), timeout=5, what="back to ticks")
    n, loops = len(fetched), books.loops
    await eventually(lambda: _is(books.loops >= loops + 3), timeout=10, what="three more poll loops")
    assert len(fetched) == n  # nothing wanted: no polling
    stop.set()
    await poller
    await stop_session(s, task)


async def _is(value: bool) -> bool:
    return value


async def _answered(v: Venue) -> bool:
    resp = await v.http.post("/_sim/fault", json={"kind": "order_timeout_after_place", "count": 0})
    return bool(resp.json()["answered"] >= 1)


async def test_a_throttled_venue_does_not_abandon_a_liquidation(sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                                keys: Keys) -> None:
    """The soak found sessions that gave up an EXIT over one 429 on the position read: the read is
    retried after a pause, and the exit completes."""
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=15, what="LONG")
    resp = await v.http.post("/_sim/fault", json={"kind": "http_429", "count": 3, "retry_after": 0.2,
                                                  "path_prefix": "/balance-allowance"})
    assert resp.status_code == 200, resp.text
    s.exit_requested.set()
    await asyncio.wait_for(task, timeout=40)
    sells = [o for o in await v.orders("SELL") if o["size_matched"] > 0]
    assert sum(o["size_matched"] for o in sells) == pytest.approx(10)
    reports = [f["status"] for _, f in await r.xrange(keys.sessions()) if f["token_id"] == v.token]
    assert reports[-1] == "closed"


async def test_a_session_fenced_while_its_order_rests_cancels_that_order_only(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """One account, two owners in turn: the superseded session must not cancel the new owner's
    orders on the token (a cancel by token would), only its own resting one."""
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1, execution={"wait_sec": 30})
    await own(r, keys, v.token, 1)
    await v.executor.prepare(v.token)
    mine = await v.executor.place(v.token, "BUY", 0.30, 5, 0.01, "GTC")  # far below the ask: rests
    theirs = await v.executor.place(v.token, "BUY", 0.31, 5, 0.01, "GTC")  # the next owner's, same account
    assert mine.ok
    assert theirs.ok
    assert mine.order_id != theirs.order_id
    placement = Placement("BUY", 0.30, 5, "GTC", 0, 0, False)
    watch = asyncio.create_task(s.desk.watch.await_fills(placement, mine.order_id, "intent-1", Matched(0.0, 0.30)))
    await asyncio.sleep(0.5)
    await r.hset(keys.token(v.token), mapping={"owner": "other-worker", "epoch": 2})  # superseded
    with pytest.raises(Fenced):
        await asyncio.wait_for(watch, 10)  # noticed at the next poll, not after 30 s
    assert s.desk.resting_order == mine.order_id
    await s.desk.cancel_resting()
    status = {o["id"]: o["status"] for o in await v.orders("BUY")}
    assert status[mine.order_id] == "CANCELED"
    assert status[theirs.order_id] == "LIVE"


async def test_a_503_storm_on_market_info_is_a_reject_not_a_failed_session(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """Soak finding (hour run): the market-info fetch before a token's first order met a 503 storm;
    the error escaped the placement and the session failed (its token then ignored for an hour)."""
    v, feed = sim_venue
    resp = await v.http.post("/_sim/fault", json={"kind": "http_429", "status": 503, "count": 3, "retry_after": 0,
                                                  "path_prefix": "/book"})
    assert resp.status_code == 200, resp.text
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])
    snap = await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=20, what="LONG after the storm")
    assert snap["position"] == pytest.approx(10)
    reports = [f["status"] for _, f in await r.xrange(keys.sessions()) if f["token_id"] == v.token]
    assert "failed" not in reports
    reasons = [e["reason"] for e in await order_events(r, keys, v.token) if e["status"] == "rejected"]
    assert reasons
    assert all("market info unavailable" in why for why in reasons)
    await stop_session(s, task)


async def test_a_503_storm_around_an_ambiguous_placement_does_not_fail_the_session(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """Hour-soak finding: an order answered 503 (ambiguous), and the reads that settle what became of
    it met the same storm; the open-orders read raised and the session failed."""
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1)
    task = await start(r, keys, s)
    await v.executor.prepare(v.token)  # market info cached: the storm meets the order and the reads
    resp = await v.http.post("/_sim/fault", json={"kind": "http_429", "status": 503, "count": 4, "retry_after": 0})
    assert resp.status_code == 200, resp.text
    await v.path([0.48, 0.47])
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=30, what="LONG after the storm")
    reports = [f["status"] for _, f in await r.xrange(keys.sessions()) if f["token_id"] == v.token]
    assert "failed" not in reports
    await stop_session(s, task)


async def test_a_small_buy_raised_to_one_dollar_goes_fak_with_exact_amounts(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """BUY 1 @ 0.32 is under the $1 marketable minimum: raised to 3.13 shares (1.0016 at 0.32, four
    decimals of collateral, which the venue refuses for a FAK). The FAK spends $1.00 for 3.125."""
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1, ms={"order_size": 1})
    task = await start(r, keys, s)
    await v.path([0.31])  # ask 0.32
    snap = await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=15, what="LONG")
    buys = await v.orders("BUY")
    assert [(o["order_type"], o["price"], o["size_matched"]) for o in buys] == [("FAK", 0.32, 3.125)]
    assert snap["position"] == pytest.approx(3.125)
    await stop_session(s, task)


async def test_the_markets_own_minimum_from_the_start_params_decides_what_can_rest(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """BUY 10 below a minimum of 15 cannot rest: it goes FAK (with the default 5 it would be GTC)."""
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1, extra={"min_order_size": 15, "market_version": "v1"})
    task = await start(r, keys, s)
    await v.path([0.48, 0.47])
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=15, what="LONG")
    assert [o["order_type"] for o in await v.orders("BUY")] == ["FAK"]
    assert (s.desk.min_size, session(r, keys, feed, v, 2).desk.min_size) == (15.0, 5.0)
    await stop_session(s, task)


@pytest.mark.parametrize(("params", "why"), [
    ({"market_version": "v3"}, "Gamma version 'v3'"),
    ({"market_version": "v2"}, "shaped like a v1 token id"),
    ({"min_order_size": 0}, "min_order_size must be positive"),
])
async def test_a_market_the_worker_cannot_trade_fails_its_session_naming_why(
        sim_venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys, params: dict[str, Any], why: str) -> None:
    v, feed = sim_venue
    s = session(r, keys, feed, v, 1, extra=params)
    await own(r, keys, v.token, 1)
    await asyncio.wait_for(s.run(), 10)
    reports = [f for _, f in await r.xrange(keys.sessions()) if f["token_id"] == v.token]
    assert [f["status"] for f in reports] == ["failed"]
    assert why in reports[0]["reason"]
    assert await v.orders() == []
