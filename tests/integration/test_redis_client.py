"""The services' Redis client packs commands with hiredis: same results and errors as redis-py."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.exceptions import DataError

from harness import RedisServer
from shared.redisio.client import HiredisPackingConnection, make_client


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


async def test_a_redis_still_loading_its_data_is_waited_for_not_fatal() -> None:
    """After a restart Redis answers LOADING until its data is in memory (redis-py: BusyLoadingError,
    which crashed services in a soak with 2,000 tokens). A command issued then waits the load out
    inside the client's retries. The load is made slow on purpose (1.5 ms a key x 4,000 keys)."""
    srv = RedisServer(extra=("--key-load-delay", "1500", "--loading-process-events-interval-bytes", "1024")).start()
    try:
        seed = make_client(srv.url)
        async with seed.pipeline(transaction=False) as p:
            for i in range(4000):
                p.set(f"k{i}", f"v{i}")
            await p.execute()
        await seed.save()
        await seed.aclose()
        srv.halt()
        srv.start()  # returns while the server still answers LOADING
        with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as raw:
            raw.sendall(b"GET k1\r\n")
            assert raw.recv(64).startswith(b"-LOADING")  # the hazard is real right now
        r = make_client(srv.url)
        try:
            assert await r.get("k3999") == "v3999"  # waited for the load inside the command
        finally:
            await r.aclose()
    finally:
        srv.stop()
