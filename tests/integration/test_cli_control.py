"""``polyfleet`` control commands against a real Redis and a real orchestrator service."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from cli.main import app
from harness import RedisServer
from services.orchestrator.service import OrchestratorService
from shared.config import Settings
from shared.keys import Keys
from shared.messages import decode

runner = CliRunner()


@pytest.fixture
def env(redis_server: RedisServer, r: aioredis.Redis) -> dict[str, str]:
    return {"PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}


def settings() -> Settings:
    return Settings.model_validate({"scheduler": {"poll_interval_sec": 0.05}})


@contextlib.asynccontextmanager
async def orchestrator_running(r: aioredis.Redis):  # type: ignore[no-untyped-def]
    svc = OrchestratorService(settings(), "o-cli", r)

    async def loop() -> None:
        while not svc.stopping:
            await svc.step(block_ms=20)

    task = asyncio.create_task(loop())
    try:
        yield svc
    finally:
        svc.stop()
        await task


async def test_no_wait_writes_one_control_request(env: dict[str, str], r: aioredis.Redis, keys: Keys) -> None:
    res = runner.invoke(app, ["stop", "123", "--force", "--reason", "fat finger", "--no-wait"], env=env)
    assert res.exit_code == 0, res.output
    assert "requested: stop_token 123" in res.output
    [(_, fields)] = await r.xrange(keys.control())
    req = decode(fields)
    assert (req.action, req.target, req.force, req.reason) == ("stop_token", "123", True, "fat finger")  # type: ignore[attr-defined]


async def test_wait_reports_applied_once_the_orchestrator_acked(env: dict[str, str], r: aioredis.Redis,
                                                                keys: Keys) -> None:
    async with orchestrator_running(r):
        res = await asyncio.to_thread(runner.invoke, app, ["halt", "--reduce-only", "-r", "drill"], env=env)
    assert res.exit_code == 0, res.output
    assert "applied: halt reduce_only" in res.output
    assert await r.get(keys.halt()) == "reduce_only"
    async with orchestrator_running(r):
        res = await asyncio.to_thread(runner.invoke, app, ["resume"], env=env)
    assert res.exit_code == 0, res.output
    assert not await r.exists(keys.halt())


async def test_wait_without_an_orchestrator_exits_3(env: dict[str, str]) -> None:
    res = runner.invoke(app, ["drain", "w1", "--timeout", "0.3"], env=env)
    assert res.exit_code == 3
    assert "not applied" in res.output


async def test_blacklist_add_with_ttl_then_list(env: dict[str, str], r: aioredis.Redis, keys: Keys) -> None:
    async with orchestrator_running(r):
        res = await asyncio.to_thread(runner.invoke, app, ["blacklist", "add", "kw:election", "--ttl", "60",
                                                            "-r", "too noisy"], env=env)
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["blacklist", "ls"], env=env)
    assert "kw:election" in res.output
    assert "too noisy" in res.output


async def test_handled_reset_needs_a_token_or_all(env: dict[str, str]) -> None:
    res = runner.invoke(app, ["handled", "reset"], env=env)
    assert res.exit_code == 2
    assert "--all" in res.output


async def test_unreachable_redis_exits_2() -> None:
    res = runner.invoke(app, ["halt", "--no-wait"], env={"PF_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert res.exit_code == 2
