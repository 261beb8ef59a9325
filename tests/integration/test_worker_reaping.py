"""A session that dies without reporting (its own report failed) is reported failed by its worker."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.maker_worker.paper import PaperExecutor, PaperVenue
from services.maker_worker.service import MakerWorkerService
from services.maker_worker.session import TokenSession
from shared.config import Settings
from shared.keys import Keys
from shared.messages import SessionReport, decode
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
