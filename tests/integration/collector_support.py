"""What the collector's integration tests share: the signals on the stream, the service running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from services.signal_collector.service import SignalCollectorService
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


@asynccontextmanager
async def running(svc: SignalCollectorService) -> AsyncIterator[SignalCollectorService]:
    """``svc.run()`` as a task for the block; stopped after it, and it must have ended cleanly."""
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        svc.stop()
        await asyncio.wait_for(task, 15)
        assert task.exception() is None
