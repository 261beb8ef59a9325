"""The API's only write: one ControlRequest on ``pf:control``, then (optionally) wait until the
orchestrator acknowledged it. Its effects commit with the ack, so acknowledged = applied."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.clock import now_ms
from shared.keys import GROUP_ORCHESTRATOR, STREAM_MAXLEN, Keys
from shared.messages import ControlRequest, stable_id


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
    ts = now_ms()
    req = ControlRequest(id=stable_id(requester, action, target, ts, time.monotonic_ns()), ts_event=ts, ts_init=ts,
                         producer=requester, action=action, target=target, reason=reason,  # type: ignore[arg-type]
                         force=force, expires_at=expires_at)
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
        groups = {g["name"]: g for g in await r.xinfo_groups(k.control())}
    except ResponseError:
        return False
    group = groups.get(GROUP_ORCHESTRATOR)
    if not group or _id_tuple(group["last-delivered-id"]) < _id_tuple(entry_id):
        return False
    pending = await r.xpending_range(k.control(), GROUP_ORCHESTRATOR, min=entry_id, max=entry_id, count=1)
    return not pending


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
