"""``polyfleet`` read and operations commands against a real Redis (and, for doctor, a real
sim_exchange process): status, signals tail, events tail, config check, doctor."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from eth_account import Account
from typer.testing import CliRunner

from cli.main import app
from harness import ROOT, RedisServer, SimExchangeProcess
from services.sim_exchange.auth import derive_key
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

    # The real command, followed until it prints: new signals are sent only once it blocks in XREAD
    # (sent earlier, they would be history to it and not shown), however late it starts.
    follow = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "signals", "tail", "-n", "0", "-f", "--json", "--side", "SELL",
        cwd=ROOT, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE)
    try:
        await wait_for(lambda: _following(r), timeout=30)
        await buy_signal(r, keys, token="556", n=10, side="BUY")  # filtered out: the next line is the SELL
        await buy_signal(r, keys, token="555", n=9, side="SELL")
        assert follow.stdout is not None
        line = json.loads(await asyncio.wait_for(follow.stdout.readline(), 30))
        assert (line["token_id"], line["side"]) == ("555", "SELL")
        assert line["entry_id"]
    finally:
        follow.terminate()
        await follow.wait()


async def _following(r: aioredis.Redis) -> bool:
    return any(c.get("cmd") == "xread" for c in await r.client_list())


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


def _doctor_env(sim: SimExchangeProcess, redis_server: RedisServer, **extra: str) -> dict[str, str]:
    return {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "COLUMNS": "400",
            "PF_PRIVATE_KEY": "", **extra}


def _lines(output: str, name: str) -> list[str]:
    """The doctor table's rows whose check is ``name`` (or starts with it)."""
    return [line for line in output.splitlines() if line.strip("│ ").startswith(name)]


def test_setup_wallet_then_doctor_passes_against_sim_exchange(start_sim: Callable[..., SimExchangeProcess],
                                                              redis_server: RedisServer) -> None:
    sim = start_sim()
    key = Account.create()
    env = _doctor_env(sim, redis_server, PF_PRIVATE_KEY=key.key.hex(), PF__POLYMARKET__WALLET="deposit")
    before = runner.invoke(app, ["doctor"], env=env)
    assert before.exit_code == 1, before.output
    assert "warn" in _lines(before.output, "wallet deployed")[0]  # created at service start, or by setup-wallet
    missing = _lines(before.output, "approval ")
    assert len(missing) == 13
    assert all("FAIL" in line and "polyfleet setup-wallet" in line for line in missing)

    res = runner.invoke(app, ["setup-wallet"], env=env)
    assert res.exit_code == 0, res.output
    assert "is not deployed: creating it through the relayer" in res.output
    assert "created through the relayer" in res.output
    assert res.output.count("approved: ") == 13
    again = runner.invoke(app, ["setup-wallet"], env=env)  # reads first: nothing sent twice
    assert again.exit_code == 0, again.output
    assert "approved: " not in again.output
    assert "13 contracts; 0 sent now" in again.output

    res = runner.invoke(app, ["doctor"], env=env)
    assert res.exit_code == 0, res.output
    for name in ("config", "redis", "data api", "gamma", "clob", "clock", "market websocket", "wallet",
                 "wallet deployed", "api key", "collateral", "approval pUSD -> ExchangeV3",
                 "approval pUSD -> Router", "approval PositionManager -> Router",
                 "approval Conditional Tokens -> NegRiskAdapter", "approval pUSD -> collateral adapter"):
        assert _lines(res.output, name), name
    assert "FAIL" not in res.output
    assert "signature type 3" in _lines(res.output, "wallet")[0]
    assert f"bound to signer {key.address}" in _lines(res.output, "api key")[0]
    assert "10,000.00 pUSD" in res.output
    assert "appendonly is off" in res.output  # the test server runs without AOF: a warning, not a failure


@pytest.mark.parametrize(("setup", "line", "fix"), [
    ({"PF__POLYMARKET__WALLET": "proxy"}, "wallet deployed", "log in to polymarket.com"),
    ({"PF__POLYMARKET__WALLET": "safe", "PF__POLYMARKET__WALLET_ADDRESS": "0x" + "ab" * 20}, "wallet",
     "leave polymarket.wallet_address empty"),
    ("api_key", "api key", "unset PF_CLOB_API_KEY"),
])
def test_doctor_names_each_bad_setup_and_its_fix(start_sim: Callable[..., SimExchangeProcess],
                                                  redis_server: RedisServer, setup: Any, line: str, fix: str) -> None:
    sim = start_sim()
    if setup == "api_key":  # credentials the sim issued to another signer
        creds = derive_key(Account.create().address, 0)
        setup = {"PF_CLOB_API_KEY": creds.key, "PF_CLOB_API_SECRET": creds.secret,
                 "PF_CLOB_API_PASSPHRASE": creds.passphrase}
    res = runner.invoke(app, ["doctor"], env=_doctor_env(sim, redis_server, PF_PRIVATE_KEY=Account.create().key.hex(),
                                                          **setup))
    assert res.exit_code == 1, res.output
    [bad] = [x for x in _lines(res.output, line) if "FAIL" in x]
    assert fix in bad
    assert res.output.count("FAIL") == 1 + (13 if line != "wallet" else 0)  # the bad setup, and no approvals yet
    if setup.get("PF__POLYMARKET__WALLET") == "proxy":  # setup-wallet cannot fix it either: same fix, exit 1
        out = runner.invoke(app, ["setup-wallet"], env=_doctor_env(sim, redis_server, **setup))
        assert out.exit_code == 1
        assert "fix: log in to polymarket.com" in " ".join(out.output.split())


def test_doctor_names_a_dead_endpoint_and_redis(start_sim: Callable[..., SimExchangeProcess],
                                                redis_server: RedisServer) -> None:
    sim = start_sim()
    env = _doctor_env(sim, redis_server, PF__POLYMARKET__URL_OVERRIDES="{gamma_url: 'http://127.0.0.1:1/gamma'}",
                      PF_REDIS_URL="redis://127.0.0.1:1/0")
    res = runner.invoke(app, ["doctor"], env=env)
    assert res.exit_code == 1
    assert "127.0.0.1:1/gamma" in res.output
    assert "set PF_REDIS_URL" in res.output
