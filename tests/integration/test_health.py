"""Heartbeats with a TTL, and ``--check`` turning them into a container healthcheck exit code."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from harness import ROOT, RedisServer, eventually, free_port
from shared.keys import Keys
from shared.redisio.health import beat, healthy_instances
from shared.runtime import service_main


def check(url: str, service: str, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PF_NAMESPACE"}
    env["PF_REDIS_URL"] = url
    if namespace:
        env["PF_NAMESPACE"] = namespace
    return subprocess.run([sys.executable, "-m", "shared.redisio.health", "--check", service],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


async def test_beat_writes_a_json_summary_with_a_ttl(r: aioredis.Redis, keys: Keys) -> None:
    await beat(r, keys, "orchestrator", "host-1", 2.0, {"tokens": 3})
    key = keys.health("orchestrator", "host-1")
    body = json.loads(await r.get(key))
    assert body["service"] == "orchestrator"
    assert body["instance"] == "host-1"
    assert body["tokens"] == 3
    assert isinstance(body["ts"], int)
    assert 0 < await r.pttl(key) <= 6000  # three heartbeat intervals


async def test_a_missed_beat_expires(r: aioredis.Redis, keys: Keys) -> None:
    await beat(r, keys, "orchestrator", "host-1", 10, {})
    assert [i["instance"] for i in await healthy_instances(r, keys, "orchestrator")] == ["host-1"]
    await beat(r, keys, "orchestrator", "host-1", 0.05, {})  # the last beat: nothing renews it after 150 ms
    await eventually(lambda: _none(r, keys, "orchestrator"), timeout=10, what="the beat expired")


async def _none(r: aioredis.Redis, keys: Keys, service: str) -> bool:
    return await healthy_instances(r, keys, service) == []


async def test_healthy_instances_lists_only_that_service(r: aioredis.Redis, keys: Keys) -> None:
    await beat(r, keys, "maker_worker", "w1", 5, {})
    await beat(r, keys, "maker_worker", "w2", 5, {})
    await beat(r, keys, "maker", "x", 5, {})
    found = await healthy_instances(r, keys, "maker_worker")
    assert sorted(i["instance"] for i in found) == ["w1", "w2"]


async def test_check_exits_0_with_a_fresh_beat_and_1_without(r: aioredis.Redis, keys: Keys,
                                                             redis_server: RedisServer) -> None:
    no_beat = await asyncio.to_thread(check, redis_server.url, "orchestrator")
    assert no_beat.returncode == 1, no_beat.stderr
    assert "orchestrator" in no_beat.stderr

    await beat(r, keys, "orchestrator", "host-1", 10, {})
    fresh = await asyncio.to_thread(check, redis_server.url, "orchestrator")
    assert fresh.returncode == 0, fresh.stderr

    other = await asyncio.to_thread(check, redis_server.url, "ws_gateway")
    assert other.returncode == 1


async def test_check_honours_the_namespace(r: aioredis.Redis, redis_server: RedisServer) -> None:
    await beat(r, Keys("staging"), "orchestrator", "host-1", 10, {})
    assert (await asyncio.to_thread(check, redis_server.url, "orchestrator")).returncode == 1
    assert (await asyncio.to_thread(check, redis_server.url, "orchestrator", "staging")).returncode == 0


def test_check_exits_1_when_redis_is_unreachable() -> None:
    result = check(f"redis://127.0.0.1:{free_port()}/0", "orchestrator")
    assert result.returncode == 1
    assert "unreachable" in result.stderr


def test_service_main_check_uses_the_heartbeat(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_REDIS_URL", redis_server.url)
    monkeypatch.delenv("PF_NAMESPACE", raising=False)

    def factory(*_: object) -> object:
        raise AssertionError("--check must not build the service")

    async def prepare(with_beat: bool) -> None:
        client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            await client.flushall()
            if with_beat:
                await beat(client, Keys("pf"), "signal_collector", "h", 10, {})
        finally:
            await client.aclose()

    asyncio.run(prepare(with_beat=False))
    assert service_main("signal_collector", factory, argv=["--check"]) == 1  # type: ignore[arg-type]
    asyncio.run(prepare(with_beat=True))
    assert service_main("signal_collector", factory, argv=["--check"]) == 0  # type: ignore[arg-type]
