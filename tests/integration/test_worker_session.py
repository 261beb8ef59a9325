"""A token session running the volatility strategy against sim_exchange (real process, the venue
room on the official SDK, real Redis). Ticks are published on the gateway's channel by a small poller of
the sim's top of book, in the shape shared/ticks.py defines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from harness import SimExchangeProcess, eventually
from services.maker_worker.executor import NOT_SENT
from services.maker_worker.lease import LeaseClock
from services.maker_worker.session import TokenSession
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import stable_id
from shared.tickfeed import TickFeed
from tests.integration.worker_support import WORKER, Venue, open_venue


@pytest.fixture
async def venue(start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys,
                ) -> AsyncIterator[tuple[Venue, TickFeed]]:
    async with open_venue(start_sim, r, keys) as opened:
        yield opened


async def own(r: aioredis.Redis, keys: Keys, token: str, epoch: int) -> None:
    await r.hset(keys.token(token), mapping={"owner": WORKER, "epoch": epoch})


def session(r: aioredis.Redis, keys: Keys, feed: TickFeed, v: Venue, epoch: int, **strategy: Any) -> TokenSession:
    params = {"maker_strategy": {"drop_pct": 0.04, "profit_pct": 0.05, "order_size": 10, **strategy.pop("ms", {})},
              "execution": {"poll_interval_sec": 0.2}, **strategy}
    return TokenSession(r, keys, feed, v.executor, WORKER, v.token, epoch, params)


async def snapshot(r: aioredis.Redis, keys: Keys, token: str) -> dict[str, Any]:
    h = await r.hgetall(keys.session(token))
    return json.loads(h["strategy"]) if h.get("strategy") else {}


async def stop_session(s: TokenSession, task: asyncio.Task[None]) -> None:
    s.stop_requested.set()
    await asyncio.wait_for(task, 10)


async def test_a_drop_buys_at_the_ask_and_a_rise_sells_at_profit_pct(
        venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    v, feed = venue
    await own(r, keys, v.token, 1)
    s = session(r, keys, feed, v, 1)
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="session up")
    await v.path([0.50, 0.49])  # ask 0.51 -> 0.50: above 0.51 x 0.96 = 0.4896, no buy
    assert await v.orders() == []

    await v.path([0.48, 0.47])  # ask 0.49 (no), then 0.48 <= 0.4896: BUY 10 @ 0.48
    buy = await eventually(lambda: _matched(v, "BUY"), timeout=10, what="BUY matched")
    assert (buy["price"], buy["size_matched"]) == (0.48, 10.0)
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="LONG")

    await v.path([0.50, 0.51])  # bids 0.49, 0.50 < 0.48 x 1.05 = 0.504: hold
    assert await v.orders("SELL") == []
    await v.path([0.52])  # bid 0.51 >= 0.504: SELL 10 @ 0.51
    sell = await eventually(lambda: _matched(v, "SELL"), timeout=10, what="SELL matched")
    assert (sell["price"], sell["size_matched"]) == (0.51, 10.0)
    snap = await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="FLAT after the sell")
    assert snap["realized_pnl"] == pytest.approx(0.30)
    assert snap["sells_done"] == 1
    fills = [f for _, f in await r.xrange(keys.fills()) if f["token_id"] == v.token]
    assert [(f["side"], float(f["price"]), float(f["size"])) for f in fills] == [("BUY", 0.48, 10.0), ("SELL", 0.51, 10.0)]
    orders = [f for _, f in await r.xrange(keys.orders()) if f["token_id"] == v.token]
    assert [o["status"] for o in orders] == ["matched", "matched"]
    # through the default wallet: the key's deposit wallet (signature type 3) made both orders
    account = v.executor.venue.account
    assert (account.wallet_kind, account.signature_type) == ("deposit", 3)
    assert {o["maker_address"] for o in await v.orders()} == {account.wallet.lower()}
    assert account.wallet.lower() != account.signer.lower()
    await stop_session(s, task)

    # A new owner (epoch 2) resumes the strategy from the snapshot: same window, same sell count.
    await own(r, keys, v.token, 2)
    s2 = session(r, keys, feed, v, 2)
    task2 = asyncio.create_task(s2.run())
    await eventually(lambda: _epoch(r, keys, v.token, 2), timeout=10, what="resumed snapshot")
    assert s2.strategy.sells_done == 1
    assert s2.strategy.window_high == pytest.approx(0.53)
    await stop_session(s2, task2)
    assert len(await v.orders()) == 2


async def test_sell_only_near_the_deadline_blocks_the_buy(venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                          keys: Keys) -> None:
    v, feed = venue
    await own(r, keys, v.token, 1)
    deadline = now_ms() // 1000 + 3600
    s = session(r, keys, feed, v, 1, ms={"countdown": {"minutes_before_end": 120}},
                run_params={"deadline_override_ts": deadline})
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="session up")
    await v.path([0.45, 0.40])
    snap = await snapshot(r, keys, v.token)
    assert snap["sell_only"] is True
    assert snap["sell_only_reason"] == "countdown"
    assert await v.orders() == []
    await stop_session(s, task)


async def test_bad_timezone_fails_the_session_with_the_key(venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                           keys: Keys) -> None:
    v, feed = venue
    await own(r, keys, v.token, 1)
    s = session(r, keys, feed, v, 1, ms={"countdown": {"absolute_time": "12:00", "timezone": "Nowhere/City"}})
    await asyncio.wait_for(s.run(), 10)
    reports = [f for _, f in await r.xrange(keys.sessions()) if f["token_id"] == v.token]
    assert reports[-1]["status"] == "failed"
    assert "countdown.timezone" in reports[-1]["reason"]


async def _state(r: aioredis.Redis, keys: Keys, token: str, state: str) -> dict[str, Any] | None:
    snap = await snapshot(r, keys, token)
    return snap if snap.get("state") == state else None


async def _epoch(r: aioredis.Redis, keys: Keys, token: str, epoch: int) -> bool:
    return (await r.hget(keys.session(token), "epoch")) == str(epoch)


async def _matched(v: Venue, side: str) -> dict[str, Any] | None:
    return next((o for o in await v.orders(side) if o["size_matched"] > 0), None)


async def test_a_start_for_a_superseded_epoch_runs_nothing(venue: tuple[Venue, TickFeed], r: aioredis.Redis,
                                                           keys: Keys) -> None:
    """Soak finding: a restarted worker read its predecessor's unread START (epoch 1) after the token
    had moved to another worker (epoch 2), resumed from that owner's snapshot and overwrote it."""
    v, feed = venue
    await r.hset(keys.token(v.token), mapping={"owner": "other-worker", "epoch": 2})
    owners_snapshot = {"epoch": "2", "worker": "other-worker", "position": "20.000000"}
    await r.hset(keys.session(v.token), mapping=owners_snapshot)
    s = session(r, keys, feed, v, 1)
    await asyncio.wait_for(s.run(), 10)
    assert await r.hgetall(keys.session(v.token)) == owners_snapshot
    assert [f["status"] for _, f in await r.xrange(keys.sessions())] == []
    assert await v.orders() == []


async def test_a_session_superseded_while_running_stops_and_leaves_the_new_snapshot(
        venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Soak finding: a worker whose lease lapsed while Redis was down kept its session running; the
    token moved on (epoch 2), and the old session's periodic snapshot overwrote the new owner's."""
    import services.maker_worker.session as session_module

    monkeypatch.setattr(session_module, "SNAPSHOT_EVERY_MS", 200)
    v, feed = venue
    await own(r, keys, v.token, 1)
    s = session(r, keys, feed, v, 1)
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="session up")
    await r.hset(keys.token(v.token), mapping={"owner": "other-worker", "epoch": 2})
    new_owners = {"epoch": "2", "worker": "other-worker", "position": "0.000000"}
    await r.delete(keys.session(v.token))
    await r.hset(keys.session(v.token), mapping=new_owners)
    await asyncio.wait_for(task, 10)  # fenced at its next snapshot: ends by itself
    assert await r.hgetall(keys.session(v.token)) == new_owners


async def test_a_fill_the_last_owner_never_recorded_is_booked_at_resume(
        venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """Hour-soak finding: an owner died between a fill at the venue and its record; the next owner
    adopted the venue's position silently, so the orchestrator's position (from fills) lagged and a
    later SELL of what the venue held took it short. The difference is booked as one fill."""
    v, feed = venue
    await own(r, keys, v.token, 1)
    s = session(r, keys, feed, v, 1)
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="session up")
    await v.path([0.48, 0.47])
    await eventually(lambda: _state(r, keys, v.token, "LONG"), timeout=10, what="LONG")
    await stop_session(s, task)
    # the dead owner's last order: filled at the venue, never recorded
    unrecorded = await v.executor.place(v.token, "BUY", 0.60, 5, 0.01, "FAK")
    assert unrecorded.filled_size == pytest.approx(5)

    async def token_fills() -> list[dict[str, str]]:
        return [f for _, f in await r.xrange(keys.fills()) if f["token_id"] == v.token]

    assert [f["side"] for f in await token_fills()] == ["BUY"]
    for epoch in (2, 3):  # the second resume finds nothing missing
        await own(r, keys, v.token, epoch)
        s2 = session(r, keys, feed, v, epoch)
        task2 = asyncio.create_task(s2.run())
        await eventually(lambda e=epoch: _epoch(r, keys, v.token, e), timeout=10, what=f"epoch {epoch} up")
        await stop_session(s2, task2)
    booked = await token_fills()
    assert [(f["side"], float(f["size"]), f["epoch"]) for f in booked] == [("BUY", 10.0, "1"), ("BUY", 5.0, "2")]
    assert booked[1]["id"] == stable_id("reconcile", v.token, 2)
    assert float((await r.hgetall(keys.session(v.token)))["position"]) == pytest.approx(15)


async def test_no_order_is_posted_while_the_workers_lease_may_have_lapsed(
        venue: tuple[Venue, TickFeed], r: aioredis.Redis, keys: Keys) -> None:
    """Hour-soak finding (double ownership 9): orders reached the venue 0.8-2.8 s after their token
    had moved, because the ownership check came before the wait for a venue thread, the sign and the
    POST. The POST is now gated on the worker's lease holding, unbroken, since the check."""
    v, feed = venue
    await own(r, keys, v.token, 1)
    lease = LeaseClock(1000, 250)
    lease.renewed(time.monotonic(), time.monotonic())
    lease.commands_read(time.monotonic())
    s = session(r, keys, feed, v, 1)
    s.lease = lease
    task = asyncio.create_task(s.run())
    await eventually(lambda: _state(r, keys, v.token, "FLAT"), timeout=10, what="session up")
    await asyncio.sleep(1.0)  # no renewal: Redis away, a long pause, ... the token may move any moment
    await v.path([0.48, 0.47])  # a drop: the strategy BUYs, its ownership check in Redis passes
    refused = await eventually(lambda: _order_events(r, keys, "rejected"), timeout=10, what="BUY refused")
    assert refused[0]["reason"] == NOT_SENT
    assert await v.orders() == []  # nothing reached the venue
    assert (REGISTRY.get_sample_value("polyfleet_worker_not_sent_total", {"side": "BUY"}) or 0) >= 1

    stop = asyncio.Event()

    async def renew() -> None:  # the worker's lease loop is back
        while not stop.is_set():
            started = time.monotonic()
            lease.renewed(started, time.monotonic())
            lease.commands_read(started)
            await asyncio.sleep(0.1)

    renewing = asyncio.create_task(renew())  # the refused BUY waited: a fresh check after the renewal sends it
    buy = await eventually(lambda: _matched(v, "BUY"), timeout=10, what="BUY sent once the lease is back")
    assert (buy["price"], buy["size_matched"]) == (0.48, 10.0)  # no price step conceded for what was not sent
    assert len(await v.orders("BUY")) == 1
    stop.set()
    await renewing
    await stop_session(s, task)


async def _order_events(r: aioredis.Redis, keys: Keys, status: str) -> list[dict[str, str]] | None:
    rows = [f for _, f in await r.xrange(keys.orders()) if f["status"] == status]
    return rows or None
