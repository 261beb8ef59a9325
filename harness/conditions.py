"""Conditions of the fleet that tests and benchmarks wait for (with :func:`harness.eventually`)."""

from __future__ import annotations

from typing import Any

from shared.keys import Keys


async def worker_ready(r: Any, keys: Keys, worker: str) -> bool:
    """Its lease held and its venue account open (``ready``): the orchestrator gives it tokens."""
    return bool(await r.exists(keys.worker_lease(worker))) and await r.hget(keys.worker(worker), "ready") == "1"
