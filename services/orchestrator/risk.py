"""Risk budget (C3): notional reservations made atomically in Redis, exposure from real fills.

A token's claim on ``risk.max_notional_total`` is ``max(reserved, exposure)``: what it was
allowed to put at risk when it was admitted, or what its fills really put at risk, whichever is
larger. ``pf:reserved`` holds the reservations and the running sum of those claims
(``_committed``); ``pf:exposure`` holds exposure per token (``_total`` = their sum).

All three operations run as one Lua script, so the check and the reservation are one step: two
admissions racing for the last of the budget cannot both pass, whichever process runs them.
Each operation is idempotent per token (reserve twice = reserve once), so a redelivered signal or
fill never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.keys import Keys

EPSILON = 1e-9

# KEYS: reserved hash, exposure hash. ARGV[1] = op, ARGV[2] = token, then per op:
#   reserve: amount, per_token_max, total_max -> {1, committed} | {0, why, committed}
#   release:                                   -> {1, committed}
#   exposure: new_exposure                     -> {1, committed}
_SCRIPT = """
local reserved, exposure = KEYS[1], KEYS[2]
local op, token = ARGV[1], ARGV[2]
local function num(v) if v then return tonumber(v) else return nil end end
local committed = num(redis.call('HGET', reserved, '_committed')) or 0
local mine = num(redis.call('HGET', reserved, token))
local exp = num(redis.call('HGET', exposure, token)) or 0
local function claim(r, e) local c = r or 0; if e > c then c = e end; return c end
if op == 'reserve' then
  if mine then return {1, tostring(committed)} end
  local amount, per_token, total = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  if amount > per_token + 1e-9 then return {0, 'per_token', tostring(committed)} end
  local after = committed - claim(nil, exp) + claim(amount, exp)
  if after > total + 1e-9 then return {0, 'total', tostring(committed)} end
  redis.call('HSET', reserved, token, tostring(amount))
  redis.call('HSET', reserved, '_committed', tostring(after))
  return {1, tostring(after)}
elseif op == 'release' then
  if not mine then return {1, tostring(committed)} end
  local after = committed - claim(mine, exp) + claim(nil, exp)
  if after < 1e-9 then after = 0 end
  redis.call('HDEL', reserved, token)
  redis.call('HSET', reserved, '_committed', tostring(after))
  return {1, tostring(after)}
elseif op == 'exposure' then
  local new = tonumber(ARGV[3])
  local after = committed - claim(mine, exp) + claim(mine, new)
  if after < 1e-9 then after = 0 end
  local total = (num(redis.call('HGET', exposure, '_total')) or 0) - exp + new
  if math.abs(total) < 1e-9 then total = 0 end
  redis.call('HSET', exposure, token, tostring(new))
  redis.call('HSET', exposure, '_total', tostring(total))
  redis.call('HSET', reserved, '_committed', tostring(after))
  return {1, tostring(after)}
end
return redis.error_reply('unknown risk op ' .. tostring(op))
"""


@dataclass(frozen=True)
class Reservation:
    ok: bool
    committed: float  # the budget in use after the call (before it, when refused)
    refused_by: str = ""  # "per_token" | "total" when not ok


def planned_notional(params: dict[str, Any]) -> float:
    """What one session may put at risk: its order size at the highest price it may buy at.

    ``params`` is the merged START parameter set; the bound uses the session's own overrides, so
    a token configured for bigger orders reserves more.
    """
    strategy = params.get("maker_strategy", {})
    size = float(strategy.get("order_size", 0.0))
    price_cap = min(float(strategy.get("max_price", 1.0)), float(strategy.get("buy_price_threshold", 1.0)))
    return round(size * max(price_cap, 0.0), 6)


class RiskBook:
    """The Lua-backed reservation book. Calls run immediately or queue on a MULTI pipeline."""

    def __init__(self, r: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = r.register_script(_SCRIPT)

    def _keys(self) -> list[str]:
        return [self.keys.reserved(), self.keys.exposure()]

    async def reserve(self, token_id: str, amount: float, per_token_max: float, total_max: float) -> Reservation:
        reply = await self._script(keys=self._keys(),
                                   args=["reserve", token_id, repr(amount), repr(per_token_max), repr(total_max)])
        if int(reply[0]) == 1:
            return Reservation(True, float(reply[1]))
        return Reservation(False, float(reply[2]), str(reply[1]))

    async def release(self, pipe: Any, token_id: str) -> None:
        """Queue the release of a token's reservation on ``pipe`` (a MULTI pipeline)."""
        await self._script(keys=self._keys(), args=["release", token_id], client=pipe)

    async def set_exposure(self, pipe: Any, token_id: str, exposure: float) -> None:
        """Queue the new exposure of a token (from its fills) on ``pipe``."""
        await self._script(keys=self._keys(), args=["exposure", token_id, repr(exposure)], client=pipe)

    async def committed(self, r: aioredis.Redis) -> float:
        return float(await r.hget(self.keys.reserved(), "_committed") or 0.0)
