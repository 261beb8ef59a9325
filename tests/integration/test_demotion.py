"""Auto-demotion through the orchestrator with a real Redis (docs/copytrading.md "Auto-demotion"):
a leader whose copies breach the PnL floor is paused (hash entry, ``leader.paused`` event), its
next BUY is ignored with the reason while its SELL still exits our copy, it stays paused, and a
``leader_resume`` control request lets its next BUY through; ``polyfleet leaders resume`` of a
wallet that is not paused exits 2 and writes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app
from harness import RedisServer
from harness.waiting import eventually
from services.orchestrator.service import OrchestratorService
from shared.clock import now_ms
from shared.config import Settings
from shared.control import control_request
from shared.keys import Keys
from shared.messages import AuditEvent, Command, SessionReport, Signal, decode, stable_id
from shared.redisio import add_message

LEADER, OTHER = "0x" + "c" * 40, "0x" + "e" * 40
HELD, BLOCKED, AFTER = "100200300", "400500600", "700800900"


def settings() -> Settings:
    return Settings.model_validate({
        "scheduler": {"poll_interval_seconds": 0.01},
        "copytrade": {"targets": [{"account": LEADER}, {"account": OTHER}],
                      "demotion": {"pnl_floor_usd": -10, "pnl_last_copies": 3, "check_interval_sec": 1}},
    })


def signal(side: str, token: str, account: str = LEADER, n: int = 0) -> Signal:
    return Signal(id=stable_id("demote", side, token, account, n), ts_event=now_ms(), ts_init=now_ms(),
                  producer="test", side=side, token_id=token, account=account, size=10, price=0.5,  # type: ignore[arg-type]
                  source="poll")


async def past_copies(r: aioredis.Redis, keys: Keys, account: str, pnl: float) -> None:
    """Three finished copies of ``account`` queued a minute ago, each closed with ``pnl`` (what the
    orchestrator left)."""
    for i in range(3):
        token = f"9{account[-1]}{i}"
        await r.hset(keys.token(token), mapping={"state": "done", "account": account, "source": "poll",
                                                 "position": 0, "realized_pnl": pnl, "queued_at": now_ms() - 60_000 + i})
        await r.sadd(keys.tokens_in_state("done"), token)


async def steps(svc: OrchestratorService, n: int = 3) -> None:
    for _ in range(n):
        await svc.step(block_ms=10)


async def step_until(svc: OrchestratorService, done: Callable[[], Awaitable[object]], what: str) -> None:
    async def step() -> object:
        await svc.step(block_ms=10)
        return await done()
    await eventually(step, what=what)


async def next_check(svc: OrchestratorService) -> None:
    """Step until the demotion check has run once more (check_interval_sec is 1 s)."""
    target = svc.demotion.checks + 1

    async def ran() -> bool:
        return svc.demotion.checks >= target
    await step_until(svc, ran, "the next demotion check")


async def events(r: aioredis.Redis, keys: Keys, kind: str) -> list[AuditEvent]:
    out = [decode(f) for _, f in await r.xrange(keys.events())]
    return [e for e in out if isinstance(e, AuditEvent) and e.kind == kind]


async def commands(r: aioredis.Redis, keys: Keys) -> list[Command]:
    return [decode(f) for _, f in await r.xrange(keys.cmd("w1"))]  # type: ignore[misc]


async def test_a_leader_below_the_pnl_floor_is_paused_until_resumed(r: aioredis.Redis, keys: Keys) -> None:
    await r.hset(keys.worker("w1"), mapping={"capacity": 10, "load": 0, "ready": 1})
    await r.sadd(keys.workers(), "w1")
    await r.set(keys.worker_lease("w1"), "1", px=60_000)
    svc = OrchestratorService(settings(), "o1", r)

    # a copy made before the pause, running: the leader's SELL must still exit it afterwards
    await add_message(r, keys.signals(), signal("BUY", HELD))
    await steps(svc)
    await add_message(r, keys.sessions(), SessionReport(
        id="s1", ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=HELD, epoch=1, worker="w1",
        status="started"))
    # older copies: -6, -6 and the running copy's 0 over the last 3 = -12, below the -10 floor
    await past_copies(r, keys, LEADER, -6.0)
    await past_copies(r, keys, OTHER, -3.0)  # -9: above it
    await next_check(svc)
    [paused] = await events(r, keys, "leader.paused")
    assert paused.level == "warning"
    assert paused.detail == {"account": LEADER, "by": "auto-demotion"}
    assert "copied PnL -12.00 USD over the last 3 copies is below pnl_floor_usd -10.00" in paused.reason
    entry = json.loads(await r.hget(keys.leaders_paused(), LEADER))
    assert (entry["reason"], entry["by"]) == (paused.reason, "auto-demotion")
    assert await r.hkeys(keys.leaders_paused()) == [LEADER]  # the other leader is above the floor

    # its next BUY is ignored with the reason; a SELL still exits the copy we hold
    await add_message(r, keys.signals(), signal("BUY", BLOCKED))
    await add_message(r, keys.signals(), signal("SELL", HELD))
    await steps(svc)
    [ignored] = [e for e in await events(r, keys, "signal.ignored") if e.token_id == BLOCKED]
    assert ignored.reason == f"leader paused: {paused.reason}"
    assert not await r.exists(keys.token(BLOCKED))
    assert await r.hget(keys.token(HELD), "state") == "exiting"

    # no flapping, no repeat: later checks leave the pause as it is
    await next_check(svc)
    assert len(await events(r, keys, "leader.paused")) == 1

    # resume through the control stream: the next BUY is copied, and the old losses do not pause it again
    await add_message(r, keys.control(), control_request("leader_resume", LEADER, "reviewed", requester="test"))
    await steps(svc)
    [resumed] = await events(r, keys, "leader.resumed")
    assert (resumed.reason, resumed.detail["account"]) == ("reviewed", LEADER)
    assert not await r.hexists(keys.leaders_paused(), LEADER)
    await next_check(svc)
    await add_message(r, keys.signals(), signal("BUY", AFTER))
    await steps(svc)
    assert await r.hget(keys.token(AFTER), "state") in ("queued", "starting")
    assert ("START", AFTER) in [(c.action, c.token_id) for c in await commands(r, keys)]
    assert not await r.hexists(keys.leaders_paused(), LEADER)


async def test_manual_pause_and_resume_of_an_unknown_address(r: aioredis.Redis, keys: Keys,
                                                              redis_server: RedisServer) -> None:
    svc = OrchestratorService(settings(), "o1", r)
    await steps(svc, 1)
    runner = CliRunner()
    env = {"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "PF_CONFIG": None, "COLUMNS": "200"}

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "resume", OTHER, "--no-wait"], env=env)
    assert res.exit_code == 2, res.output
    assert f"{OTHER} is not paused" in res.output
    assert await r.xlen(keys.control()) == 0  # nothing written

    # a request that reaches the orchestrator anyway (another client) changes nothing, and says so
    await add_message(r, keys.control(), control_request("leader_resume", OTHER, requester="test"))
    await steps(svc)
    [refused] = await events(r, keys, "leader.resume_refused")
    assert (refused.level, refused.reason) == ("warning", f"{OTHER} is not paused; nothing done")
    assert not await events(r, keys, "leader.resumed")
    assert not await r.exists(keys.leaders_resumed())

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "pause", "0xnope"], env=env)
    assert res.exit_code == 2
    assert "not a 0x-prefixed 40-hex-digit address" in res.output

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "pause", OTHER.upper().replace("0X", "0x"),
                                                       "--reason", "too fast", "--no-wait"], env=env)
    assert res.exit_code == 0, res.output
    assert f"{OTHER} is not a followed wallet" in res.output  # a typo would show here; paused all the same
    await steps(svc)
    entry = json.loads(await r.hget(keys.leaders_paused(), OTHER))
    assert (entry["reason"], entry["by"]) == ("too fast", "cli")
    [paused] = await events(r, keys, "leader.paused")
    assert paused.detail["by"] == "cli"

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "--json"], env=env)
    assert res.exit_code == 0, res.output
    # no config here, no signals of it: a paused wallet is listed all the same, with why
    [shown] = json.loads(res.output)["leaders"]
    assert (shown["account"], shown["followed"], shown["paused"]["reason"]) == (OTHER, False, "too fast")

    res = await asyncio.to_thread(runner.invoke, app, ["leaders", "resume", OTHER, "--no-wait"], env=env)
    assert res.exit_code == 0, res.output
    await steps(svc)
    assert not await r.hexists(keys.leaders_paused(), OTHER)


async def test_a_check_that_fails_is_logged_and_the_orchestrator_goes_on(r: aioredis.Redis, keys: Keys) -> None:
    """A scorecard the check cannot read must not stop the orchestrator: signals are still decided."""
    svc = OrchestratorService(settings(), "o1", r)
    await svc.step(block_ms=10)  # set up (the rooms exist from the first step)

    async def broken(loop_now: float) -> list[str]:
        svc.demotion._last_check = loop_now
        svc.demotion.checks += 1
        raise ValueError("a row the scorecard cannot read")

    svc.demotion.check = broken  # type: ignore[method-assign]
    await next_check(svc)
    await add_message(r, keys.signals(), signal("BUY", AFTER, account=OTHER))
    await step_until(svc, lambda: r.hget(keys.token(AFTER), "state"), "the BUY decided after the failed check")
