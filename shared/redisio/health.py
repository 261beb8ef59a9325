"""Heartbeat / health keys and the ``--check`` that turns them into an exit code.

Each service writes ``pf:health:{service}:{instance}`` (JSON summary) with a TTL of three
heartbeat intervals; a container healthcheck runs ``python -m shared.redisio.health --check
SERVICE`` which exits 0 when some instance of SERVICE has a fresh key, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis

from shared.clock import now_ms
from shared.config import redis_url
from shared.keys import Keys, keys_from_env


async def beat(r: aioredis.Redis, keys: Keys, service: str, instance: str, interval_sec: float,
               summary: dict[str, Any]) -> None:
    body = json.dumps({"service": service, "instance": instance, "ts": now_ms(), **summary},
                      separators=(",", ":"), default=str)
    await r.set(keys.health(service, instance), body, px=int(interval_sec * 3000))


async def healthy_instances(r: aioredis.Redis, keys: Keys, service: str) -> list[dict[str, Any]]:
    out = []
    async for key in r.scan_iter(match=keys.health_pattern(service), count=500):
        raw = await r.get(key)
        if raw:
            out.append(json.loads(raw))
    return out


async def _check(service: str, url: str) -> int:
    r = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=3)
    try:
        found = await healthy_instances(r, keys_from_env(), service)
    except Exception as exc:
        print(f"unhealthy: Redis unreachable: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        await r.aclose()
    if not found:
        print(f"unhealthy: no fresh heartbeat from {service}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="exit 0 if SERVICE has a fresh heartbeat")
    parser.add_argument("--check", metavar="SERVICE", required=True)
    args = parser.parse_args(argv)
    return asyncio.run(_check(args.check, redis_url()))


if __name__ == "__main__":
    sys.exit(main())
