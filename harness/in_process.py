"""A service run in-process, on a task of the test's own event loop, for as long as a block runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar


class Runnable(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Runnable)


@contextlib.asynccontextmanager
async def running(svc: S, timeout: float = 15.0) -> AsyncIterator[S]:
    """``svc.run()`` on a task while the block runs; then ``stop()``, and it must end within
    ``timeout`` without an exception (a crash inside would otherwise go unseen)."""
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        svc.stop()
        await asyncio.wait_for(task, timeout)
        assert task.exception() is None
