"""The API's only write: one ControlRequest on ``pf:control``, then (optionally) wait until the
orchestrator acknowledged it. Its effects commit with the ack, so acknowledged = applied."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.control import control_request, delivered
from shared.keys import GROUP_ORCHESTRATOR, STREAM_MAXLEN, Keys


@dataclass(frozen=True)
class ControlResult:
    entry_id: str
    applied: bool
    action: str
    target: str

    def as_json(self) -> dict[str, object]:
        return {"entry_id": self.entry_id, "applied": self.applied, "action": self.action, "target": self.target}


async def send(r: aioredis.Redis, k: Keys, action: str, target: str = "", reason: str = "", force: bool = False,
               expires_at: int = 0, requester: str = "api", wait_sec: float = 5.0) -> ControlResult:
    req = control_request(action, target, reason, force, expires_at, requester)
    entry_id = str(await r.xadd(k.control(), req.encode(), maxlen=STREAM_MAXLEN["control"],  # type: ignore[arg-type]
                                approximate=True))
    ok = await wait_applied(r, k, entry_id, wait_sec) if wait_sec > 0 else False
    return ControlResult(entry_id, ok, action, target)


async def wait_applied(r: aioredis.Redis, k: Keys, entry_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await is_applied(r, k, entry_id):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def is_applied(r: aioredis.Redis, k: Keys, entry_id: str) -> bool:
    try:
        groups = await r.xinfo_groups(k.control())
    except ResponseError:
        return False
    if not delivered(groups, entry_id):
        return False
    pending = await r.xpending_range(k.control(), GROUP_ORCHESTRATOR, min=entry_id, max=entry_id, count=1)
    return not pending
