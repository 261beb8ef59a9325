"""One active orchestrator at a time: a renewable lease in Redis.

Standby instances (a second replica, or a restarted process whose predecessor's lease has not
expired yet) wait; the active one renews every step. A lease lasts ``ttl_ms``; the stream
consumer claims entries left pending by a dead leader once they have been idle that long, so a
kill -9 costs at most one lease period of delay and never a signal.
"""

from __future__ import annotations

import redis.asyncio as aioredis

# 1 = still ours (renewed), 2 = newly ours, 0 = somebody else holds it.
_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLease:
    def __init__(self, r: aioredis.Redis, key: str, me: str, ttl_ms: int) -> None:
        self.key, self.me, self.ttl_ms = key, me, ttl_ms
        self._acquire = r.register_script(_ACQUIRE)
        self._release = r.register_script(_RELEASE)
        self.leading = False

    async def renew(self) -> tuple[bool, bool]:
        """(leading now, just became leader)."""
        code = int(await self._acquire(keys=[self.key], args=[self.me, self.ttl_ms]))
        became = code == 2 or (code == 1 and not self.leading)
        self.leading = code in (1, 2)
        return self.leading, became

    async def release(self) -> None:
        if self.leading:
            await self._release(keys=[self.key], args=[self.me])
            self.leading = False
