"""The arbitrage's share of the fleet's risk budget (``risk.max_notional_total``), in the same
Redis hash the orchestrator reserves in, so each side sees the other.

The orchestrator's risk script (services/orchestrator/riskbook.py) keeps ``pf:reserved``: token
-> notional reserved, and ``_committed`` = the sum of every claim; an admission is refused when
``_committed`` would pass ``risk.max_notional_total``. The arbitrage keeps one field per set,
``arb:{set id}`` (token ids are decimal, so the prefix cannot collide), holding the $ it has at
risk in that set, and moves ``_committed`` by the same difference in one Lua step:

* before an execution, :meth:`claim` raises the set's field to what is held there plus what the
  execution may spend; refused (nothing written) when ``_committed`` would pass the total;
* after it, :meth:`settle` lowers the field to what is still held (0 deletes it).

So arbitrage positions count in the orchestrator's admissions, and the arbitrage cannot take
budget the maker workers hold. Nothing else reads these fields one by one: the orchestrator
releases its own tokens by id and the api reads ``_committed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.keys import ARB_RESERVED_PREFIX, Keys

# KEYS[1] reserved hash. ARGV: field, new amount, total max (-1: no check) -> {ok, committed}
_SCRIPT = """
local reserved, field = KEYS[1], ARGV[1]
local new, total = tonumber(ARGV[2]), tonumber(ARGV[3])
local old = tonumber(redis.call('HGET', reserved, field) or '0')
local committed = tonumber(redis.call('HGET', reserved, '_committed') or '0')
local after = committed - old + new
if after < 1e-9 then after = 0 end
if total >= 0 and new > old and after > total + 1e-9 then
  return {0, tostring(committed)}
end
if new > 1e-9 then redis.call('HSET', reserved, field, tostring(new)) else redis.call('HDEL', reserved, field) end
redis.call('HSET', reserved, '_committed', tostring(after))
return {1, tostring(after)}
"""


@dataclass(frozen=True)
class Claim:
    ok: bool
    committed: float  # the fleet's budget in use after the call (before it, when refused)


class FleetBudget:
    def __init__(self, r: aioredis.Redis, keys: Keys, total_max: float) -> None:
        self.r = r
        self.keys = keys
        self.total_max = total_max
        self._script = r.register_script(_SCRIPT)

    @staticmethod
    def field(set_id: str) -> str:
        return ARB_RESERVED_PREFIX + set_id

    async def room(self, set_id: str) -> float:
        """$ this set could still claim: the total less every other claim."""
        async with self.r.pipeline(transaction=False) as p:
            p.hget(self.keys.reserved(), "_committed")
            p.hget(self.keys.reserved(), self.field(set_id))
            committed, mine = await p.execute()
        return self.total_max - float(committed or 0) + float(mine or 0)

    async def claim(self, set_id: str, amount: float) -> Claim:
        ok, committed = await self._script(keys=[self.keys.reserved()],
                                           args=[self.field(set_id), repr(round(amount, 6)), repr(self.total_max)])
        return Claim(int(ok) == 1, float(committed))

    async def settle(self, set_id: str, held: float) -> float:
        """Set the set's claim to ``held`` (what is still at risk), never refused."""
        _, committed = await self._script(keys=[self.keys.reserved()],
                                          args=[self.field(set_id), repr(round(max(held, 0.0), 6)), "-1"])
        return float(committed)
