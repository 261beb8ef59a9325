"""A failed redemption keeps its backoff over a redeemer restart (its ``pf:redeem:status`` entry is
the schedule), the operator sees it (``polyfleet redemptions``, ``GET /api/redemptions``) and
retries it now (``polyfleet redemptions --retry``: a control request the orchestrator applies), and
the redemption's status goes once it is booked. A real sim_exchange (the fleet's EOA holds both
outcomes of a market, split on chain; the first redeem reverts), the orchestrator, the redeemer and
Redis; the flagged positions are written as the orchestrator writes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app as cli
from harness import RedisServer, SimExchangeProcess, eventually, running, sim_get, sim_post, write_config
from services.orchestrator.service import OrchestratorService
from services.redeemer.service import RedeemerService
from shared.clock import now_ms
from shared.config import Settings, load_secrets, load_settings
from shared.keys import Keys
from shared.messages import Redemption
from shared.redisio import add_message
from shared.venue.environment import fetch_sim_environment, resolve_environment
from shared.venue.positions import Positions
from shared.venue.wallet_setup import open_trading_account
from tests.integration.api_support import client, make_app

SHARES = 10.0
BACKOFF_SEC = 600  # far longer than the test: only the operator's retry can make it due


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": {"markets": 2, "v2_share": 0.0, "volatility": 0.0}})


async def _orchestrate(svc: OrchestratorService) -> None:
    while not svc.stopping:
        await svc.step(block_ms=20)


async def _status(r: aioredis.Redis, keys: Keys, cid: str) -> dict[str, Any]:
    raw = await r.hget(keys.redeem_status(), cid)
    return json.loads(raw) if raw else {}


async def test_a_failed_redemption_keeps_its_backoff_over_a_restart_and_the_operator_retries_it(
        tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, keys: Keys, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    config = write_config(tmp_path / "polyfleet.yaml", sim.port, {
        "polymarket": {"wallet": "eoa"}, "scheduler": {"poll_interval_sec": 0.05},
        "redeemer": {"check_interval_sec": 0.1, "retry_initial_sec": BACKOFF_SEC, "retry_max_sec": BACKOFF_SEC,
                     "receipt_timeout_sec": 2.0}})
    settings = load_settings(config, environ={})
    env = await resolve_environment(settings.polymarket, settings.mode)
    m = next(m for m in await sim_get(sim, "/_sim/markets") if not m["neg_risk"])
    cid, (yes, no) = m["condition_id"], [t["token_id"] for t in m["tokens"]]
    opened = await open_trading_account(settings, load_secrets(), env)
    try:  # the fleet's wallet holds 10 YES and 10 NO
        await Positions(opened.account.client, env.address("neg_risk_adapter")).split(cid, SHARES, "v1")
    finally:
        await opened.account.close()
    address = opened.info.address.lower()
    await sim_post(sim, "/_sim/resolve", {"condition_id": cid, "winner": "Yes"})
    for token, won in ((yes, True), (no, False)):  # what the orchestrator flags at the resolution
        await r.hset(keys.token(token), mapping={"state": "done", "market_version": "v1"})
        await r.hset(keys.redeemable(), token, json.dumps({"condition_id": cid, "token_id": token, "won": won,
                                                            "market_version": "v1", "neg_risk": False,
                                                            "resolved_at": now_ms()}))
    await sim_post(sim, "/_sim/rpc/fault", {"kind": "revert", "count": 1})
    target = (await fetch_sim_environment(sim.url)).address("collateral_adapter").lower()

    async def redeems() -> list[int]:
        return [t["status"] for t in await sim_get(sim, "/_sim/rpc/txs", address=address)
                if t["to"].lower() == target and "redeem" in t["call"]]

    orchestrator = OrchestratorService(settings, "o1", r)
    orchestrating = asyncio.create_task(_orchestrate(orchestrator))
    cli_env = {"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "PF_CONFIG": str(config), "COLUMNS": "250"}
    runner = CliRunner()
    try:
        async with running(RedeemerService(settings, "r1", redis=r)):
            failed = await eventually(lambda: _failed(r, keys, cid), what="the first redeem reverted")
        assert await redeems() == [0]
        assert failed["attempts"] == 1
        assert {t["token_id"]: (t["won"], t["shares"]) for t in failed["tokens"]} == {yes: (True, SHARES),
                                                                                     no: (False, SHARES)}
        assert failed["next_at"] >= failed["tried_at"] + 0.9 * BACKOFF_SEC * 1000
        # a new process: it reads the schedule and leaves the market alone until then
        async with running(RedeemerService(settings, "r2", redis=r)) as restarted:
            await eventually(lambda: _checks(restarted, 5), what="five checks of the restarted redeemer")
            assert await redeems() == [0]
            assert (await _status(r, keys, cid))["attempts"] == 1
            # the operator sees it: the CLI (table and JSON) and the API agree
            shown = await asyncio.to_thread(runner.invoke, cli, ["redemptions"], env=cli_env)
            assert shown.exit_code == 0, shown.output
            for said in ("failed", cid[:8], "reverted"):
                assert said in shown.output, shown.output
            listed = json.loads((await asyncio.to_thread(runner.invoke, cli, ["redemptions", "--json"],
                                                         env=cli_env)).output)["redemptions"]
            async with client(make_app(r, keys)) as http:
                api = (await http.get("/api/redemptions")).json()["redemptions"]
                assert (await http.post(f"/api/redemptions/0x{'e' * 64}/retry", json={})).status_code == 404
            assert [(v["condition_id"], v["state"], v["attempts"]) for v in api] == [(cid, "failed", 1)]
            assert listed == api
            # ... and retries it now, through the orchestrator
            asked = await asyncio.to_thread(runner.invoke, cli, ["redemptions", "--retry", cid], env=cli_env)
            assert (asked.exit_code, "applied" in asked.output) == (0, True), asked.output
            await eventually(lambda: _booked(r, keys, cid), timeout=15, what="retried, redeemed and booked")
        assert await redeems() == [0, 1]
        [op] = [o for o in await sim_get(sim, "/_sim/ctf/ops", address=address) if o["kind"] == "redeem"]
        assert (op["market"], op["amount"]) == (cid, SHARES)  # the winning 10 shares paid $10, once
        gone = await asyncio.to_thread(runner.invoke, cli, ["redemptions"], env=cli_env)
        assert "no redemptions pending" in gone.output, gone.output
        nothing = await asyncio.to_thread(runner.invoke, cli, ["redemptions", "--retry", cid], env=cli_env)
        assert (nothing.exit_code, "not pending" in nothing.output) == (2, True), nothing.output
    finally:
        orchestrator.stop()
        await asyncio.wait_for(orchestrating, 10)


async def _failed(r: aioredis.Redis, keys: Keys, cid: str) -> dict[str, Any] | None:
    st = await _status(r, keys, cid)
    return st if st.get("state") == "failed" else None


async def _checks(svc: RedeemerService, n: int) -> bool:
    return svc.counts["checks"] >= n


async def _booked(r: aioredis.Redis, keys: Keys, cid: str) -> bool:
    return not await r.exists(keys.redeemable()) and not await r.hexists(keys.redeem_status(), cid)


async def test_the_orchestrator_deletes_a_markets_status_once_every_token_of_it_is_booked(
        r: aioredis.Redis, keys: Keys) -> None:
    """The redeemer reports every token of a market together; booking the first must leave the
    status (the market is still flagged: deleting it would have the redeemer redeem it afresh),
    booking the last deletes it and the operator's retry with it."""
    cid, tokens = "0x" + "ab" * 32, ("701", "702")
    svc = OrchestratorService(Settings(), "o1", r)
    for token in tokens:
        await r.hset(keys.token(token), mapping={"state": "done", "market_version": "v1"})
        await r.hset(keys.redeemable(), token, json.dumps({"condition_id": cid, "token_id": token,
                                                            "won": token == "701", "market_version": "v1"}))
    await r.hset(keys.redeemable(), "799", json.dumps({"condition_id": "0x" + "cd" * 32, "won": True}))
    await r.hset(keys.redeem_status(), cid, json.dumps({"state": "redeemed", "tokens": []}))
    await r.hset(keys.redeem_retry(), cid, now_ms())
    for n, token in enumerate(tokens):
        await add_message(r, keys.redemptions(), Redemption(
            id=f"red-{token}", ts_event=now_ms(), ts_init=now_ms(), producer="redeemer:r1", token_id=token,
            condition_id=cid, won=token == "701", shares=0.0, payout=0.0, tx_hash="0x1", market_version="v1"))
        await eventually(lambda t=token: _unflagged(svc, r, keys, t), what=f"the redemption of {token} booked")
        assert await r.hexists(keys.redeem_status(), cid) == (n == 0)
        assert await r.hexists(keys.redeem_retry(), cid) == (n == 0)
    assert await r.hexists(keys.redeemable(), "799")  # another market's entry is not this one's business


async def _unflagged(svc: OrchestratorService, r: aioredis.Redis, keys: Keys, token: str) -> bool:
    await svc.step(block_ms=10)
    return not await r.hexists(keys.redeemable(), token)
