"""The CLI's Redis connection: one place that opens it and explains a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import redis
import redis.asyncio as aioredis
import typer
from rich.console import Console

from shared.config import redis_url
from shared.keys import Keys, keys_from_env

T = TypeVar("T")


def client() -> redis.Redis:
    r = redis.Redis.from_url(redis_url(), decode_responses=True, socket_timeout=3)
    try:
        r.ping()
    except redis.RedisError as exc:
        _unreachable(exc)
    return r


def async_read(read: Callable[[aioredis.Redis, Keys], Awaitable[T]]) -> T:
    """One of the async reads the API shares (``shared/*_reads``), run to its end on its own client."""
    async def run() -> T:
        r = aioredis.Redis.from_url(redis_url(), decode_responses=True, socket_timeout=3)
        try:
            return await read(r, keys_from_env())
        finally:
            await r.aclose()

    try:
        return asyncio.run(run())
    except aioredis.RedisError as exc:
        _unreachable(exc)


def _unreachable(exc: Exception) -> NoReturn:
    Console(stderr=True).print(f"[red]Redis at {redis_url()} is unreachable: {exc}[/red] (set PF_REDIS_URL)")
    raise typer.Exit(2) from exc
