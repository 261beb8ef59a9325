"""A session that dies without reporting (its own report failed) is reported failed by its worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, worker_ready
from services.maker_worker.paper import PaperExecutor, PaperVenue
from services.maker_worker.service import MakerWorkerService
from services.maker_worker.session import TokenSession
from shared.config import Settings, load_settings
from shared.keys import Keys
from shared.messages import SessionReport, decode
from shared.redisio.health import healthy_instances
from shared.tickfeed import TickFeed


async def test_an_unreported_session_death_is_reported_by_the_worker(r: aioredis.Redis, keys: Keys) -> None:
    settings = Settings.model_validate({"mode": "paper"})
    executor = PaperExecutor(PaperVenue(), lambda _t: None)
    svc = MakerWorkerService(settings, "w1", r, executor=executor)
    await svc._setup()
    session = TokenSession(r, keys, TickFeed(r, keys), executor, "w1", "tok", 3, {})

    async def dies() -> None:
        raise ConnectionError("Redis went away while reporting")

    task = asyncio.create_task(dies())
    await asyncio.gather(task, return_exceptions=True)
    svc.sessions["tok"] = (session, task)
    await svc.step(block_ms=10)
    reports = [decode(f) for _, f in await r.xrange(keys.sessions())]
    failed = [m for m in reports if isinstance(m, SessionReport) and m.status == "failed"]
    assert len(failed) == 1
    assert (failed[0].token_id, failed[0].epoch, failed[0].worker) == ("tok", 3, "w1")
    assert "ConnectionError: Redis went away" in failed[0].reason
    assert "tok" not in svc.sessions
    await svc.step(block_ms=10)  # reported once, not again
    assert len([m for _, f in await r.xrange(keys.sessions()) if (m := decode(f)).status == "failed"]) == 1  # type: ignore[attr-defined]


async def test_a_restarted_process_hands_back_the_tokens_it_inherited(r: aioredis.Redis, keys: Keys) -> None:
    """Back under the same id within its lease, a worker owns tokens whose sessions died with the
    old process; it hands them back so the orchestrator moves them (found by the soak)."""
    await r.hset(keys.token("tok"), mapping={"owner": "w1", "epoch": "4", "state": "running"})
    await r.sadd(keys.worker_tokens("w1"), "tok", "gone")
    await r.hset(keys.token("gone"), mapping={"owner": "w2", "epoch": "1", "state": "running"})  # not ours now
    settings = Settings.model_validate({"mode": "paper"})
    svc = MakerWorkerService(settings, "w1", r, executor=PaperExecutor(PaperVenue(), lambda _t: None))
    await svc._setup()
    reports = [decode(f) for _, f in await r.xrange(keys.sessions())]
    assert [(m.token_id, m.epoch, m.status) for m in reports] == [("tok", 4, "handed_back")]  # type: ignore[attr-defined]


async def test_a_worker_beats_and_holds_its_lease_while_the_venue_account_opens(
        r: aioredis.Redis, keys: Keys) -> None:
    """The SDK opens the account in several round trips (a deposit wallet may be created): the lease
    loop runs meanwhile and its heartbeat reports the feed's counters, which must exist by then
    (a heartbeat that read them before the venue opened killed the loop: no worker ever beat)."""
    settings = Settings.model_validate({"mode": "paper", "workers": {"heartbeat_interval_sec": 0.05}})
    svc = MakerWorkerService(settings, "w1", r, executor=PaperExecutor(PaperVenue(), lambda _t: None))
    opened = asyncio.Event()

    async def slow_venue() -> None:
        await opened.wait()

    svc._open_venue = slow_venue  # type: ignore[method-assign]
    task = asyncio.create_task(svc.run())
    try:
        beats = await eventually(lambda: healthy_instances(r, keys, "maker_worker"), what="a heartbeat")
        assert [b["instance"] for b in beats] == ["w1"]
        assert await r.exists(keys.worker_lease("w1"))
        assert await r.hget(keys.worker("w1"), "ready") == "0"  # no tokens for it yet
        assert not task.done()
        opened.set()
        await eventually(lambda: worker_ready(r, keys, "w1"), what="ready once the venue opened")
        assert await r.hget(keys.worker("w1"), "ready") == "1"
    finally:
        svc._stop.set()
        opened.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_worker_restarted_into_a_throttled_venue_waits_it_out_instead_of_exiting(
        r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess]) -> None:
    """Found by the soak: a worker restarted while the venue answered its key calls with 429 exited
    (VenueUnavailable out of the account's opening); only a supervisor brought it back."""
    sim = start_sim({"sim_exchange": {"markets": 1, "volatility": 0.0},
                     "retry_strategy": {"initial_backoff_sec": 0.05, "max_backoff_sec": 0.2}})
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as http:
        armed = await http.post("/_sim/fault", json={"kind": "http_429", "count": 4, "retry_after": 0.1,
                                                      "path_prefix": "/auth"})
        assert armed.status_code == 200, armed.text
    settings = load_settings(sim.env["PF_CONFIG"], environ={})
    svc = MakerWorkerService(settings, "w1", r)
    task = asyncio.create_task(svc.run())
    try:
        async def ready_or_ended() -> bool:
            return await worker_ready(r, keys, "w1") or task.done()

        await eventually(ready_or_ended, timeout=30, what="ready, or the worker ended")
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
        assert await r.hget(keys.worker("w1"), "ready") == "1"
    finally:
        svc._stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
