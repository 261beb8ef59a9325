"""The orchestrator service driven step by step against a real Redis (workers are simulated by
writing their registration, lease and reports the way maker_worker does)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.orchestrator.service import OrchestratorService
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.messages import Fill, SessionReport, Signal, decode, stable_id
from shared.redisio import add_message

TOKEN = "1234567890"


def settings(**over: object) -> Settings:
    base: dict[str, object] = {"scheduler": {"poll_interval_seconds": 0.01}, "cooldown": {"cooldown_sec_per_token": 30}}
    base.update(over)
    return Settings.model_validate(base)


async def register_worker(r: aioredis.Redis, keys: Keys, wid: str, capacity: int = 10) -> None:
    await r.hset(keys.worker(wid), mapping={"capacity": capacity, "load": 0})
    await r.sadd(keys.workers(), wid)
    await r.set(keys.worker_lease(wid), "1", px=60_000)


def signal(side: str, token: str = TOKEN, n: int = 0) -> Signal:
    return Signal(id=stable_id(side, token, n), ts_event=now_ms(), ts_init=now_ms(), producer="test", side=side,  # type: ignore[arg-type]
                  token_id=token, account="0x" + "a" * 40, size=20, price=0.5, source="poll", slug="some-slug")


def report(status: str, worker: str, epoch: int, token: str = TOKEN, position: float = 0.0) -> SessionReport:
    return SessionReport(id=stable_id(status, token, epoch), ts_event=now_ms(), ts_init=now_ms(), producer=worker,
                         token_id=token, epoch=epoch, worker=worker, status=status, position=position)  # type: ignore[arg-type]


async def commands(r: aioredis.Redis, keys: Keys, wid: str) -> list[tuple[str, str, int]]:
    out = []
    for _, fields in await r.xrange(keys.cmd(wid)):
        m = decode(fields)
        out.append((m.action, m.token_id, m.epoch))  # type: ignore[attr-defined]
    return out


async def steps(svc: OrchestratorService, n: int = 3) -> None:
    for _ in range(n):
        await svc.step(block_ms=10)


async def test_buy_runs_on_a_worker_and_sell_releases_the_token(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), signal("BUY"))
    await steps(svc)
    assert await commands(r, keys, "w1") == [("START", TOKEN, 1)]
    token = await r.hgetall(keys.token(TOKEN))
    assert (token["state"], token["owner"], token["epoch"]) == ("starting", "w1", "1")
    assert await r.sismember(keys.gw_want(REQUESTER_ORCHESTRATOR), TOKEN)

    await add_message(r, keys.sessions(), report("started", "w1", 1))
    await add_message(r, keys.fills(), Fill(id="f1", ts_event=1, ts_init=1, producer="w1", token_id=TOKEN, epoch=1,
                                            worker="w1", order_id="o", side="BUY", price=0.5, size=10))
    await steps(svc)
    token = await r.hgetall(keys.token(TOKEN))
    assert (token["state"], float(token["position"])) == ("running", 10.0)
    assert float(await r.hget(keys.exposure(), "_total")) == pytest.approx(5.0)

    await add_message(r, keys.signals(), signal("SELL"))
    await steps(svc)
    assert (await commands(r, keys, "w1"))[-1] == ("EXIT", TOKEN, 1)
    assert await r.hget(keys.token(TOKEN), "state") == "exiting"

    await add_message(r, keys.sessions(), report("closed", "w1", 1))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    assert await r.sismember(keys.handled(), TOKEN)
    assert await r.exists(keys.cooldown(TOKEN))
    assert not await r.sismember(keys.gw_want(REQUESTER_ORCHESTRATOR), TOKEN)

    # A repeated BUY for a handled token changes nothing and says why.
    await add_message(r, keys.signals(), signal("BUY", n=2))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    last = decode((await r.xrevrange(keys.events(), count=1))[0][1])
    assert last.kind == "signal.ignored"  # type: ignore[attr-defined]
    assert "already handled" in last.reason  # type: ignore[attr-defined]


async def test_blacklisted_token_is_rejected_with_its_reason(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(risk={"blacklist_token_keys": ["some-slug"]}), "o1", r)
    await add_message(r, keys.signals(), signal("BUY"))
    await steps(svc)
    assert await commands(r, keys, "w1") == []
    assert await r.hget(keys.token(TOKEN), "state") == "rejected"
    kinds = [(f["kind"], f["reason"]) for _, f in await r.xrange(keys.events())]
    assert ("token.rejected", "blacklisted: some-slug is in risk.blacklist_token_keys") in kinds


async def test_concurrency_limit_queues_and_starts_in_signal_order(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(scheduler={"max_concurrent_jobs": 2, "poll_interval_seconds": 0.01}), "o1", r)
    for i in range(5):
        await add_message(r, keys.signals(), signal("BUY", token=f"t{i}"))
    await steps(svc, 5)
    assert [c[1] for c in await commands(r, keys, "w1")] == ["t0", "t1"]
    assert await r.scard(keys.tokens_in_state("queued")) == 3
    await add_message(r, keys.sessions(), report("closed", "w1", 1, token="t0"))
    await steps(svc, 3)
    assert [c[1] for c in await commands(r, keys, "w1")] == ["t0", "t1", "t2"]


async def test_dead_worker_tokens_move_to_a_live_worker_under_a_new_epoch(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), signal("BUY"))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "owner") == "w1"
    await register_worker(r, keys, "w2")
    await r.delete(keys.worker_lease("w1"))  # w1's lease expired
    await steps(svc)
    token = await r.hgetall(keys.token(TOKEN))
    assert (token["owner"], token["epoch"]) == ("w2", "2")
    assert await commands(r, keys, "w2") == [("START", TOKEN, 2)]
    # A late report from the fenced owner is recorded as stale and changes nothing.
    await add_message(r, keys.sessions(), report("closed", "w1", 1))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "starting"


async def test_a_redelivered_signal_applies_once(r: aioredis.Redis, keys: Keys) -> None:
    """Crash between reading and acking: the entry is re-read, its effects apply once."""
    await register_worker(r, keys, "w1")
    await add_message(r, keys.signals(), signal("BUY"))
    first = OrchestratorService(settings(), "o1", r)
    await first._setup()
    entries = await first.consumer.read(block_ms=10)
    assert len(entries) == 1  # read, never handled nor acked: the process "died" here
    again = OrchestratorService(settings(), "o1", r)  # restarted under the same consumer name
    await steps(again)
    await steps(again)
    assert await commands(r, keys, "w1") == [("START", TOKEN, 1)]
    queued = [f for _, f in await r.xrange(keys.events()) if f["kind"] == "token.queued"]
    assert len(queued) == 1
