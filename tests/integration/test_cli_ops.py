"""``polyfleet`` read and operations commands against a real Redis (and, for doctor, a real
sim_exchange process): status, signals tail, events tail, config check, doctor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import AuditEvent, stable_id
from shared.redisio import add_message
from shared.redisio.health import beat
from tests.integration.api_support import (
    TOKEN,
    buy_signal,
    fill,
    orchestrator_running,
    register_worker,
    started,
    trade_status,
    wait_for,
)
from tests.support import ROOT, RedisServer, SimExchangeProcess

runner = CliRunner()


@pytest.fixture
def env(redis_server: RedisServer, r: aioredis.Redis) -> dict[str, str]:
    return {"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "COLUMNS": "250"}


async def test_status_shows_tokens_owner_heartbeat_services_and_leader(env: dict[str, str], r: aioredis.Redis,
                                                                      keys: Keys) -> None:
    await register_worker(r, keys)
    async with orchestrator_running(r):
        await buy_signal(r, keys)
        await wait_for(lambda: _state(r, keys, "starting"))
        await started(r, keys, 1)
        await fill(r, keys, "BUY", 0.4, 10)
        await wait_for(lambda: _state(r, keys, "running"))
        await beat(r, keys, "orchestrator", "o-api", 5, {})
        res = await asyncio.to_thread(runner.invoke, app, ["status"], env=env)
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"{TOKEN[:6]}…{TOKEN[-6:]}" in out
    assert "will-it-rain Yes" in out
    assert "running" in out
    assert "w1" in out
    assert "0s ago" in out or "1s ago" in out  # the owner's last heartbeat
    assert "leader o-api" in out
    assert "orchestrator" in out.split("services (heartbeats)")[1]
    res = runner.invoke(app, ["workers"], env=env)
    assert "w1" in res.output
    assert "yes" in res.output


async def test_status_and_token_show_pending_vs_confirmed(env: dict[str, str], r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys)
    async with orchestrator_running(r):
        await buy_signal(r, keys)
        await wait_for(lambda: _state(r, keys, "starting"))
        await started(r, keys, 1)
        await fill(r, keys, "BUY", 0.4, 10, n=1, trade="T1", status="MATCHED")
        await wait_for(lambda: _field(r, keys, "pending_trades", "1"))
        status = await asyncio.to_thread(runner.invoke, app, ["status"], env=env)
        token = await asyncio.to_thread(runner.invoke, app, ["token", TOKEN], env=env)
        await trade_status(r, keys, "T1", "FAILED")
        await wait_for(lambda: _field(r, keys, "failed_trades", "1"))
        failed = await asyncio.to_thread(runner.invoke, app, ["token", TOKEN], env=env)
        settled = await asyncio.to_thread(runner.invoke, app, ["status"], env=env)
    assert status.exit_code == 0, status.output
    assert "pending" in status.output
    assert "+10.00 in 1" in status.output
    assert token.exit_code == 0, token.output
    assert "10.00 @ 0.4000" in token.output.split("position (confirmed)")[0]  # matched
    assert "0.00 @ 0.0000" in token.output.split("position (confirmed)")[1]
    assert "+10.00 (buys 10.00, sells 0.00, $4.00 in 1 trade(s))" in token.output
    assert "T1" in token.output
    assert "MATCHED" in token.output
    assert "FAILED" in failed.output
    assert "0.00 @ 0.0000" in failed.output.split("position (confirmed)")[0]
    assert "+10.00 in 1" not in settled.output
    missing = runner.invoke(app, ["token", "999"], env=env)
    assert missing.exit_code == 1
    assert "unknown" in missing.output


async def _field(r: aioredis.Redis, keys: Keys, name: str, value: str) -> bool:
    return await r.hget(keys.token(TOKEN), name) == value


async def _state(r: aioredis.Redis, keys: Keys, state: str) -> bool:
    return await r.hget(keys.token(TOKEN), "state") == state


async def test_signals_tail_shows_the_latest_then_follows_new_ones(env: dict[str, str], r: aioredis.Redis,
                                                                   keys: Keys) -> None:
    for n in range(3):
        await buy_signal(r, keys, token=f"10{n}", n=n)
    res = runner.invoke(app, ["signals", "tail", "-n", "2"], env=env)
    assert res.exit_code == 0, res.output
    assert "100" not in res.output
    assert "101" in res.output
    assert "102" in res.output
    assert "BUY" in res.output

    follow = asyncio.create_task(asyncio.to_thread(
        runner.invoke, app, ["signals", "tail", "-n", "0", "-f", "--duration", "2.5", "--json", "--side", "SELL"],
        env=env))
    await asyncio.sleep(0.8)
    await buy_signal(r, keys, token="555", n=9, side="SELL")
    await buy_signal(r, keys, token="556", n=10, side="BUY")
    res = await follow
    assert res.exit_code == 0, res.output
    [line] = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    assert (line["token_id"], line["side"]) == ("555", "SELL")
    assert line["entry_id"]


async def test_events_tail_filters_by_kind_and_level(env: dict[str, str], r: aioredis.Redis, keys: Keys) -> None:
    for n, (kind, level) in enumerate([("token.queued", "info"), ("risk.short_position", "error"),
                                       ("token.reassigned", "warning"), ("control.halt", "info")]):
        await add_message(r, keys.events(), AuditEvent(id=stable_id(n), ts_event=now_ms(), ts_init=now_ms(),
                                                       producer="t", kind=kind, level=level, reason=f"why {n}"))  # type: ignore[arg-type]
    res = runner.invoke(app, ["events", "tail", "--kind", "token."], env=env)
    assert "token.queued" in res.output
    assert "token.reassigned" in res.output
    assert "control.halt" not in res.output
    res = runner.invoke(app, ["events", "tail", "--level", "warning"], env=env)
    assert "risk.short_position" in res.output
    assert "token.reassigned" in res.output
    assert "token.queued" not in res.output
    res = runner.invoke(app, ["events", "tail", "--level", "loud"], env=env)
    assert res.exit_code == 2


def test_config_check_accepts_the_example_and_names_bad_keys(tmp_path: Path) -> None:
    res = runner.invoke(app, ["config", "check", str(ROOT / "config" / "polyfleet.example.yaml")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "valid" in res.output
    assert "mode sim" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk:\n  max_notional_total: -5\n  colour: red\nscheduler: {max_concurrent_jobs: zero}\n")
    res = runner.invoke(app, ["config", "check", str(bad)], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    for key in ("risk.max_notional_total", "risk.colour: unknown key", "scheduler.max_concurrent_jobs"):
        assert key in res.output, res.output
    res = runner.invoke(app, ["config", "check", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2


def test_doctor_passes_against_sim_exchange(start_sim: Callable[..., SimExchangeProcess],
                                            redis_server: RedisServer) -> None:
    sim = start_sim()
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "COLUMNS": "250"}
    res = runner.invoke(app, ["doctor"], env=env)
    assert res.exit_code == 0, res.output
    for name in ("config", "redis", "data api", "gamma", "clob", "clock", "market websocket", "wallet",
                 "credentials", "collateral", "allowance CTF Exchange V2", "allowance Neg Risk CTF Exchange V2",
                 "allowance Neg Risk Adapter"):
        assert name in res.output, name
    assert "FAIL" not in res.output
    assert "10,000.00 pUSD" in res.output
    assert "appendonly is off" in res.output  # the test server runs without AOF: a warning, not a failure


def test_doctor_names_a_missing_funder_and_a_dead_endpoint(start_sim: Callable[..., SimExchangeProcess],
                                                           redis_server: RedisServer, tmp_path: Path) -> None:
    sim = start_sim()
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "COLUMNS": "250",
           "PF__POLYMARKET__WALLET": "safe"}
    res = runner.invoke(app, ["doctor"], env=env)
    assert res.exit_code == 1
    assert "needs polymarket.wallet_address" in res.output
    env = {**env, "PF__POLYMARKET__WALLET": "eoa", "PF__POLYMARKET__URL_OVERRIDES": "{gamma_url: 'http://127.0.0.1:1/gamma'}",
           "PF_REDIS_URL": "redis://127.0.0.1:1/0"}
    res = runner.invoke(app, ["doctor"], env=env)
    assert res.exit_code == 1
    assert "127.0.0.1:1/gamma" in res.output
    assert "set PF_REDIS_URL" in res.output
