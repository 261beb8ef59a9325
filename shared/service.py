"""RedisService: what every long-running service shares -- one Redis client and a stop flag.

The client is either borrowed (tests pass one in; the service never closes it) or connected by
``connect_redis()`` at the start of ``run()`` and closed by ``close_redis()`` at its end.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from shared.config import Settings, redis_url
from shared.keys import keys_from_env
from shared.redisio import connect


class RedisService:
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.instance = instance
        self.keys = keys_from_env()
        self._redis = redis
        self._own_redis = redis is None
        self._stop = asyncio.Event()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("not connected: call run() or pass a redis client")
        return self._redis

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    async def connect_redis(self) -> aioredis.Redis:
        """Connect (retrying until Redis answers) unless a client was passed in."""
        if self._redis is None:
            self._redis = await connect(redis_url(), forever=True)
        return self._redis

    async def close_redis(self) -> None:
        if self._own_redis and self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def sleep_unless_stopped(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stop(); True when the service is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()
