"""A position held when its market resolves is redeemed and booked (issue 16 item 5), end to end:
a real sim_exchange that settles late (``settle_lag_ms``, a share of trades FAILED: seeded so this
test's one trade settles), a real gateway (``market_resolved`` -> ``pf:resolutions``), the
orchestrator (flags the position, books the redemption), the redeemer (redeems through the venue
room) and Redis. The worker is played by the test: it buys on the venue with the fleet's own
account and reports what maker_worker reports (started, the fill MATCHED, its trade's status, the
closed session). The first redeem's outcome is unknown, three ways: dropped by the sim's node
(accepted, never mined: sent again), mined with its receipt withheld (it landed: the wallet's
on-chain balance says so, and it is not sent a second time), or relayed and never confirmed (the
same, gasless). The sim's account is the judge; the redemption's status is gone once it is booked.
(A restart keeping the backoff, and the operator's view and retry: test_redeemer_restart.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app as cli
from harness import RedisServer, SimExchangeProcess, eventually, sim_get, sim_post, write_config
from services.orchestrator.service import OrchestratorService
from services.redeemer.service import RedeemerService
from services.ws_gateway.service import WsGatewayService
from shared.clock import now_ms
from shared.config import Settings, load_secrets, load_settings
from shared.keys import Keys
from shared.messages import Fill, SessionReport, Signal, TradeStatus, decode, stable_id
from shared.redisio import add_message
from shared.venue.environment import fetch_sim_environment, resolve_environment
from shared.venue.ids import outcome
from shared.venue.orders import OrderMarket, VenueOrders
from shared.venue.wallet_setup import open_trading_account
from tests.integration import test_arb_scanner as base
from tests.integration.api_support import client, make_app, register_worker
from tests.integration.test_arb_scanner import put_book
from tests.integration.test_arb_settlement import seed_failing

SETTLE_LAG_MS = 3000
START_CASH = 10_000.0
SHARES, ASK = 20.0, 0.40


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": {**base.SIM, "v2_share": 0.5, "settle_lag_ms": SETTLE_LAG_MS,
                                       "settle_fail_share": 0.3, "seed": seed_failing([False])}})


@contextlib.asynccontextmanager
async def fleet(settings: Settings, r: aioredis.Redis) -> AsyncIterator[RedeemerService]:
    """The gateway, the orchestrator and the redeemer, each on its own task."""
    gateway = WsGatewayService(settings, "g1", redis=r)
    orchestrator = OrchestratorService(settings, "o1", r)
    redeemer = RedeemerService(settings, "r1", redis=r)

    async def orchestrate() -> None:
        while not orchestrator.stopping:
            await orchestrator.step(block_ms=20)

    tasks = [asyncio.create_task(c) for c in (gateway.run(), orchestrate(), redeemer.run())]
    try:
        yield redeemer
    finally:
        for svc in (redeemer, orchestrator, gateway):
            svc.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


class Worker:
    """What a maker_worker session reports for one BUY, played on the fleet's own venue account."""

    def __init__(self, r: aioredis.Redis, keys: Keys, orders: VenueOrders, token: str) -> None:
        self.r, self.keys, self.orders, self.token = r, keys, orders, token

    async def report(self, status: str, **kw: Any) -> None:
        await add_message(self.r, self.keys.sessions(), SessionReport(
            id=stable_id(status, self.token, 1), ts_event=now_ms(), ts_init=now_ms(), producer="w1",
            token_id=self.token, epoch=1, worker="w1", status=status, **kw))  # type: ignore[arg-type]

    async def buy(self, version: str) -> str:
        """BUY SHARES at ASK on the venue (FOK), its fill written MATCHED; the trade id."""
        o = outcome(self.token, version)
        info = await self.orders.market_info(o)
        ack = await self.orders.place_marketable(OrderMarket(o, False, info.min_size), "BUY", ASK, SHARES,
                                                 info.tick_size, order_type="FOK")
        assert ack.shares == pytest.approx(SHARES)
        [trade_id] = ack.trade_ids
        await add_message(self.r, self.keys.fills(), Fill(
            id=stable_id("fill", trade_id, ack.order_id), ts_event=now_ms(), ts_init=now_ms(), producer="w1",
            token_id=self.token, epoch=1, worker="w1", order_id=ack.order_id, side="BUY", price=ASK, size=SHARES,
            trade_id=trade_id, status="MATCHED"))
        return trade_id

    async def follow(self, trade_id: str) -> None:
        """Until the trade is final at the venue, then its status on pf:fills (as the worker does)."""
        async def final() -> str:
            [t] = await self.orders.trades(trade_id=trade_id)
            return t.status if t.status in ("CONFIRMED", "FAILED") else ""

        status = await eventually(final, timeout=3 * SETTLE_LAG_MS / 1000, what=f"trade {trade_id} final")
        assert status == "CONFIRMED"  # the seed settles this one
        await add_message(self.r, self.keys.fills(), TradeStatus(
            id=stable_id("trade", trade_id, status), ts_event=now_ms(), ts_init=now_ms(), producer="w1",
            token_id=self.token, epoch=1, worker="w1", trade_id=trade_id, status=status))


async def _commands(r: aioredis.Redis, keys: Keys) -> list[str]:
    return [decode(f).action for _, f in await r.xrange(keys.cmd("w1"))]  # type: ignore[attr-defined]


# (market system, wallet, the fault that leaves the first redeem's outcome unknown)
CASES = [("v1", "eoa", "drop"), ("v1", "eoa", "hide"), ("v2", "deposit", "relayer_stall")]


async def _unknown_outcome(sim: SimExchangeProcess, fault: str) -> None:
    if fault == "relayer_stall":  # relayed, applied, never confirmed
        await sim_post(sim, "/_sim/fault", {"kind": fault, "count": 1})
    else:  # drop: accepted, never mined; hide: mined, its receipt never answered
        await sim_post(sim, "/_sim/rpc/fault", {"kind": fault, "count": 1})


@pytest.mark.parametrize(("version", "wallet", "fault"), CASES)
async def test_a_position_held_when_its_market_resolves_is_redeemed_and_booked(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch, version: str, wallet: str, fault: str) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    settings = load_settings(write_config(tmp_path / "polyfleet.yaml", sim.port, {
        "polymarket": {"wallet": wallet}, "scheduler": {"poll_interval_sec": 0.05},
        "redeemer": {"check_interval_sec": 0.2, "retry_initial_sec": 0.5, "receipt_timeout_sec": 2.0},
        "gateway": {"reconcile_interval_sec": 0.5, "ping_interval_sec": 1.0}}), environ={})
    m = next(m for m in await sim_get(sim, "/_sim/markets") if m.get("version", "v1") == version and not m["neg_risk"])
    cid, yes = m["condition_id"], m["tokens"][0]["token_id"]
    await put_book(sim, yes, [[0.38, 500]], [[ASK, 500]])
    env = await resolve_environment(settings.polymarket, settings.mode)
    opened = await open_trading_account(settings, load_secrets(), env)  # the fleet's account, as a worker opens it
    address = opened.account.wallet.lower()
    worker = Worker(r, keys, VenueOrders(opened.account), yes)
    await register_worker(r, keys)
    try:
        async with fleet(settings, r) as redeemer:
            await add_message(r, keys.signals(), Signal(
                id=stable_id("BUY", yes), ts_event=now_ms(), ts_init=now_ms(), producer="test", side="BUY",
                token_id=yes, account="0x" + "a" * 40, size=SHARES, price=ASK, source="poll",
                market_version=version, condition_id=cid, neg_risk=False))
            await eventually(lambda: _commands(r, keys), what="START")
            await worker.report("started")
            await eventually(lambda: r.exists(keys.book(yes)), timeout=15, what="the gateway streams the token")
            trade_id = await worker.buy(version)
            # the market resolves while the buy is still MATCHED: its shares are not in the wallet yet
            await sim_post(sim, "/_sim/resolve", {"condition_id": cid, "winner": "Yes"})
            await eventually(lambda: r.hexists(keys.redeemable(), yes), timeout=15, what="flagged for redemption")
            assert (await _commands(r, keys))[-1] == "EXIT"
            await worker.report("closed", position=SHARES, fills=1)  # nothing could be sold into a resolved market
            await eventually(lambda: _state_is(r, keys, yes, "done"))
            # the session is over, but its trade is pending: the redeemer waits for it
            await eventually(lambda: _waiting(redeemer), what="the redeemer waiting on the pending trade")
            assert await sim_get(sim, "/_sim/ctf/ops", address=address) == []
            assert (await _status(r, keys, cid))["state"] == "waiting"
            await _unknown_outcome(sim, fault)
            await worker.follow(trade_id)
            booked = await eventually(lambda: _redeemed(r, keys, yes), timeout=30, what="redeemed and booked")
    finally:
        await opened.account.close()
    # the venue: the 20 shares redeemed for $20 through the market system's own contract
    [op] = await sim_get(sim, "/_sim/ctf/ops", address=address)
    assert (op["kind"], op["market"], op["amount"]) == ("redeem", cid, SHARES)
    acct = (await sim_get(sim, "/_sim/positions", address=address))[address]
    assert acct["positions"][yes] == pytest.approx(0)
    assert acct["cash"] == pytest.approx(START_CASH - SHARES * ASK + SHARES)
    [failed] = [decode(f) for _, f in await r.xrange(keys.events()) if f["kind"] == "redeem.failed"]
    assert "outcome unknown" in failed.reason  # type: ignore[attr-defined]
    assert (failed.detail["attempts"], failed.detail["state"]) == (1, "unknown")  # type: ignore[attr-defined]
    landed = [f for _, f in await r.xrange(keys.events()) if f["kind"] == "redeem.landed"]
    if wallet == "eoa":
        target = (await fetch_sim_environment(sim.url)).address("collateral_adapter").lower()
        sent = [t for t in await sim_get(sim, "/_sim/rpc/txs", address=address) if t["to"].lower() == target]
        if fault == "drop":  # never mined: sent again after the backoff, and that one paid
            assert [(t["status"], t["hidden"]) for t in sent] == [(1, False)]
            assert landed == []
        else:  # mined unseen: the balance said it landed, so it was not sent a second time
            assert [(t["status"], t["hidden"]) for t in sent] == [(1, True)]
            assert len(landed) == 1
    else:  # relayed once, never confirmed: landed, not relayed again
        relayed = await sim_get(sim, "/relayer/transactions", owner=opened.info.signer.lower())
        assert sum(any(c["call"] == "v2_redeem" for c in t["calls"]) for t in relayed) == 1
        assert len(landed) == 1
    # the books: position 0, $12 realised (paid 8, redeemed for 20), the entry gone, the token says so
    pnl = SHARES - SHARES * ASK
    assert (float(booked["position"]), float(booked["exposure"])) == (0, 0)
    assert float(booked["realized_pnl"]) == pytest.approx(pnl)
    assert (float(booked["redeemed_shares"]), float(booked["redeemed_payout"])) == (SHARES, SHARES)
    assert not await r.hexists(keys.redeemable(), yes)
    assert not await r.hexists(keys.redeem_status(), cid)  # booked: the redemption's status is gone
    assert sum(float(v) for v in (await r.hgetall(keys.pnl_daily())).values()) == pytest.approx(pnl)
    [event] = [decode(f) for _, f in await r.xrange(keys.events()) if f["kind"] == "position.redeemed"]
    assert event.detail["venue_shares"] == pytest.approx(SHARES)  # type: ignore[attr-defined]
    assert event.level == "info"  # type: ignore[attr-defined]  # what the venue held = what was booked
    # shown: the API's token and the CLI's
    async with client(make_app(r, keys)) as http:
        view = (await http.get(f"/api/tokens/{yes}")).json()
    assert (view["redeemed"], view["redeemed_payout"]) == (True, SHARES)
    shown = CliRunner().invoke(cli, ["token", yes], env={"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf",
                                                          "COLUMNS": "250"})
    assert "redeemed: 20.00 shares paid $20.00" in shown.output, shown.output


async def _status(r: aioredis.Redis, keys: Keys, cid: str) -> dict[str, Any]:
    raw = await r.hget(keys.redeem_status(), cid)
    return json.loads(raw) if raw else {}


async def _state_is(r: aioredis.Redis, keys: Keys, token: str, state: str) -> bool:
    return await r.hget(keys.token(token), "state") == state


async def _waiting(redeemer: RedeemerService) -> bool:
    return redeemer.counts["waiting"] == 1 and redeemer.counts["flagged"] == 1


async def _redeemed(r: aioredis.Redis, keys: Keys, token: str) -> dict[str, str] | None:
    h = await r.hgetall(keys.token(token))
    return h if h.get("redeemed_at") else None
