"""The CLI's Redis connection: one place that opens it and explains a failure."""

from __future__ import annotations

import redis
import typer
from rich.console import Console

from shared.config import redis_url


def client() -> redis.Redis:
    r = redis.Redis.from_url(redis_url(), decode_responses=True, socket_timeout=3)
    try:
        r.ping()
    except redis.RedisError as exc:
        Console(stderr=True).print(f"[red]Redis at {redis_url()} is unreachable: {exc}[/red] (set PF_REDIS_URL)")
        raise typer.Exit(2) from exc
    return r
