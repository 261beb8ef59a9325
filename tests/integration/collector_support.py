"""What the collector's integration tests share: the signals on the stream (``harness.running`` runs the
service)."""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.keys import Keys
from shared.messages import Signal, decode


async def signals(r: aioredis.Redis, keys: Keys) -> list[Signal]:
    """Every signal on ``pf:signals``, oldest first."""
    out = []
    for _, fields in await r.xrange(keys.signals()):
        msg = decode(fields)
        assert isinstance(msg, Signal)
        out.append(msg)
    return out
