"""A leader's own PnL and volume on its scorecard (docs/copytrading.md "Scorecard"; docs/venue.md D5):
the collector's periodic read of the sim's Data API v2 into pf:leader:stats, then shown by
``GET /api/leaders`` and ``polyfleet leaders``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app
from harness import RedisServer, SimExchangeProcess
from harness.sim import sim_get, sim_post
from services.signal_collector.budget import RequestBudget
from services.signal_collector.leader_stats import refresh_stats
from shared.config import load_settings
from shared.keys import Keys
from shared.venue.data_stats import LeaderStats
from tests.integration.api_support import client, make_app

LEADER, QUIET = "0x" + "3" * 40, "0x" + "4" * 40
runner = CliRunner()


async def test_leader_pnl_and_volume_are_read_from_the_data_api_and_shown_on_the_card(
        r: aioredis.Redis, keys: Keys, redis_server: RedisServer,
        start_sim: Callable[..., SimExchangeProcess]) -> None:
    sim = start_sim({"sim_exchange": {"markets": 1, "volatility": 0.0, "v2_share": 0.0},
                     "copytrade": {"targets": [{"account": LEADER}, {"account": QUIET}], "leader_stats_window": "week"}})
    [market] = await sim_get(sim, "/_sim/markets")
    token = market["tokens"][0]["token_id"]
    now = int(time.time())
    await sim_post(sim, "/_sim/trades", [
        {"proxyWallet": LEADER, "side": "BUY", "asset": token, "size": 100, "price": 0.40, "timestamp": now - 3600},
        {"proxyWallet": LEADER, "side": "SELL", "asset": token, "size": 50, "price": 0.50, "timestamp": now - 60}])
    async with httpx.AsyncClient(base_url=sim.url) as http:
        book = {"bids": [{"price": "0.44", "size": "10"}], "asks": [{"price": "0.46", "size": "10"}]}
        assert (await http.put(f"/_sim/book/{token}", json=book)).status_code == 200

    settings = load_settings(sim.env["PF_CONFIG"])
    async with httpx.AsyncClient(timeout=5) as http:
        got = await refresh_stats(r, keys, http, f"{sim.url}/data-api", settings.copytrade, RequestBudget(2, 100))
    # the week: -40 + 25 in cash, 50 shares left at the mid 0.45 (+22.5); 100 x 0.40 + 50 x 0.50 traded
    lead = got[LEADER]
    assert lead.pnl_usd == pytest.approx(7.5)
    assert (lead.volume_usd, lead.trades, lead.window) == (65.0, 2, "week")
    assert (got[QUIET].pnl_usd, got[QUIET].volume_usd, got[QUIET].trades) == (None, 0.0, 0)  # no standing
    assert LeaderStats.from_json(await r.hget(keys.leader_stats(), LEADER)) == lead

    # a 429 holds the collector's whole Data API budget back (the polls too) and ends the round;
    # what was read before stays
    await sim_post(sim, "/_sim/fault", {"kind": "http_429", "count": 1, "retry_after": 3,
                                        "path_prefix": "/data-api/v2/leaderboard"})
    budget = RequestBudget(2, 100)
    async with httpx.AsyncClient(timeout=5) as http:
        assert await refresh_stats(r, keys, http, f"{sim.url}/data-api", settings.copytrade, budget) == {}
    assert budget.paused_for() > 2
    assert LeaderStats.from_json(await r.hget(keys.leader_stats(), LEADER)) == lead

    async with client(make_app(r, keys, settings)) as http:
        cards: dict[str, Any] = {c["account"]: c for c in (await http.get("/api/leaders")).json()["leaders"]}
    assert cards[LEADER]["venue_stats"] == {"pnl_usd": pytest.approx(7.5), "volume_usd": 65.0, "trades": 2,
                                            "window": "week", "read_at": lead.read_at}
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "COLUMNS": "400"}
    res = await asyncio.to_thread(runner.invoke, app, ["leaders"], env=env)
    assert res.exit_code == 0, res.output
    assert "+7.50 / $65 (2 trades, week)" in res.output
    assert "— / $0 (0 trades, week)" in res.output


async def test_the_sims_standing_and_volume_refuse_what_the_venue_refuses(
        start_sim: Callable[..., SimExchangeProcess]) -> None:
    sim = start_sim({"sim_exchange": {"markets": 1}})
    async with httpx.AsyncClient(base_url=f"{sim.url}/data-api/v2") as http:
        assert (await http.get("/user-volume")).status_code == 400  # user is required
        assert (await http.get("/leaderboard", params={"user": LEADER, "time_period": "year"})).status_code == 400
        assert (await http.get("/leaderboard", params={"user": LEADER})).json() == {"data": None}
        assert (await http.get("/user-volume", params={"user": LEADER})).json() == {
            "data": {"volume": 0.0, "volume_usdc": 0.0, "trade_count": 0}}
