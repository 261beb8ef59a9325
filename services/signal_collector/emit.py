"""SignalWriter: the one place signals reach the stream, each at most once per scope.

Two sources (the poller and the live-data socket) see the same trades, and a restart re-reads
what the cursor has not yet passed. One Lua script makes "not seen yet? then XADD" atomic:

    KEYS[1] signals stream   KEYS[2] pf:seen:{scope} zset   KEYS[3] pf:cursor:{account} hash
    ARGV    maxlen, trim_below ('' = no trim), n, then n x (id, score, nfields, field, value, ...),
            then ncursor, then the cursor's field/value pairs (written last, after the signals)

``ZADD NX`` returns 1 only for an id the scope has not emitted, and only then is the entry
added; the cursor goes in the same script, so a crash can neither lose a signal the cursor
passed nor repeat one. The zset is trimmed below ``cursor - dedup_window_sec``: the poller never
reads below its cursor, and the live-data source drops frames that old (see service).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Signal

BATCH = 400  # signals per script call: keeps one call well under a millisecond-scale block

_SCRIPT = """
local maxlen = ARGV[1]
local trim = ARGV[2]
local n = tonumber(ARGV[3])
local i = 4
local emitted = {}
for _ = 1, n do
  local id, score, nf = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if redis.call('ZADD', KEYS[2], 'NX', score, id) == 1 then
    local fields = {}
    for f = 0, nf - 1 do fields[f + 1] = ARGV[i + f] end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    emitted[#emitted + 1] = id
  end
  i = i + nf
end
local nc = tonumber(ARGV[i])
if nc > 0 then
  local cf = {}
  for f = 1, nc do cf[f] = ARGV[i + f] end
  redis.call('HSET', KEYS[3], unpack(cf))
end
if trim ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. trim) end
return emitted
"""


class SignalWriter:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = redis.register_script(_SCRIPT)

    async def write(self, scope: str, signals: Sequence[Signal], cursor_key: str | None = None,
                    cursor: dict[str, str] | None = None, trim_below: int | None = None) -> list[str]:
        """Emit the signals ``scope`` has not emitted yet (in order); returns the ids emitted.

        The cursor (when given) is written with the last batch, after every signal of the call.
        """
        emitted: list[str] = []
        batches = [signals[i:i + BATCH] for i in range(0, len(signals), BATCH)] or [[]]
        for n, batch in enumerate(batches):
            last = n == len(batches) - 1
            args: list[Any] = [STREAM_MAXLEN["signals"], "" if not last or trim_below is None else trim_below,
                               len(batch)]
            for sig in batch:
                flat = [x for kv in sig.encode().items() for x in kv]
                args += [sig.id, sig.ts_event // 1000, len(flat), *flat]
            pairs = [x for kv in (cursor or {}).items() for x in kv] if last else []
            args += [len(pairs), *pairs]
            keys = [self.keys.signals(), self.keys.seen(scope), cursor_key or self.keys.cursor(scope)]
            got = await self._script(keys=keys, args=args)
            emitted += [g.decode() if isinstance(g, bytes) else str(g) for g in got]
        return emitted
