"""What the collector's integration tests share: the signals on the stream (``harness.running`` runs the
service)."""

from __future__ import annotations

import redis.asyncio as aioredis

from harness.streams import read_messages
from shared.keys import Keys
from shared.messages import Signal


async def signals(r: aioredis.Redis, keys: Keys) -> list[Signal]:
    """Every signal on ``pf:signals``, oldest first."""
    return await read_messages(r, keys.signals(), Signal)
