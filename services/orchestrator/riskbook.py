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

from typing import Any

import redis.asyncio as aioredis

from services.orchestrator.risk import Reservation
from shared.keys import Keys

# KEYS: reserved hash, exposure hash, copy exposure hash. ARGV[1] = op, then per op:
#   reserve: per_token_max, total_max, token1, amount1, token2, amount2, ...
#            -> per token: ok (1/0), why ("" | per_token | total), committed after (before, if refused)
#   release: token                  -> {1, committed}
#   exposure: token, new_exposure   -> {1, committed}
#   copy: token, account, amount    -> {1, the leader's open copies}   (a copy's claim on its leader's budget)
#   copy_keep: token, keep          -> {1, the leader's open copies}   (a partial exit keeps this share)
# release also drops the token's copy claim, so a leader's budget frees wherever a reservation does.
_SCRIPT = """
local reserved, exposure, copies = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local function copy_drop(token, keep)
  local entry = redis.call('HGET', copies, token)
  if not entry then return 0 end
  local account, amount = string.match(entry, '^(.*)|(.*)$')
  local left = tonumber(redis.call('HINCRBYFLOAT', copies, '@' .. account, -tonumber(amount) * (1 - keep)))
  if keep > 0 then
    redis.call('HSET', copies, token, account .. '|' .. tostring(tonumber(amount) * keep))
  else
    redis.call('HDEL', copies, token)
  end
  if left < 1e-9 then redis.call('HDEL', copies, '@' .. account); left = 0 end
  return left
end
if op == 'copy' then
  copy_drop(ARGV[2], 0)
  redis.call('HSET', copies, ARGV[2], ARGV[3] .. '|' .. ARGV[4])
  return {1, redis.call('HINCRBYFLOAT', copies, '@' .. ARGV[3], ARGV[4])}
elseif op == 'copy_keep' then
  return {1, tostring(copy_drop(ARGV[2], tonumber(ARGV[3])))}
end
local function num(v) if v then return tonumber(v) else return nil end end
local function claim(r, e) local c = r or 0; if e > c then c = e end; return c end
local committed = num(redis.call('HGET', reserved, '_committed')) or 0
if op == 'reserve' then
  local per_token, total = tonumber(ARGV[2]), tonumber(ARGV[3])
  local out = {}
  for i = 4, #ARGV, 2 do
    local token, amount = ARGV[i], tonumber(ARGV[i + 1])
    local mine = num(redis.call('HGET', reserved, token))
    local exp = num(redis.call('HGET', exposure, token)) or 0
    if mine then
      table.insert(out, 1); table.insert(out, ''); table.insert(out, tostring(committed))
    elseif amount > per_token + 1e-9 then
      table.insert(out, 0); table.insert(out, 'per_token'); table.insert(out, tostring(committed))
    else
      local after = committed - claim(nil, exp) + claim(amount, exp)
      if after > total + 1e-9 then
        table.insert(out, 0); table.insert(out, 'total'); table.insert(out, tostring(committed))
      else
        redis.call('HSET', reserved, token, tostring(amount))
        committed = after
        table.insert(out, 1); table.insert(out, ''); table.insert(out, tostring(committed))
      end
    end
  end
  redis.call('HSET', reserved, '_committed', tostring(committed))
  return out
end
local token = ARGV[2]
local mine = num(redis.call('HGET', reserved, token))
local exp = num(redis.call('HGET', exposure, token)) or 0
if op == 'release' then
  copy_drop(token, 0)
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


class RiskBook:
    """The Lua-backed reservation book. Calls run immediately or queue on a MULTI pipeline."""

    def __init__(self, r: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = r.register_script(_SCRIPT)

    def _keys(self) -> list[str]:
        return [self.keys.reserved(), self.keys.exposure(), self.keys.copy_exposure()]

    def _queue(self, pipe: Any, args: list[str]) -> None:
        """Queue one call on a MULTI pipeline as EVAL, with the script's text, never EVALSHA: a
        pipeline checks its scripts exist once, before sending, and if Redis restarts (scripts are
        not persisted) between that check and a retried EXEC, the EVALSHA fails inside the
        transaction (found by the soak: the orchestrator crashed with NoScriptError)."""
        keys = self._keys()
        pipe.eval(_SCRIPT, len(keys), *keys, *args)

    async def reserve(self, token_id: str, amount: float, per_token_max: float, total_max: float) -> Reservation:
        [res] = await self.reserve_many([(token_id, amount)], per_token_max, total_max)
        return res

    async def reserve_many(self, wanted: list[tuple[str, float]], per_token_max: float,
                           total_max: float) -> list[Reservation]:
        """Reserve for each (token, amount) in order, first come first served, in one atomic step."""
        if not wanted:
            return []
        args: list[str] = ["reserve", repr(per_token_max), repr(total_max)]
        for token_id, amount in wanted:
            args += [token_id, repr(amount)]
        reply = await self._script(keys=self._keys(), args=args)
        return [Reservation(int(reply[i]) == 1, float(reply[i + 2]), str(reply[i + 1]))
                for i in range(0, len(reply), 3)]

    async def release(self, pipe: Any, token_id: str) -> None:
        """Queue the release of a token's reservation on ``pipe`` (a MULTI pipeline)."""
        self._queue(pipe, ["release", token_id])

    async def set_exposure(self, pipe: Any, token_id: str, exposure: float) -> None:
        """Queue the new exposure of a token (from its fills) on ``pipe``."""
        self._queue(pipe, ["exposure", token_id, repr(exposure)])

    async def copy(self, pipe: Any, token_id: str, account: str, amount: float) -> None:
        """Queue a copy's claim on its leader's budget (pf:copy:exposure); released with the reservation."""
        self._queue(pipe, ["copy", token_id, account.lower(), repr(amount)])

    async def copy_keep(self, pipe: Any, token_id: str, keep: float) -> None:
        """Queue a partial exit's effect on the copy's claim: ``keep`` of it stays (0 < keep < 1)."""
        self._queue(pipe, ["copy_keep", token_id, repr(keep)])

    async def leader_open(self, r: aioredis.Redis, accounts: list[str]) -> dict[str, float]:
        """Each leader's open copies ($), as its budget sees them."""
        if not accounts:
            return {}
        raw = await r.hmget(self.keys.copy_exposure(), [f"@{a.lower()}" for a in accounts])
        return {a.lower(): float(v or 0.0) for a, v in zip(accounts, raw, strict=True)}

    async def committed(self, r: aioredis.Redis) -> float:
        return float(await r.hget(self.keys.reserved(), "_committed") or 0.0)
