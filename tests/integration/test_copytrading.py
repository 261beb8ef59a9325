"""Copy trading through the orchestrator with a real Redis (docs/copytrading.md): a percent-sized
copy, a leader's partial sell becoming a fractional EXIT, and the slippage guard skipping a copy
with its reason. Workers are simulated the way tests/integration/test_orchestrator.py does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from services.orchestrator.service import OrchestratorService
from services.signal_collector.budget import RequestBudget
from services.signal_collector.values import refresh_values
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import Keys
from shared.messages import AuditEvent, Command, SessionReport, Signal, decode, stable_id
from shared.redisio import add_message
from shared.ticks import Tick
from shared.venue.data_api import parse_value

LEADER = "0x" + "c" * 40
TOKEN, GUARDED = "111222333", "444555666"


def settings() -> Settings:
    return Settings.model_validate({
        "scheduler": {"poll_interval_seconds": 0.01},
        "copytrade": {"copy": {"sizing": "percent", "percent": 10, "max_slippage_bps": 300, "budget_usd": 100},
                      "targets": [{"account": LEADER}]},
    })


def signal(side: str, token: str, size: float, price: float, n: int = 0) -> Signal:
    return Signal(id=stable_id("copy", side, token, n), ts_event=now_ms(), ts_init=now_ms(), producer="test",
                  side=side, token_id=token, account=LEADER, size=size, price=price, source="poll")  # type: ignore[arg-type]


async def book(r: aioredis.Redis, keys: Keys, token: str, ask: float, ask_size: float) -> None:
    tick = Tick(token, 1, ask - 0.02, ask, 100.0, ask_size, None, 0.01, now_ms(), now_ms())
    await r.hset(keys.book(token), mapping=tick.to_hash())


async def steps(svc: OrchestratorService, n: int = 3) -> None:
    for _ in range(n):
        await svc.step(block_ms=10)


async def commands(r: aioredis.Redis, keys: Keys) -> list[Command]:
    return [decode(f) for _, f in await r.xrange(keys.cmd("w1"))]  # type: ignore[misc]


async def events(r: aioredis.Redis, keys: Keys, kind: str) -> list[AuditEvent]:
    out = [decode(f) for _, f in await r.xrange(keys.events())]
    return [e for e in out if isinstance(e, AuditEvent) and e.kind == kind]


async def test_percent_copy_fractional_exit_and_guard_skip(r: aioredis.Redis, keys: Keys) -> None:
    await r.hset(keys.worker("w1"), mapping={"capacity": 10, "load": 0, "ready": 1})
    await r.sadd(keys.workers(), "w1")
    await r.set(keys.worker_lease("w1"), "1", px=60_000)
    svc = OrchestratorService(settings(), "o1", r)

    # percent: 10 % of the leader's 400 x 0.50 = $20 -> 40 shares; the book (ask 0.51, 200 deep) passes the guard
    await book(r, keys, TOKEN, 0.51, 200)
    await add_message(r, keys.signals(), signal("BUY", TOKEN, 400, 0.50))
    await steps(svc)
    [start] = await commands(r, keys)
    assert (start.action, start.token_id) == ("START", TOKEN)
    assert start.params["maker_strategy"]["order_size"] == pytest.approx(40.0)
    assert float(await r.hget(keys.copy_exposure(), f"@{LEADER}")) == pytest.approx(20.0)

    # the guard: best ask 0.56 is 1200 bps over the leader's 0.50 (limit 300): skipped with the reason
    await book(r, keys, GUARDED, 0.56, 500)
    await add_message(r, keys.signals(), signal("BUY", GUARDED, 400, 0.50))
    await steps(svc)
    [skip] = [e for e in await events(r, keys, "signal.ignored") if e.token_id == GUARDED]
    assert "slippage guard: best ask 0.5600 is 1200 bps over the leader's 0.5000" in skip.reason
    assert not await r.exists(keys.token(GUARDED))
    assert len(await commands(r, keys)) == 1  # nothing started for it

    # the leader sells 160 of its 400 (40 %): EXIT with fraction 0.4; the session runs on
    await add_message(r, keys.sessions(), SessionReport(
        id="s1", ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=TOKEN, epoch=1, worker="w1",
        status="started"))
    await add_message(r, keys.signals(), signal("SELL", TOKEN, 160, 0.55))
    await steps(svc)
    exit_cmd = (await commands(r, keys))[-1]
    sell_id = signal("SELL", TOKEN, 160, 0.55).id
    assert (exit_cmd.action, exit_cmd.params) == ("EXIT", {"fraction": pytest.approx(0.4), "trim_id": sell_id})
    # and it rides in the token's START params: a worker that dies before doing it leaves it to the next
    assert json.loads(await r.hget(keys.token(TOKEN), "params"))["trims"] == [[sell_id, pytest.approx(0.4)]]
    assert await r.hget(keys.token(TOKEN), "state") == "running"
    assert float(await r.hget(keys.copy_exposure(), f"@{LEADER}")) == pytest.approx(12.0)  # 60 % of $20 open

    # the leader sells the rest (240 of 240): a full exit, and the leader's budget frees when it closes
    await add_message(r, keys.signals(), signal("SELL", TOKEN, 240, 0.56, n=1))
    await steps(svc)
    last = (await commands(r, keys))[-1]
    assert (last.action, last.params) == ("EXIT", {})
    assert await r.hget(keys.token(TOKEN), "state") == "exiting"
    await add_message(r, keys.sessions(), SessionReport(
        id="s2", ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=TOKEN, epoch=1, worker="w1",
        status="closed"))
    await steps(svc)
    assert await r.hget(keys.copy_exposure(), f"@{LEADER}") is None
    assert await r.hget(keys.copy_exposure(), TOKEN) is None


async def test_leader_values_read_into_redis_for_proportional_sizing(r: aioredis.Redis, keys: Keys,
                                                                     start_sim: Callable[..., Any]) -> None:
    """The collector's value refresh asks the Data API /value of proportional leaders only."""
    sim = start_sim()
    other = "0x" + "d" * 40
    cfg = Settings.model_validate({"copytrade": {
        "bankroll_usd": 1000, "targets": [{"account": LEADER, "copy": {"sizing": "proportional"}}, {"account": other}],
    }}).copytrade
    budget = RequestBudget(4, 100)
    async with httpx.AsyncClient(timeout=5) as http:
        # a 429 on /value: a verdict on our IP, so the whole Data API budget (the polls too) pauses
        httpx.post(f"{sim.url}/_sim/fault", json={"kind": "http_429", "count": 1, "retry_after": 2,
                                                    "path_prefix": "/data-api/value"}, timeout=5).raise_for_status()
        assert await refresh_values(r, keys, http, f"{sim.url}/data-api", cfg, budget) == {}
        assert budget.paused_for() > 0
        assert not await r.exists(keys.leader_value())
        got = await refresh_values(r, keys, http, f"{sim.url}/data-api", cfg, RequestBudget(4, 100))
    assert got == {LEADER: 0.0}  # a wallet with nothing held in the sim is worth 0: proportional then skips
    assert await r.hgetall(keys.leader_value()) == {LEADER: "0.0"}


def test_value_reply_parsed() -> None:
    assert parse_value([{"user": LEADER.upper().replace("0X", "0x"), "value": "1234.5"}], LEADER) == 1234.5
    assert parse_value([{"user": LEADER, "value": "nan"}], LEADER) is None
    assert parse_value([], LEADER) is None
