"""Connect to Redis with retry, so a service started before Redis (or across a Redis restart)
waits instead of crash-looping."""

from __future__ import annotations

import asyncio

import hiredis
import redis.asyncio as aioredis
from loguru import logger
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.backoff import Backoff

TRANSIENT_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
RETRIES = 9  # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 4 x 2 s = 11 s before a command gives up


class HiredisPackingConnection(aioredis.Connection):  # type: ignore[misc]
    """An asyncio connection that packs commands with hiredis's C packer.

    redis-py's synchronous client packs with hiredis when it is installed, its asyncio client
    always packs in Python; on a busy orchestrator that packing was a third of the CPU. Same
    wire bytes, same errors (a value hiredis cannot pack is a DataError, as in redis-py)."""

    def pack_command(self, *args: object) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        for a in args:
            if a is None or isinstance(a, bool | bytearray | memoryview):  # rare: the slow path
                args = tuple(_packable(x) for x in args)
                break
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def _packable(value: object) -> object:
    if value is None or isinstance(value, bool):  # redis-py refuses these; hiredis would pack them
        raise DataError(f"Invalid input of type: {type(value).__name__!r}. Convert to a bytes, string, int "
                        "or float first.")
    return bytes(value) if isinstance(value, bytearray | memoryview) else value


MAX_CONNECTIONS = 200  # per process; more callers than this wait (up to POOL_WAIT_SEC), never fail
POOL_WAIT_SEC = 20.0


def make_client(url: str, max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """A client whose every command retries briefly on connection errors.

    The pool blocks: with hundreds of sessions in one worker, more commands can be in flight than
    there are connections, and redis-py's default pool raises ``MaxConnectionsError`` at that
    point (a session died of it, silently, in the worker benchmark). Waiting for a free
    connection is the right behaviour for every service here."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        connection_class=HiredisPackingConnection,
        max_connections=max_connections,
        timeout=POOL_WAIT_SEC,
        decode_responses=True,
        health_check_interval=15,
        socket_keepalive=True,
        # A restart, and a restarted Redis still loading its data (LOADING -> BusyLoadingError, a
        # ConnectionError subclass), are ridden out inside the command: backoff 0.1 .. 2 s for 11 s
        # (3 s, the old budget, let pipelines fail while 2,000 tokens' data loaded in the hour
        # soak). Past that the error reaches the service loops, which catch TRANSIENT_REDIS_ERRORS.
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return aioredis.Redis.from_pool(pool)


async def connect(url: str, backoff: Backoff | None = None, forever: bool = False) -> aioredis.Redis:
    """Return a connected client; retry with backoff (forever if asked) until PING answers."""
    backoff = backoff or Backoff(max_attempts=30, initial_backoff_sec=0.2, max_backoff_sec=5.0)
    client = make_client(url)
    attempt = 0
    while True:
        attempt += 1
        try:
            await client.ping()
            return client
        except TRANSIENT_REDIS_ERRORS as exc:
            if not forever and backoff.exhausted(attempt):
                await client.aclose()
                raise ConnectionError(f"Redis at {_safe(url)} unreachable after {attempt} attempts: {exc}") from exc
            delay = backoff.delay(attempt)
            logger.warning("Redis at {} unreachable ({}); retry {} in {:.1f}s", _safe(url), exc, attempt, delay)
            await asyncio.sleep(delay)


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("redis", url)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
