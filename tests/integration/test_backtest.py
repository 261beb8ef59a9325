"""The leader backtest against the sim exchange (docs/copytrading.md "Backtest"): a scripted leader's
history posted to the sim's Data API, replayed by ``polyfleet leaders backtest`` and by
``GET /api/leaders/{address}/backtest``, which must agree with each other and with the figures
computed by hand (the same history as tests/unit/test_backtest.py); and every way it refuses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from typer.testing import CliRunner

from cli.main import app
from harness import SimExchangeProcess
from harness.sim import sim_get, sim_post
from shared.config import load_settings
from shared.keys import Keys
from tests.integration.api_support import client, make_app

LEADER = "0x" + "1" * 40
NOBODY = "0x" + "2" * 40
CONFIG: dict[str, Any] = {
    "sim_exchange": {"markets": 3, "volatility": 0.0, "v2_share": 0.0},
    "copytrade": {"copy": {"sizing": "percent", "percent": 10, "max_slippage_bps": 300},
                  "backtest": {"slippage_bps": 100, "delay_sec": 60}},
}
runner = CliRunner()


async def script_history(sim: SimExchangeProcess) -> None:
    """The unit test's history, two hours ago, 600 s apart; A's book at 0.54/0.56; D's market resolves Yes."""
    markets = [m for m in await sim_get(sim, "/_sim/markets") if not m["neg_risk"]]
    a, e = (t["token_id"] for t in markets[0]["tokens"])
    b, c = (t["token_id"] for t in markets[1]["tokens"])
    d = markets[2]["tokens"][0]["token_id"]
    t0, now = int(time.time()) - 7200, int(time.time())
    rows = [("BUY", a, 400, 0.50, t0), ("SELL", a, 160, 0.60, t0 + 600), ("BUY", b, 100, 0.20, t0 + 1200),
            ("BUY", a, 100, 0.62, t0 + 1800), ("BUY", c, 50, 0.40, t0 + 2400), ("SELL", c, 10, 0.44, t0 + 2402),
            ("SELL", b, 100, 0.10, t0 + 3000), ("BUY", d, 200, 0.30, t0 + 3600), ("BUY", e, 20, 0.50, now - 10)]
    await sim_post(sim, "/_sim/trades", [{"proxyWallet": LEADER, "side": s, "asset": tok, "size": n, "price": p, "timestamp": ts}
                              for s, tok, n, p, ts in rows])
    async with httpx.AsyncClient(base_url=sim.url) as http:
        book = {"bids": [{"price": "0.54", "size": "100"}], "asks": [{"price": "0.56", "size": "100"}]}
        assert (await http.put(f"/_sim/book/{a}", json=book)).status_code == 200
    await sim_post(sim, "/_sim/resolve", {"condition_id": markets[2]["condition_id"], "winner": "Yes"})


def check_figures(res: dict[str, Any]) -> None:
    assert res["trades"] == {"replayed": 9, "buys": 6, "sells": 3, "below_min_size": 0}
    assert (res["copies"], res["skipped"]) == (3, 3)
    assert res["skip_reasons"] == {"token already copied": 1, "slippage guard": 1, "not detected yet": 1}
    assert res["exits"] == {"full": 1, "partial": 1, "sells_without_a_copy": 1}
    assert res["invested_usd"] == pytest.approx(28.28)
    assert res["realized_pnl"] == pytest.approx(0.394)
    assert res["unrealized_pnl"] == pytest.approx(1.08 + 13.94)  # A at the mid 0.55, D won: 1
    assert res["total_pnl"] == pytest.approx(15.414)
    assert (res["wins"], res["losses"], res["win_rate"]) == (2, 1, pytest.approx(2 / 3))
    assert res["max_drawdown_usd"] == pytest.approx(1.07)
    assert (res["open_copies"], res["unmarked"], res["truncated"]) == (2, 0, False)
    assert res["rules"]["followed"] is False  # any wallet can be backtested


async def test_cli_and_api_replay_a_scripted_history_to_the_figures_computed_by_hand(
        r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess]) -> None:
    sim = start_sim(CONFIG)
    await script_history(sim)
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "COLUMNS": "300"}
    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "backtest", LEADER, "--days", "1", "--json"], env=env)
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    check_figures(cli)

    settings = load_settings(sim.env["PF_CONFIG"])
    async with client(make_app(r, keys, settings)) as http:
        resp = await http.get(f"/api/leaders/{LEADER}/backtest", params={"days": 1})
        assert resp.status_code == 200, resp.text
        api = resp.json()
        assert (await client(make_app(r, keys, settings), auth=False).get(
            f"/api/leaders/{LEADER}/backtest")).status_code == 401
    check_figures(api)
    del api["window"], cli["window"]  # the runs end a moment apart
    assert api == cli

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "backtest", LEADER.upper().replace("0X", "0x"),
                                                       "--days", "1"], env=env)
    assert res.exit_code == 0, res.output
    for shown in ("copies made", "+0.39", "+15.02", "67% (2 won, 1 lost)", "$1.07", "1 token already copied",
                  "1 slippage guard", "1 not detected yet", "fill model: each copy acts 60 s after"):
        assert shown in res.output, shown


async def test_refusals_are_clear(r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess],
                                  tmp_path: Path) -> None:
    sim = start_sim(CONFIG)
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "COLUMNS": "300"}

    async def cli(*args: str, with_env: dict[str, str] = env) -> tuple[int, str]:
        res = await asyncio.to_thread(runner.invoke, app, ["leaders", "backtest", *args], env=with_env)
        return res.exit_code, " ".join(res.output.split())

    assert await cli("0x1234") == (2, "'0x1234' is not a 0x-prefixed 40-hex-digit address")
    for days in ("0", "-3", "1000"):
        assert await cli(LEADER, "--days", days) == (
            2, f"days must be 1 to 90 (copytrade.backtest.max_days), got {days}")
    code, out = await cli(NOBODY, "--days", "3")
    assert (code, out) == (3, f"no history: {NOBODY} made no trade in the last 3 day(s) (Data API /trades)")

    down = tmp_path / "down.yaml"  # production's environment with the Data API where nothing listens
    down.write_text(yaml.safe_dump({"mode": "paper", "polymarket": {
        "environment": "production", "url_overrides": {"data_url": "http://127.0.0.1:1"}}}))
    code, out = await cli(LEADER, with_env={"PF_CONFIG": str(down)})
    assert code == 4
    assert out.startswith("the venue is unreachable: Data API at http://127.0.0.1:1: GET /trades failed: ConnectError")

    settings = load_settings(sim.env["PF_CONFIG"])
    async with client(make_app(r, keys, settings)) as http:
        for path, status, detail in (
                ("/api/leaders/0x1234/backtest?days=1", 422, "'0x1234' is not a 0x-prefixed 40-hex-digit address"),
                (f"/api/leaders/{LEADER}/backtest?days=0", 422, "days must be 1 to 90"),
                (f"/api/leaders/{NOBODY}/backtest?days=2", 404, "no history: "),
        ):
            resp = await http.get(path)
            assert resp.status_code == status, resp.text
            assert resp.json()["detail"].startswith(detail)
    async with client(make_app(r, keys, load_settings(str(down)))) as http:
        resp = await http.get(f"/api/leaders/{LEADER}/backtest")
        assert resp.status_code == 503
        assert resp.json()["detail"].startswith("the venue is unreachable")
