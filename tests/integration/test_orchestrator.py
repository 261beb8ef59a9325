"""The orchestrator service driven step by step against a real Redis (workers are simulated by
writing their registration, lease and reports the way maker_worker does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from harness import RedisServer, eventually
from services.orchestrator import intake, reports, upkeep
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.service import OrchestratorService
from shared import clock
from shared.clock import now_ms
from shared.config import Settings, load_settings
from shared.config_reload import ConfigReloader
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.messages import (
    ControlRequest,
    Fill,
    Redemption,
    Resolution,
    SessionReport,
    Signal,
    TradeStatus,
    decode,
    stable_id,
)
from shared.redisio import StreamEntry, add_message
from shared.venue.ids import v2_condition_id, v2_position_id

TOKEN = "1234567890"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Moves the orchestrator's clock ``seconds`` ahead of the real one (the time its rooms read
    when they compare an expiry, a parked close or a hand-back request with now), so a window of
    a minute passes at once, however busy the machine, and never before the test says so."""
    def advance(seconds: float) -> None:
        for room in (intake, reports, upkeep):
            monkeypatch.setattr(room, "now_ms", lambda: clock.now_ms() + int(seconds * 1000))
    return advance


def settings(**over: object) -> Settings:
    base: dict[str, object] = {"scheduler": {"poll_interval_sec": 0.01}, "cooldown": {"cooldown_sec_per_token": 30}}
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
    svc = OrchestratorService(settings(scheduler={"max_concurrent_jobs": 2, "poll_interval_sec": 0.01}), "o1", r)
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
    # the death is announced once (an error event the alerter turns into worker_dead), not per poll
    await steps(svc, 3)
    [dead] = await events(r, keys, "worker.dead")
    assert dead["level"] == "error"
    assert json.loads(dead["detail"]) == {"worker": "w1", "tokens": 1}
    assert REGISTRY.get_sample_value("polyfleet_orchestrator_events_total",
                                     {"kind": "worker.dead", "level": "error"}) >= 1  # type: ignore[operator]
    assert REGISTRY.get_sample_value("polyfleet_orchestrator_dead_workers") == 0  # its token has moved
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


# --- helpers for the rule tests --------------------------------------------------------------

async def events(r: aioredis.Redis, keys: Keys, kind: str | None = None) -> list[dict[str, str]]:
    rows = [f for _, f in await r.xrange(keys.events())]
    return [f for f in rows if kind is None or f["kind"] == kind]


async def control(r: aioredis.Redis, keys: Keys, action: str, target: str = "", **kw: object) -> None:
    req = ControlRequest(id=stable_id("ctl", action, target, now_ms()), ts_event=now_ms(), ts_init=now_ms(),
                         producer="test", action=action, target=target, **kw)  # type: ignore[arg-type]
    await add_message(r, keys.control(), req)


async def fill(r: aioredis.Redis, keys: Keys, side: str, price: float, size: float, token: str = TOKEN,
               n: int = 0, trade: str = "", status: str = "CONFIRMED") -> None:
    await add_message(r, keys.fills(), Fill(id=stable_id("fill", token, side, n), ts_event=now_ms(), ts_init=now_ms(),
                                            producer="w1", token_id=token, epoch=1, worker="w1", order_id=f"o{n}",
                                            side=side, price=price, size=size, trade_id=trade,  # type: ignore[arg-type]
                                            status=status))  # type: ignore[arg-type]


async def trade_status(r: aioredis.Redis, keys: Keys, trade: str, status: str, token: str = TOKEN) -> None:
    await add_message(r, keys.fills(), TradeStatus(
        id=stable_id("trade", trade, status), ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=token,
        epoch=1, worker="w1", trade_id=trade, status=status))  # type: ignore[arg-type]


async def figures(r: aioredis.Redis, keys: Keys, token: str = TOKEN) -> dict[str, float]:
    h = await r.hgetall(keys.token(token))
    return {k: float(h[k]) for k in ("position", "position_confirmed", "pending", "pending_buy", "pending_sell",
                                     "pending_notional", "pending_trades", "failed_trades", "exposure",
                                     "realized_pnl", "realized_pnl_confirmed")}


async def run_token(r: aioredis.Redis, keys: Keys, svc: OrchestratorService, token: str, worker: str = "w1") -> int:
    """BUY -> START -> started: returns the epoch the token runs at."""
    await add_message(r, keys.signals(), signal("BUY", token=token))
    await steps(svc)
    epoch = int(await r.hget(keys.token(token), "epoch"))
    await add_message(r, keys.sessions(), report("started", worker, epoch, token=token))
    await steps(svc)
    assert await r.hget(keys.token(token), "state") == "running"
    return epoch


# --- risk (C3) -------------------------------------------------------------------------------

async def test_concurrent_reservations_never_pass_the_total_limit(redis_server: RedisServer, keys: Keys,
                                                                  r: aioredis.Redis) -> None:
    """Twenty admissions race from twenty connections for a budget that fits three."""
    clients = [aioredis.from_url(redis_server.url, decode_responses=True) for _ in range(20)]
    try:
        books = [RiskBook(c, keys) for c in clients]
        results = await asyncio.gather(*(b.reserve(f"t{i}", 3.0, 5.0, 10.0) for i, b in enumerate(books)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(res.ok for res in results) == 3
    assert {res.refused_by for res in results if not res.ok} == {"total"}
    assert float(await r.hget(keys.reserved(), "_committed")) == pytest.approx(9.0)


async def test_reservations_are_idempotent_and_exposure_above_them_counts(r: aioredis.Redis, keys: Keys) -> None:
    book = RiskBook(r, keys)
    assert (await book.reserve("a", 4.0, 5.0, 10.0)).ok
    assert (await book.reserve("a", 4.0, 5.0, 10.0)).committed == pytest.approx(4.0)  # twice = once
    assert (await book.reserve("big", 6.0, 5.0, 100.0)).refused_by == "per_token"
    async with r.pipeline(transaction=True) as pipe:
        await book.set_exposure(pipe, "a", 7.0)  # fills above the reservation: the claim is 7
        await pipe.execute()
    assert await book.committed(r) == pytest.approx(7.0)
    assert not (await book.reserve("b", 4.0, 5.0, 10.0)).ok
    async with r.pipeline(transaction=True) as pipe:
        await book.release(pipe, "a")  # the session ended but 7 is still held: still counts
        await pipe.execute()
    assert await book.committed(r) == pytest.approx(7.0)
    async with r.pipeline(transaction=True) as pipe:
        await book.set_exposure(pipe, "a", 0.0)
        await pipe.execute()
    assert await book.committed(r) == pytest.approx(0.0)
    assert float(await r.hget(keys.exposure(), "_total")) == pytest.approx(0.0)


async def test_two_buys_cannot_both_pass_max_notional_total(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    # Each session may put 10 shares x 0.6 = 6.00 at risk; the total allows one of them.
    svc = OrchestratorService(settings(risk={"max_notional_total": 10, "max_notional_per_token": 10},
                                       maker_strategy={"order_size": 10, "buy_price_threshold": 0.6}), "o1", r)
    await add_message(r, keys.signals(), signal("BUY", token="a"))
    await add_message(r, keys.signals(), signal("BUY", token="b"))
    await steps(svc)
    assert await r.hget(keys.token("a"), "state") == "starting"
    assert await r.hget(keys.token("b"), "state") == "rejected"
    [rejected] = await events(r, keys, "token.rejected")
    assert rejected["reason"] == "committed 6.00 + 6.00 over risk.max_notional_total 10.00"
    # When a's session closes its reservation is released and b may run.
    await add_message(r, keys.sessions(), report("closed", "w1", 1, token="a"))
    await add_message(r, keys.signals(), signal("BUY", token="b", n=1))
    await steps(svc)
    assert await r.hget(keys.token("b"), "state") == "starting"


async def test_daily_loss_limit_sets_reduce_only_and_refuses_new_sessions(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(risk={"max_daily_loss": 3}), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.50, 10, n=1)
    await fill(r, keys, "SELL", 0.20, 10, n=2)  # realised -3.00
    await steps(svc)
    assert await r.get(keys.halt()) == "reduce_only"
    [limit] = await events(r, keys, "risk.daily_loss_limit")
    assert "reached -3.00" in limit["reason"]
    await control(r, keys, "resume")
    await add_message(r, keys.signals(), signal("BUY", token="other"))
    await steps(svc)
    assert await r.hget(keys.token("other"), "state") == "rejected"
    assert "risk.max_daily_loss" in (await events(r, keys, "token.rejected"))[-1]["reason"]


async def test_a_fill_delivered_twice_counts_once(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.5, 10, n=7)
    await fill(r, keys, "BUY", 0.5, 10, n=7)  # the worker retried its XADD
    await steps(svc)
    assert float(await r.hget(keys.token(TOKEN), "position")) == pytest.approx(10.0)
    assert svc.duplicates == 1


async def test_short_position_without_allow_short_is_an_error_event(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "SELL", 0.5, 5, n=1)
    await steps(svc)
    [short] = await events(r, keys, "risk.short_position")
    assert short["level"] == "error"


# --- scheduling (C5, C10) ----------------------------------------------------------------------

async def test_five_signals_two_slots_start_in_order_spaced_by_the_start_cooldown(
    r: aioredis.Redis, keys: Keys,
) -> None:
    await register_worker(r, keys, "w1", capacity=10)
    svc = OrchestratorService(settings(scheduler={"max_concurrent_jobs": 2, "poll_interval_sec": 0.01,
                                                  "topic_start_cooldown_sec": 0.3}), "o1", r)
    for i in range(5):
        await add_message(r, keys.signals(), signal("BUY", token=f"t{i}"))
    await eventually(lambda: _started(r, keys, svc, 2), timeout=5)
    assert await r.scard(keys.tokens_in_state("queued")) == 3
    await steps(svc, 20)
    assert [c[1] for c in await commands(r, keys, "w1")] == ["t0", "t1"]  # no slot: nothing more starts
    for token in ("t0", "t1"):
        await add_message(r, keys.sessions(), report("closed", "w1", 1, token=token))
    await eventually(lambda: _started(r, keys, svc, 4), timeout=5)
    assert [c[1] for c in await commands(r, keys, "w1")] == ["t0", "t1", "t2", "t3"]
    starts = [int(await r.hget(keys.token(f"t{i}"), "started_at")) for i in range(4)]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= 300 for g in gaps), gaps


async def _gone(r: aioredis.Redis, key: str) -> bool:
    return not await r.exists(key)


async def _started(r: aioredis.Redis, keys: Keys, svc: OrchestratorService, n: int) -> bool:
    await steps(svc, 1)
    return len(await commands(r, keys, "w1")) >= n


async def test_exits_wait_for_a_free_exit_slot(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(scheduler={"max_concurrent_exit_jobs": 1, "poll_interval_sec": 0.01}),
                              "o1", r)
    for t in ("a", "b", "c"):
        await run_token(r, keys, svc, t)
    for t in ("a", "b", "c"):
        await add_message(r, keys.signals(), signal("SELL", token=t))
    await steps(svc)
    exits = [c[1] for c in await commands(r, keys, "w1") if c[0] == "EXIT"]
    assert exits == ["a"]
    assert await r.zrange(keys.exits_queued(), 0, -1) == ["b", "c"]
    assert len(await events(r, keys, "token.exit_queued")) == 2
    await add_message(r, keys.sessions(), report("closed", "w1", 1, token="a"))
    await steps(svc)
    assert [c[1] for c in await commands(r, keys, "w1") if c[0] == "EXIT"] == ["a", "b"]
    assert await r.hget(keys.token("b"), "state") == "exiting"


async def test_cooldown_blocks_a_restart_until_it_expires(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(cooldown={"cooldown_sec_per_token": 60}), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await add_message(r, keys.sessions(), report("closed", "w1", epoch))
    await steps(svc)
    assert 50_000 < await r.pttl(keys.cooldown(TOKEN)) <= 60_000  # the cooldown lasts cooldown_sec_per_token
    await control(r, keys, "handled_reset", TOKEN)
    await add_message(r, keys.signals(), signal("BUY", n=1))
    await steps(svc)
    assert "cooling down" in (await events(r, keys, "token.rejected"))[-1]["reason"]
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    await r.pexpire(keys.cooldown(TOKEN), 1)  # the minute is over (Redis expires the key itself)
    await eventually(lambda: _gone(r, keys.cooldown(TOKEN)))
    await add_message(r, keys.signals(), signal("BUY", n=2))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "starting"


async def test_without_exit_ignore_cooldown_a_sold_token_may_be_bought_again(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(cooldown={"cooldown_sec_per_token": 60, "exit_ignore_cooldown": False}),
                              "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await add_message(r, keys.signals(), signal("SELL"))
    await steps(svc)
    await add_message(r, keys.sessions(), report("closed", "w1", epoch))
    await steps(svc)
    assert not await r.exists(keys.cooldown(TOKEN))


# --- ignored tokens (C4) -----------------------------------------------------------------------

async def test_a_failed_session_is_ignored_with_its_reason_until_unignored(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    rep = report("failed", "w1", epoch).model_copy(update={"reason": "RuntimeError: venue says no"})
    await add_message(r, keys.sessions(), rep)
    await steps(svc)
    assert await r.hget(keys.ignored_why(), TOKEN) == "session failed: RuntimeError: venue says no"
    assert await r.zscore(keys.ignored(), TOKEN) > now_ms()
    await add_message(r, keys.signals(), signal("BUY", n=1))
    await steps(svc)
    assert "ignored: session failed" in (await events(r, keys, "signal.ignored"))[-1]["reason"]
    await control(r, keys, "unignore", TOKEN)
    await add_message(r, keys.signals(), signal("BUY", n=2))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "starting"


async def test_ignored_entries_expire(r: aioredis.Redis, keys: Keys) -> None:
    svc = OrchestratorService(settings(), "o1", r)
    await r.zadd(keys.ignored(), {"old": now_ms() - 1, "new": now_ms() + 60_000})
    await r.hset(keys.ignored_why(), mapping={"old": "x", "new": "y"})
    await steps(svc)
    assert await r.zrange(keys.ignored(), 0, -1) == ["new"]
    assert await r.hgetall(keys.ignored_why()) == {"new": "y"}


# --- operator control ----------------------------------------------------------------------------

async def test_force_stop_fences_the_session_and_keeps_the_position(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await control(r, keys, "stop_token", TOKEN, force=True, reason="looks wrong")
    await steps(svc)
    assert (await commands(r, keys, "w1"))[-1] == ("STOP", TOKEN, epoch)
    token = await r.hgetall(keys.token(TOKEN))
    assert (token["state"], token["owner"]) == ("done", "")  # an empty owner fences the old session
    assert "looks wrong (forced" in (await events(r, keys, "token.stopped"))[0]["reason"]


async def test_graceful_stop_exits(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await control(r, keys, "stop_token", TOKEN)
    await steps(svc)
    assert (await commands(r, keys, "w1"))[-1] == ("EXIT", TOKEN, epoch)


async def test_halt_stops_everything_and_resume_restarts_it(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, "a")
    await run_token(r, keys, svc, "b")
    await add_message(r, keys.signals(), signal("SELL", token="b"))
    await steps(svc)
    await control(r, keys, "halt", reason="market gone mad")
    await add_message(r, keys.signals(), signal("BUY", token="c"))
    await steps(svc)
    stops = [c for c in await commands(r, keys, "w1") if c[0] == "STOP"]
    assert sorted(stops) == [("STOP", "a", 1), ("STOP", "b", 1)]
    assert await r.smembers(keys.tokens_in_state("queued")) == {"a", "b"}
    assert await r.hget(keys.token("c"), "state") == "rejected"
    await steps(svc, 5)
    assert len(await commands(r, keys, "w1")) == 5  # 2 START, 1 EXIT, 2 STOP: nothing new while halted

    await control(r, keys, "resume")
    await steps(svc, 3)
    cmds = await commands(r, keys, "w1")
    assert ("START", "a", 2) in cmds
    assert ("START", "b", 2) in cmds
    assert ("EXIT", "b", 2) in cmds  # b was exiting: it resumes its exit
    assert await r.hget(keys.token("b"), "state") == "exiting"


async def test_reduce_only_lets_exits_run_but_starts_nothing(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, "a")
    await control(r, keys, "halt", "reduce_only")
    await add_message(r, keys.signals(), signal("SELL", token="a"))
    await add_message(r, keys.signals(), signal("BUY", token="b"))
    await steps(svc)
    assert (await commands(r, keys, "w1"))[-1] == ("EXIT", "a", 1)
    assert await r.hget(keys.token("b"), "state") == "rejected"


async def test_drain_hands_tokens_to_another_worker(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await register_worker(r, keys, "w2")
    await control(r, keys, "drain_worker", "w1")
    await steps(svc)
    assert await r.hget(keys.worker("w1"), "draining") == "1"
    stop = [fields for _, fields in await r.xrange(keys.cmd("w1")) if fields["action"] == "STOP"]
    assert len(stop) == 1
    assert json.loads(stop[0]["params"]) == {"hand_back": True}
    await add_message(r, keys.sessions(), report("handed_back", "w1", epoch))
    await steps(svc)
    assert (await r.hget(keys.token(TOKEN), "owner"), await r.hget(keys.token(TOKEN), "epoch")) == ("w2", "2")
    # a drained worker takes nothing new
    await add_message(r, keys.signals(), signal("BUY", token="new"))
    await steps(svc)
    assert await r.hget(keys.token("new"), "owner") == "w2"


async def test_a_lone_restarted_worker_gets_its_handed_back_token_again_under_a_new_epoch(
    r: aioredis.Redis, keys: Keys,
) -> None:
    # one worker, restarted under its id inside its lease: it hands back what it inherited, and no
    # other worker exists, so the token goes back to it (fenced by the new epoch), not orphaned
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await add_message(r, keys.sessions(), report("handed_back", "w1", epoch))
    await steps(svc)
    assert (await r.hget(keys.token(TOKEN), "owner"), await r.hget(keys.token(TOKEN), "epoch")) == ("w1", str(epoch + 1))
    assert ("START", TOKEN, epoch + 1) in await commands(r, keys, "w1")
    assert await events(r, keys, "token.orphaned") == []


async def test_a_closed_report_read_before_its_fills_waits_for_them(r: aioredis.Redis, keys: Keys) -> None:
    # A restarted orchestrator catching up reads pf:sessions before pf:fills in one read: the
    # report (position 0 after BUY 20, SELL 20) comes first. Closing at once would set position 0
    # and the late SELL would take it to -20 (soak finding).
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    assert epoch == 1  # fill() writes epoch-1 fills
    closed = report("closed", "w1", epoch).model_copy(update={"fills": 2})
    await fill(r, keys, "BUY", 0.50, 20, n=0)
    await steps(svc)
    assert float(await r.hget(keys.token(TOKEN), "position")) == 20
    await fill(r, keys, "SELL", 0.55, 20, n=1)  # XADDed before the report by the worker ...
    await add_message(r, keys.sessions(), closed)
    entries = await svc.consumer.read(count=500, block_ms=10)
    assert [type(e.message).__name__ for e in entries] == ["SessionReport", "Fill"]  # ... read after it here
    await svc.handle_batch(entries)
    token = await r.hgetall(keys.token(TOKEN))
    assert (token["state"], float(token["position"])) == ("done", 0.0)
    assert float(token["realized_pnl"]) == pytest.approx(1.0)  # 20 x (0.55 - 0.50): the late fill still counts
    assert await events(r, keys, "risk.short_position") == []
    assert len(await events(r, keys, "session.close_waiting")) == 1
    assert await r.hlen(keys.closing()) == 0


async def test_a_worker_whose_lease_returns_before_the_move_keeps_its_tokens(r: aioredis.Redis, keys: Keys) -> None:
    """H3: a worker that was only slow (Redis restarted, a long pause) renews and checks ownership
    again before it sends. A move decided from an older read of its lease must not commit after
    that renewal, or the old owner's order and the new owner's both reach the venue."""
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await register_worker(r, keys, "w2")
    await r.delete(keys.worker_lease("w1"))  # lapsed...
    read_views = svc.views.workers

    async def views_then_renewal() -> list:  # type: ignore[type-arg]
        views = await read_views()  # ...when the orchestrator reads the fleet...
        await r.set(keys.worker_lease("w1"), "1", px=60_000)  # ...and renewed right after
        return views

    svc.views.workers = views_then_renewal  # type: ignore[method-assign]
    await svc.upkeep.maintain()
    assert (await r.hmget(keys.token(TOKEN), ["owner", "epoch"])) == ["w1", "1"]
    assert await events(r, keys, "token.reassigned") == []

    # The renewal can also land after that check, while the move is being written: WATCH aborts it.
    svc.views.workers = read_views  # type: ignore[method-assign]
    await r.delete(keys.worker_lease("w1"))
    reassign = svc.moves.reassign

    async def renewal_during_the_move(*args: object, **kw: object) -> str | None:
        await r.set(keys.worker_lease("w1"), "1", px=60_000)
        return await reassign(*args, **kw)  # type: ignore[arg-type]

    svc.moves.reassign = renewal_during_the_move  # type: ignore[method-assign]
    await svc.upkeep.maintain()
    assert (await r.hmget(keys.token(TOKEN), ["owner", "epoch"])) == ["w1", "1"]
    assert await events(r, keys, "token.reassigned") == []
    assert await commands(r, keys, "w2") == []

    svc.moves.reassign = reassign  # type: ignore[method-assign]
    await r.delete(keys.worker_lease("w1"))  # gone for real this time: the token moves
    await svc.upkeep.maintain()
    assert (await r.hmget(keys.token(TOKEN), ["owner", "epoch"])) == ["w2", "2"]


async def test_a_parked_close_whose_fill_never_comes_applies_after_a_lease(r: aioredis.Redis, keys: Keys,
                                                                            later: Callable[[float], None]) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(workers={"lease_ms": 60_000}), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await add_message(r, keys.sessions(), report("closed", "w1", epoch).model_copy(update={"fills": 1}))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "running"  # parked, waiting for one fill
    later(59)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "running"  # still inside the lease
    later(61)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    assert len(await events(r, keys, "session.close_overdue")) == 1
    assert await r.hlen(keys.closing()) == 0


async def test_a_drained_worker_that_does_not_hand_back_loses_its_tokens_after_a_lease(
    r: aioredis.Redis, keys: Keys, later: Callable[[float], None],
) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(workers={"lease_ms": 60_000}), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await register_worker(r, keys, "w2")
    await control(r, keys, "drain_worker", "w1")
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "owner") == "w1"
    later(59)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "owner") == "w1"  # still inside the lease
    later(61)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "owner") == "w2"
    assert "no hand-back" in (await events(r, keys, "token.reassigned"))[-1]["reason"]


async def test_blacklist_edits_at_runtime_with_expiry(r: aioredis.Redis, keys: Keys,
                                                      later: Callable[[float], None]) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await control(r, keys, "blacklist_add", "kw:slug", reason="no slugs today", expires_at=now_ms() + 60_000)
    await add_message(r, keys.signals(), signal("BUY", token="a"))
    await steps(svc)
    assert (await events(r, keys, "token.rejected"))[-1]["reason"] == "blacklisted: kw:slug: no slugs today"
    later(61)  # the entry has expired
    await add_message(r, keys.signals(), signal("BUY", token="b"))
    await steps(svc)
    assert await r.hget(keys.token("b"), "state") == "starting"
    await control(r, keys, "blacklist_add", "0x" + "a" * 40, reason="stopped following")
    await add_message(r, keys.signals(), signal("BUY", token="c"))
    await steps(svc)
    assert "stopped following" in (await events(r, keys, "token.rejected"))[-1]["reason"]
    await control(r, keys, "blacklist_remove", "0x" + "a" * 40)
    await add_message(r, keys.signals(), signal("BUY", token="c", n=1))
    await steps(svc)
    assert await r.hget(keys.token("c"), "state") == "starting"


async def test_every_control_request_is_an_audit_event(r: aioredis.Redis, keys: Keys) -> None:
    svc = OrchestratorService(settings(), "o1", r)
    for action in ("halt", "resume", "handled_reset", "undrain_worker"):
        await control(r, keys, action, "w9" if action == "undrain_worker" else "", reason=f"r-{action}")
    await steps(svc)
    kinds = [e["kind"] for e in await events(r, keys) if e["kind"].startswith("control.")]
    assert kinds == ["control.halt", "control.resume", "control.handled_reset", "control.undrain_worker"]


async def test_every_control_action_has_its_handler(r: aioredis.Redis, keys: Keys) -> None:
    svc = OrchestratorService(settings(), "o1", r)
    await steps(svc, 1)
    assert set(svc.control.handlers) == set(get_args(ControlRequest.model_fields["action"].annotation))


async def test_an_action_without_a_handler_is_a_warning_and_changes_nothing(r: aioredis.Redis, keys: Keys) -> None:
    # Built past the schema (as an action added to it without a handler would arrive): no effect, no crash.
    svc = OrchestratorService(settings(), "o1", r)
    await steps(svc, 1)
    before = await events(r, keys)
    req = ControlRequest.model_construct(id="ctl-reboot", ts_event=now_ms(), ts_init=now_ms(), producer="test",
                                         action="reboot", target="w1", reason="try it", force=False, expires_at=0)
    await svc.handle(StreamEntry(keys.control(), "0-1", req))
    new = (await events(r, keys))[len(before):]
    assert [(e["kind"], e["level"]) for e in new] == [("control.unknown", "warning")]
    assert "'reboot'" in new[0]["reason"]
    assert await r.get(keys.halt()) is None


# --- delivery (C1) -------------------------------------------------------------------------------

async def test_the_same_signal_id_twice_is_applied_once(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), signal("BUY", token="a"))
    await add_message(r, keys.signals(), signal("BUY", token="a"))  # the collector retried its XADD
    await steps(svc)
    assert len(await events(r, keys, "token.queued")) == 1
    assert await events(r, keys, "signal.ignored") == []
    assert svc.duplicates == 1


async def test_only_the_leader_decides_and_a_standby_takes_over(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    a = OrchestratorService(settings(), "a", r)
    b = OrchestratorService(settings(), "b", r)
    await steps(a, 1)
    await add_message(r, keys.signals(), signal("BUY", token="t1"))
    await steps(b, 2)  # standby: reads nothing
    assert not await r.exists(keys.token("t1"))
    assert await r.get(keys.orchestrator_leader()) == "a"
    await steps(a, 2)
    assert await r.hget(keys.token("t1"), "state") == "starting"
    # a dies without releasing: b leads once a's lease has lapsed
    await r.pexpire(keys.orchestrator_leader(), 1)
    await eventually(lambda: _gone(r, keys.orchestrator_leader()))
    await add_message(r, keys.signals(), signal("BUY", token="t2"))
    await steps(b, 2)
    assert await r.get(keys.orchestrator_leader()) == "b"
    assert await r.hget(keys.token("t2"), "state") == "starting"


# --- config reload (C9) ---------------------------------------------------------------------------

async def test_config_reload_applies_a_good_edit_and_refuses_a_bad_one(r: aioredis.Redis, keys: Keys,
                                                                        tmp_path: Path) -> None:
    await register_worker(r, keys, "w1")
    path = tmp_path / "polyfleet.yaml"
    path.write_text("config_reload_sec: 0.01\nscheduler: {poll_interval_sec: 0.01}\n")
    first = load_settings(path, {})
    svc = OrchestratorService(first, "o1", r, reloader=ConfigReloader(first, path, environ={}))
    await steps(svc, 1)

    path.write_text("config_reload_sec: 0.01\nscheduler: {poll_interval_sec: 0.01}\n"
                    "risk: {blacklist_token_keys: [some-slug]}\n")
    await asyncio.sleep(0.02)
    await steps(svc, 1)
    assert svc.settings.risk.blacklist_token_keys == ("some-slug",)
    [reloaded] = await events(r, keys, "config.reloaded")
    assert "risk" in reloaded["reason"]

    path.write_text("risk: {max_notional_total: -5}\nsurprise: 1\n")
    await asyncio.sleep(0.02)
    await steps(svc, 2)
    [invalid] = await events(r, keys, "config.invalid")
    assert "surprise" in invalid["reason"]
    assert invalid["level"] == "error"
    assert svc.settings.risk.blacklist_token_keys == ("some-slug",)  # the last good config stays
    await add_message(r, keys.signals(), signal("BUY"))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "rejected"
    await steps(svc, 3)
    assert len(await events(r, keys, "config.invalid")) == 1  # reported once per edit, not per poll


async def test_the_market_end_travels_with_start(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), signal("BUY").model_copy(update={"end_date": "2026-11-30T12:00:00Z"}))
    await steps(svc)
    [(_, start)] = await r.xrange(keys.cmd("w1"))
    assert json.loads(start["params"])["market_end_ts"] == 1_796_040_000_000


V2_CID = v2_condition_id(1, b"\x42" * 16)
V2_YES, V2_NO = v2_position_id(V2_CID, 0), v2_position_id(V2_CID, 1)


def market_signal(token: str, version: str | None, n: int = 0, **meta: object) -> Signal:
    return signal("BUY", token, n).model_copy(update={"market_version": version, **meta})


async def test_start_carries_the_market_facts_a_session_needs(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), market_signal(V2_YES, "v2", min_order_size=15.0, neg_risk=False,
                                                       condition_id=V2_CID))
    await add_message(r, keys.signals(), signal("BUY"))  # no version known: a v1 market (docs/redis-schema.md)
    await steps(svc)
    starts = {m.token_id: m.params for m in (decode(f) for _, f in await r.xrange(keys.cmd("w1")))}  # type: ignore[attr-defined]
    v2 = starts[V2_YES]
    assert (v2["market_version"], v2["min_order_size"], v2["neg_risk"], v2["condition_id"]) == ("v2", 15.0, False,
                                                                                                 V2_CID)
    assert "maker_strategy" in v2  # beside the strategy's merged parameters
    assert (starts[TOKEN]["market_version"], "min_order_size" in starts[TOKEN]) == ("v1", False)
    assert await r.hget(keys.token(V2_YES), "market_version") == "v2"
    assert await r.hget(keys.token(TOKEN), "market_version") == "v1"


async def test_an_unknown_market_version_is_rejected_naming_the_fix_and_nothing_starts(
        r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), market_signal(V2_YES, "v3"))
    await add_message(r, keys.signals(), market_signal(V2_NO, "v1", n=1))  # a v2 id said to be v1
    await steps(svc)
    assert await commands(r, keys, "w1") == []
    assert await r.hget(keys.token(V2_YES), "state") == "rejected"
    rejected = {e["token_id"]: e["reason"] for e in await events(r, keys, "token.rejected")}
    assert "version 'v3'" in rejected[V2_YES]
    assert "fix:" in rejected[V2_YES]
    assert "shaped like a v2 position id" in rejected[V2_NO]
    assert float(await r.hget(keys.reserved(), "_committed") or 0) == 0  # nothing reserved either


async def test_a_resolved_market_stops_its_tokens_and_flags_a_held_position_for_redemption(
        r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(scheduler={"poll_interval_sec": 0.01, "max_concurrent_jobs": 1}), "o1", r)
    await add_message(r, keys.signals(), market_signal(V2_YES, "v2", condition_id=V2_CID, neg_risk=False))
    await add_message(r, keys.signals(), market_signal(V2_NO, "v2", n=1, condition_id=V2_CID))
    await steps(svc)
    await add_message(r, keys.sessions(), report("started", "w1", 1, token=V2_YES))
    await add_message(r, keys.fills(), Fill(id="f1", ts_event=1, ts_init=1, producer="w1", token_id=V2_YES, epoch=1,
                                            worker="w1", order_id="o", side="BUY", price=0.5, size=10))
    await steps(svc)
    assert (await r.hget(keys.token(V2_YES), "state"), await r.hget(keys.token(V2_NO), "state")) == ("running",
                                                                                                       "queued")
    resolved = Resolution(id=stable_id("resolution", V2_CID), ts_event=now_ms(), ts_init=now_ms(),
                          producer="ws_gateway", condition_id=V2_CID, market_id="9", token_ids=[V2_YES, V2_NO],
                          winning_token=V2_YES, winning_outcome="Yes")
    await add_message(r, keys.resolutions(), resolved)
    await add_message(r, keys.resolutions(), resolved)  # a second gateway saw it too: applied once
    await steps(svc)
    assert (await commands(r, keys, "w1"))[-1] == ("EXIT", V2_YES, 1)
    assert (await r.hget(keys.token(V2_YES), "state"), await r.hget(keys.token(V2_NO), "state")) == ("exiting",
                                                                                                       "done")
    flagged = {t: json.loads(v) for t, v in (await r.hgetall(keys.redeemable())).items()}
    assert list(flagged) == [V2_YES]  # the queued token held nothing
    assert flagged[V2_YES] | {"resolved_at": 0} == {
        "condition_id": V2_CID, "token_id": V2_YES, "won": True, "winning_token": V2_YES, "winning_outcome": "Yes",
        "position": 10.0, "position_confirmed": 10.0, "market_version": "v2", "neg_risk": False, "resolved_at": 0}
    assert [e["token_id"] for e in await events(r, keys, "position.redeemable")] == [V2_YES]
    assert len(await events(r, keys, "market.resolved")) == 1
    assert await r.xpending(keys.resolutions(), "orchestrator") == {"pending": 0, "min": None, "max": None,
                                                                   "consumers": []}


def redemption(token: str, won: bool, shares: float) -> Redemption:
    return Redemption(id=stable_id("redemption", token, V2_CID), ts_event=now_ms(), ts_init=now_ms(),
                      producer="redeemer:r1", token_id=token, condition_id=V2_CID, won=won, shares=shares,
                      payout=shares if won else 0.0, tx_hash="0xabc", market_version="v2")


@pytest.mark.parametrize(("won", "pnl"), [(True, 5.0), (False, -5.0)])
async def test_a_redeemed_position_is_booked_once_position_to_zero_payout_into_realised_pnl(
        r: aioredis.Redis, keys: Keys, won: bool, pnl: float) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await add_message(r, keys.signals(), market_signal(V2_YES, "v2", condition_id=V2_CID, neg_risk=False))
    await steps(svc)
    await add_message(r, keys.sessions(), report("started", "w1", 1, token=V2_YES))
    await add_message(r, keys.fills(), Fill(id="f1", ts_event=now_ms(), ts_init=now_ms(), producer="w1",
                                            token_id=V2_YES, epoch=1, worker="w1", order_id="o", side="BUY",
                                            price=0.5, size=10))
    await add_message(r, keys.resolutions(), Resolution(
        id=stable_id("resolution", V2_CID), ts_event=now_ms(), ts_init=now_ms(), producer="ws_gateway",
        condition_id=V2_CID, token_ids=[V2_YES, V2_NO], winning_token=V2_YES if won else V2_NO))
    await steps(svc)
    closed = report("closed", "w1", 1, token=V2_YES, position=10).model_copy(update={"fills": 1})
    await add_message(r, keys.sessions(), closed)  # the worker could not sell into a resolved market
    await steps(svc)
    assert await r.hexists(keys.redeemable(), V2_YES)
    assert float(await r.hget(keys.exposure(), V2_YES) or 0) == pytest.approx(5.0)
    pnl_before = sum(float(v) for v in (await r.hgetall(keys.pnl_daily())).values())

    await add_message(r, keys.redemptions(), redemption(V2_YES, won, 10))
    await add_message(r, keys.redemptions(), redemption(V2_YES, won, 10))  # reported twice: booked once
    await steps(svc)
    f = await figures(r, keys, V2_YES)
    assert (f["position"], f["position_confirmed"], f["pending"], f["exposure"]) == (0, 0, 0, 0)
    assert f["realized_pnl"] == f["realized_pnl_confirmed"] == pytest.approx(pnl)  # payout 10 or 0, cost 5
    assert sum(float(v) for v in (await r.hgetall(keys.pnl_daily())).values()) - pnl_before == pytest.approx(pnl)
    token = await r.hgetall(keys.token(V2_YES))
    assert (float(token["redeemed_shares"]), float(token["redeemed_payout"]), token["redeem_tx"]) == (
        10, 10 if won else 0, "0xabc")
    assert not await r.hexists(keys.redeemable(), V2_YES)
    assert float(await r.hget(keys.exposure(), "_total")) == pytest.approx(0)
    [booked] = await events(r, keys, "position.redeemed")
    assert (booked["token_id"], booked["level"]) == (V2_YES, "info")
    assert json.loads(booked["detail"])["pnl"] == pytest.approx(pnl)
    assert await r.xpending(keys.redemptions(), "orchestrator") == {"pending": 0, "min": None, "max": None,
                                                                   "consumers": []}


# --- settlement (#16 item 2) --------------------------------------------------------------------------

async def test_a_matched_fill_is_pending_until_its_trade_is_confirmed(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.50, 10, n=1, trade="T1", status="MATCHED")
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"], f["pending_buy"]) == (10, 0, 10, 10)
    assert (f["pending_notional"], f["pending_trades"]) == (5.0, 1)
    assert f["exposure"] == float(await r.hget(keys.exposure(), TOKEN)) == pytest.approx(5.0)  # a pending buy is at risk
    await trade_status(r, keys, "T1", "MINED")
    await steps(svc)
    assert (await figures(r, keys))["pending"] == 10
    await trade_status(r, keys, "T1", "CONFIRMED")
    await trade_status(r, keys, "T1", "CONFIRMED")  # the worker said it twice
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"], f["pending_trades"]) == (10, 10, 0, 0)
    assert float(await r.hget(keys.exposure(), "_total")) == pytest.approx(5.0)
    ledger = await r.hgetall(keys.ledger(TOKEN))
    assert ledger["t:T1"] == "CONFIRMED"


async def test_a_status_read_before_its_fill_applies_once_the_fill_comes(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await trade_status(r, keys, "T1", "CONFIRMED")  # the fill's XADD is slower than the status's (another path)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "position") is None  # nothing to book yet
    assert (await r.hgetall(keys.ledger(TOKEN)))["t:T1"] == "CONFIRMED"
    await fill(r, keys, "BUY", 0.50, 10, n=1, trade="T1", status="MATCHED")
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"]) == (10, 10, 0)


async def test_a_failed_trade_is_voided_with_an_event(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(risk={"max_daily_loss": 100}), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    reserved = float(await r.hget(keys.reserved(), TOKEN))
    await fill(r, keys, "BUY", 0.40, 10, n=1, trade="T1", status="MATCHED")
    await trade_status(r, keys, "T1", "CONFIRMED")
    await fill(r, keys, "BUY", 0.60, 30, n=2, trade="T2", status="MATCHED")  # 18.00 more, above the reservation
    await fill(r, keys, "SELL", 0.30, 20, n=3, trade="T3", status="MATCHED")  # realises 20 x (0.30 - 0.55)
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["realized_pnl"]) == (20, 10, pytest.approx(-5.0))
    day = next(iter(await r.hgetall(keys.pnl_daily())))
    assert float(await r.hget(keys.pnl_daily(), day)) == pytest.approx(-5.0)
    assert float(await r.hget(keys.reserved(), "_committed")) == pytest.approx(max(reserved, 20 * 0.55))

    await trade_status(r, keys, "T2", "RETRYING")
    await trade_status(r, keys, "T2", "FAILED")
    await trade_status(r, keys, "T2", "FAILED")  # again: voided once
    await steps(svc)
    f = await figures(r, keys)
    # Without the failed buy the sell sold the 10 held at 0.10 under cost and left a short of 10
    # (the venue would not settle that sell either; its own FAILED follows).
    assert (f["position"], f["position_confirmed"], f["failed_trades"]) == (-10, 10, 1)
    assert f["realized_pnl"] == pytest.approx(-1.0)
    assert float(await r.hget(keys.pnl_daily(), day)) == pytest.approx(-1.0)
    [failed] = await events(r, keys, "trade.failed")
    detail = json.loads(failed["detail"])
    assert (failed["level"], failed["token_id"], detail["trade_id"], detail["side"], detail["size"]) == (
        "warning", TOKEN, "T2", "BUY", 30.0)
    assert "T2" in failed["reason"]
    assert "BUY 30" in failed["reason"]
    assert len(await events(r, keys, "risk.short_position")) == 1

    await trade_status(r, keys, "T3", "FAILED")
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"], f["failed_trades"]) == (10, 10, 0, 2)
    assert (f["realized_pnl"], f["exposure"]) == (0.0, pytest.approx(4.0))
    assert float(await r.hget(keys.pnl_daily(), day)) == pytest.approx(0.0)
    assert float(await r.hget(keys.reserved(), "_committed")) == pytest.approx(max(reserved, 4.0))
    assert len(await events(r, keys, "trade.failed")) == 2


async def test_a_fill_that_arrives_already_failed_never_counts(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    await run_token(r, keys, svc, TOKEN)
    await trade_status(r, keys, "T1", "FAILED")
    await fill(r, keys, "BUY", 0.50, 10, n=1, trade="T1", status="MATCHED")
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["exposure"], f["failed_trades"]) == (0, 0, 1)
    assert len(await events(r, keys, "trade.failed")) == 1


async def test_the_close_folds_settled_fills_and_keeps_pending_ones(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.50, 10, n=1, trade="T1", status="CONFIRMED")
    await fill(r, keys, "SELL", 0.60, 10, n=2, trade="T2", status="MATCHED")
    await add_message(r, keys.sessions(), report("closed", "w1", epoch).model_copy(update={"fills": 2}))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    ledger = await r.hgetall(keys.ledger(TOKEN))
    assert {k for k in ledger if k.startswith("f:")} == {f"f:{stable_id('fill', TOKEN, 'SELL', 2)}"}
    assert json.loads(ledger["base"])["confirmed"][0] == 10
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"]) == (0, 10, -10)
    await trade_status(r, keys, "T2", "CONFIRMED")  # settles after the session ended
    await steps(svc)
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["pending"]) == (0, 0, 0)
    assert f["realized_pnl"] == f["realized_pnl_confirmed"] == pytest.approx(1.0)
    assert await events(r, keys, "session.position_differs") == []


async def test_a_closed_report_that_disagrees_with_the_fills_is_a_warning(r: aioredis.Redis, keys: Keys) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.50, 10, n=1)
    await add_message(r, keys.sessions(), report("closed", "w1", epoch, position=4.0).model_copy(update={"fills": 1}))
    await steps(svc)
    assert float(await r.hget(keys.token(TOKEN), "position")) == 10  # the fills stand
    [differs] = await events(r, keys, "session.position_differs")
    assert differs["level"] == "warning"
    assert "says 4 shares, its fills 10" in differs["reason"]


async def test_an_overdue_close_books_the_shares_its_missing_fills_held(r: aioredis.Redis, keys: Keys,
                                                                       later: Callable[[float], None]) -> None:
    await register_worker(r, keys, "w1")
    svc = OrchestratorService(settings(workers={"lease_ms": 60_000}), "o1", r)
    epoch = await run_token(r, keys, svc, TOKEN)
    await fill(r, keys, "BUY", 0.50, 10, n=1)
    # The report counts two fills and says 4 are left: the SELL of 6 never reached pf:fills.
    await add_message(r, keys.sessions(), report("closed", "w1", epoch, position=4.0).model_copy(update={"fills": 2}))
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "running"  # parked: two fills were reported, one came
    later(61)
    await steps(svc)
    assert await r.hget(keys.token(TOKEN), "state") == "done"
    f = await figures(r, keys)
    assert (f["position"], f["position_confirmed"], f["exposure"]) == (4, 4, pytest.approx(2.0))  # at 0.50
