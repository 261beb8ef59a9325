"""The leader scorecard end to end with a real Redis (docs/copytrading.md "Scorecard"): signals,
the orchestrator's decisions and fills written the way the services write them (the real
orchestrator decides; fills and session reports are the worker's messages), then read by
``polyfleet leaders`` and ``GET /api/leaders``, which must agree. And the sim's scripted wallets of
each style, followed by the real collector: the market maker and the high-frequency one are
flagged, the trader is not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from typer.testing import CliRunner

from cli.main import app
from harness import RedisServer, SimExchangeProcess, eventually, write_config
from services.orchestrator.service import OrchestratorService
from services.signal_collector.service import SignalCollectorService
from shared.clock import now_ms
from shared.config import Settings, load_settings
from shared.keys import Keys
from shared.messages import Fill, SessionReport, Signal, stable_id
from shared.redisio import add_message
from shared.scorecard_reads import read_leaders
from shared.ticks import Tick
from tests.integration.api_support import client, make_app, wait_for

LEADER = "0x" + "c" * 40
MAKER = "0x" + "d" * 40  # trades both sides of one market: the market-maker and high-frequency flags
COPIED, GUARDED = "111222333", "444555666"
YES, NO = "777000001", "777000002"
CONFIG: dict[str, Any] = {
    "scheduler": {"poll_interval_sec": 0.01},
    "cooldown": {"cooldown_sec_per_token": 0},
    "copytrade": {"copy": {"sizing": "percent", "percent": 10, "max_slippage_bps": 300},
                  "targets": [{"account": LEADER}, {"account": MAKER}],
                  "scorecard": {"mm_window_min": 10, "mm_min_pairs": 2, "hf_trades_per_hour": 2}},
}
runner = CliRunner()


def signal(account: str, side: str, token: str, price: float, delay_ms: int, source: str = "poll",
           market: str = "", n: int = 0) -> Signal:
    t = now_ms()
    return Signal(id=stable_id("leaders", account, side, token, n), ts_event=t - delay_ms, ts_init=t, producer="test",
                  side=side, token_id=token, account=account, size=400, price=price, source=source,  # type: ignore[arg-type]
                  condition_id=market)


async def book(r: aioredis.Redis, keys: Keys, token: str, bid: float, ask: float) -> None:
    tick = Tick(token, 1, bid, ask, 100.0, 500.0, None, 0.01, now_ms(), now_ms())
    await r.hset(keys.book(token), mapping=tick.to_hash())


async def fill(r: aioredis.Redis, keys: Keys, side: str, price: float, size: float, n: int) -> None:
    await add_message(r, keys.fills(), Fill(
        id=stable_id("leaders-fill", n), ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=COPIED,
        epoch=1, worker="w1", order_id=f"o{n}", side=side, price=price, size=size))  # type: ignore[arg-type]


async def field(r: aioredis.Redis, keys: Keys, token: str, name: str) -> str | None:
    return await r.hget(keys.token(token), name)  # type: ignore[no-any-return]


async def test_leaders_cli_and_api_show_the_scorecard(r: aioredis.Redis, keys: Keys, redis_server: RedisServer,
                                                     tmp_path: Path) -> None:
    settings = Settings.model_validate(CONFIG)
    await r.hset(keys.worker("w1"), mapping={"capacity": 10, "load": 0, "ready": 1})
    await r.sadd(keys.workers(), "w1")
    await r.set(keys.worker_lease("w1"), "1", px=60_000)
    svc = OrchestratorService(settings, "o1", r)

    async def steps(until: Any) -> None:
        async def step() -> bool:
            await svc.step(block_ms=10)
            return bool(await until())
        await wait_for(step)

    # the leader's BUY at 0.50 is copied (ask 0.51 is within 300 bps); a second one is guarded (0.56)
    await book(r, keys, COPIED, 0.49, 0.51)
    await book(r, keys, GUARDED, 0.54, 0.56)
    await add_message(r, keys.signals(), signal(LEADER, "BUY", COPIED, 0.50, 2000))
    await add_message(r, keys.signals(), signal(LEADER, "BUY", GUARDED, 0.50, 500, source="rtds"))
    await steps(lambda: field(r, keys, COPIED, "state"))
    assert await field(r, keys, COPIED, "leader_price") == "0.5"
    # our session buys 40 at 0.51 (200 bps over the leader) and sells 10 at 0.55 (+0.40 realised)
    await add_message(r, keys.sessions(), SessionReport(
        id="s1", ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=COPIED, epoch=1, worker="w1",
        status="started"))
    await fill(r, keys, "BUY", 0.51, 40, 1)
    await fill(r, keys, "SELL", 0.55, 10, 2)

    async def booked() -> bool:
        return float(await field(r, keys, COPIED, "position") or 0) == 30.0
    await steps(booked)
    # the market maker buys Yes, buys No, sells Yes within minutes (no books: its copies go unguarded)
    await add_message(r, keys.signals(), signal(MAKER, "BUY", YES, 0.40, 100, market="m1"))
    await add_message(r, keys.signals(), signal(MAKER, "BUY", NO, 0.58, 100, market="m1"))
    await add_message(r, keys.signals(), signal(MAKER, "SELL", YES, 0.41, 100, market="m1", n=1))

    async def decided() -> bool:
        return len(await r.xrange(keys.events())) >= 5 and await field(r, keys, NO, "state") is not None
    await steps(decided)

    await r.hset(keys.leader_value(), LEADER, "5000.0")  # what the collector reads from the Data API
    config = tmp_path / "polyfleet.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "PF_CONFIG": str(config), "COLUMNS": "300"}
    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "--json"], env=env)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    cards = {c["account"]: c for c in report["leaders"]}
    lead, maker = cards[LEADER], cards[MAKER]
    assert lead["signals"] == {"poll": 1, "rtds": 1}
    assert (lead["leader_volume_usd"], lead["leader_value_usd"]) == (pytest.approx(400.0), 5000.0)
    assert maker["leader_value_usd"] is None
    assert (lead["copies"], lead["skipped"], lead["skip_reasons"]) == (1, 1, {"slippage guard": 1})
    assert lead["realized_pnl"] == pytest.approx(0.4)
    assert lead["unrealized_pnl"] == pytest.approx(30 * (0.50 - 0.51))  # marked at the mid 0.50
    # the dashboard's chart per leader: its one copy's PnL (realised + unrealised), at the time it was queued
    queued_at = int(await field(r, keys, COPIED, "queued_at") or 0)
    assert lead["pnl_curve"] == [[queued_at, pytest.approx(0.4 + 30 * (0.50 - 0.51))]]
    assert (lead["slippage_bps"]["n"], lead["slippage_bps"]["p50"]) == (1, pytest.approx(200.0))
    assert (lead["delay_ms"]["poll"]["p50"], lead["delay_ms"]["rtds"]["max"]) == (2000, 500)
    assert lead["flags"] == {"market_maker": False, "two_sided_trades": 0, "high_frequency": False,
                             "busiest_hour": 2}
    assert maker["flags"] == {"market_maker": True, "two_sided_trades": 2, "high_frequency": True,
                              "busiest_hour": 3}
    assert (maker["copies"], maker["followed"]) == (2, True)

    async with client(make_app(r, keys, settings)) as http:
        assert (await http.get("/api/leaders")).json() == report
        assert (await client(make_app(r, keys, settings), auth=False).get("/api/leaders")).status_code == 401

    res = await asyncio.to_thread(runner.invoke, app, ["leaders"], env=env)
    assert res.exit_code == 0, res.output
    for shown in ("0xcccc…cccc", "slippage guard", "market maker (2 two-sided)", "high frequency (3/h)", "+0.40",
                  "200 / 200 bps", "poll 2000 / 2000 ms; rtds 500 / 500 ms", "$400 / $5,000"):
        assert shown in res.output


def test_leaders_names_a_bad_threshold_and_an_unreachable_redis(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"copytrade": {"scorecard": {"mm_window_min": 0}}}))
    res = runner.invoke(app, ["leaders"], env={"PF_CONFIG": str(bad)})
    assert res.exit_code == 2
    assert "copytrade.scorecard.mm_window_min" in res.output
    res = runner.invoke(app, ["leaders"], env={"PF_CONFIG": None, "PF_REDIS_URL": "redis://127.0.0.1:1", "COLUMNS": "200"})
    assert res.exit_code == 2
    assert "unreachable" in res.output


TRADER, MM, HF = (f"0x{c * 40}" for c in "abe")
STYLED = [{"account": TRADER, "style": "trader", "trades_per_minute": 20},
          {"account": MM, "style": "market_maker", "trades_per_minute": 45},
          {"account": HF, "style": "high_frequency", "trades_per_minute": 180}]
FLAGS = {"mm_window_min": 1, "mm_min_pairs": 3, "hf_trades_per_hour": 15}


async def test_the_sims_scripted_market_maker_and_high_frequency_wallets_are_flagged_and_the_trader_is_not(
        start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys, tmp_path: Path) -> None:
    """The sim's three styles (services/sim_exchange/wallets.py), at a pace a test can wait for, followed
    by the real signal collector; the scorecard (copytrade.scorecard at that pace) tells them apart."""
    sim = start_sim({"sim_exchange": {"markets": 4, "volatility": 0.0, "wallets": STYLED}})
    settings = load_settings(write_config(tmp_path / "polyfleet.yaml", sim.port, {
        "sim_exchange": {"wallets": STYLED},
        "copytrade": {"poll_interval_sec": 0.2, "targets": [{"account": w["account"]} for w in STYLED],
                      "scorecard": FLAGS}}), environ={})
    collector = SignalCollectorService(settings, "c1", redis=r)
    task = asyncio.create_task(collector.run())
    try:
        cards = await eventually(lambda: _styled(r, keys, settings), timeout=60,
                                 what="a few trades of each, both sides of a market, more than 15 in an hour")
    finally:
        collector.stop()
        await asyncio.wait_for(task, 10)
    trader, mm, hf = (cards[w["account"]]["flags"] for w in STYLED)
    # one way only (it never holds long enough here to sell), and not often
    assert (trader["market_maker"], trader["two_sided_trades"], trader["high_frequency"]) == (False, 0, False)
    assert mm["market_maker"] is True
    assert (hf["high_frequency"], hf["two_sided_trades"]) == (True, 0)  # clips one way: not a market maker


async def _styled(r: aioredis.Redis, keys: Keys, settings: Settings) -> dict[str, dict[str, Any]] | None:
    cards = {c["account"]: c for c in (await read_leaders(r, keys, settings))["leaders"]}
    trader, mm, hf = (cards.get(w["account"], {}) for w in STYLED)
    done = (sum(trader.get("signals", {}).values()) >= 2 and mm.get("flags", {}).get("two_sided_trades", 0) >= 3
            and hf.get("flags", {}).get("busiest_hour", 0) > FLAGS["hf_trades_per_hour"])
    return cards if done else None
