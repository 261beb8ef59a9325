"""The services' Redis client packs commands with hiredis: same results and errors as redis-py."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import DataError

from shared.redisio.client import HiredisPackingConnection, make_client
from tests.support import RedisServer


async def test_values_round_trip_and_bad_inputs_are_refused(redis_server: RedisServer) -> None:
    r = make_client(redis_server.url)
    try:
        assert r.connection_pool.connection_class is HiredisPackingConnection
        await r.hset("pfclient:h", mapping={"s": "é ü", "i": 7, "f": 0.25, "b": b"\x00raw", "m": memoryview(b"mv")})
        assert await r.hgetall("pfclient:h") == {"s": "é ü", "i": "7", "f": "0.25", "b": "\x00raw", "m": "mv"}
        assert await r.execute_command("CONFIG GET", "maxmemory-policy")  # a two-word command is split
        with pytest.raises(DataError):
            await r.set("pfclient:x", None)  # type: ignore[arg-type]
        with pytest.raises(DataError):
            await r.set("pfclient:x", True)  # type: ignore[arg-type]
        async with r.pipeline(transaction=True) as p:
            p.incr("pfclient:n")
            p.incrbyfloat("pfclient:n", 0.5)
            assert await p.execute() == [1, 1.5]
    finally:
        await r.delete("pfclient:h", "pfclient:n")
        await r.aclose()


async def test_more_callers_than_connections_wait_instead_of_failing(redis_server: RedisServer) -> None:
    """Hundreds of sessions share one worker's pool: the 3rd..20th concurrent command waits for a
    connection (redis-py's default pool would raise MaxConnectionsError)."""
    r = make_client(redis_server.url, max_connections=2)
    try:
        results = await asyncio.gather(*(r.blpop([f"pfclient:empty{i}"], timeout=0.2) for i in range(20)))
        assert results == [None] * 20
    finally:
        await r.aclose()
