"""The risk book's queued calls survive a Redis restart between a pipeline's script check and its
EXEC (scripts are not persisted; found by the soak: the orchestrator crashed with NoScriptError)."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.orchestrator.riskbook import RiskBook
from shared.keys import Keys


async def test_a_release_queued_on_a_multi_commits_though_redis_lost_its_scripts(
        r: aioredis.Redis, keys: Keys) -> None:
    book = RiskBook(r, keys)
    assert (await book.reserve("tok", 10.0, 100.0, 1000.0)).ok  # the script is loaded now
    async with r.pipeline(transaction=True) as pipe:
        checked = pipe.load_scripts

        async def checked_then_restarted() -> None:  # what a restart between the check and EXEC leaves
            await checked()
            await r.script_flush()

        pipe.load_scripts = checked_then_restarted  # type: ignore[method-assign]
        await book.set_exposure(pipe, "tok", 4.0)
        await book.release(pipe, "tok")
        pipe.hset(keys.exposure(), "marker", "1")
        await pipe.execute()
    assert await r.hget(keys.reserved(), "tok") is None  # released
    assert await r.hget(keys.exposure(), "marker") == "1"
