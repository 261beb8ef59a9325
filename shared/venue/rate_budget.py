"""One signer's order and cancel budget, shared by every process that signs for it (docs/venue.md R2,
issue 16 item 4).

The venue keeps one order bucket and one cancel bucket per signer, whichever process sends; each
answer reports the bucket in ``Poly-RateLimit-*`` headers and a 429 names a ``Retry-After``. A
process that only knew its own answers would keep sending while the others had spent the bucket.
So the fleet keeps what the venue last said in one Redis hash per signer and bucket
(``pf:ratelimit:{signer}:{bucket}``), and every sender asks it first:

* :meth:`RateBudget.acquire` (one Lua step): while a 429's ``throttled_until`` has not passed, or
  the known ``remaining`` cannot pay the cost before ``reset``, the answer is "wait this long";
  otherwise the cost is taken from ``remaining`` at once, so two processes cannot both spend the
  last token before the venue's next report. A ``reset`` that has passed makes ``remaining``
  unknown (the bucket refilled) and sends go out until the next report. The caller waits and
  asks again; a wait longer than ``rate_budget.max_wait_sec`` raises
  :class:`~shared.venue.errors.VenueUnavailable` (status 429, not sent).
* :meth:`RateBudget.report` (one Lua step): each answer's headers replace ``remaining``,
  ``reset``, ``tier`` and ``warning`` (the venue's count is the truth, spends since included);
  a 429 raises ``throttled_until`` (never lowers it).

Waiting for ``reset`` (when the bucket is full again) is conservative: a token trickles back
sooner, but the headers give no rate. Redis away: the process falls back to its own view
(:class:`~shared.venue.ratelimit.SignerRateLimit`) rather than stop trading; the venue's 429s
still hold it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

import redis.asyncio as aioredis
from loguru import logger
from polymarket.rate_limit import RateLimitUpdate
from prometheus_client import Counter
from redis.exceptions import RedisError

from shared.config import Settings
from shared.keys import Keys
from shared.venue.errors import VenueUnavailable
from shared.venue.ratelimit import SignerRateLimit, collecting

Bucket = Literal["orders", "cancels"]
ORDERS: Bucket = "orders"
CANCELS: Bucket = "cancels"
TTL_MS = 600_000  # a signer nobody reported on for 10 minutes: its state is stale anyway
MAX_NAP_S = 1.0  # ask again at least this often while waiting (another process's report may free it)

WAITS = Counter("polyfleet_rate_budget_waits", "Sends held back by the shared per-signer rate budget, by bucket",
                ("bucket",))
REFUSED = Counter("polyfleet_rate_budget_refused",
                  "Sends not made because the rate budget stayed spent past rate_budget.max_wait_sec", ("bucket",))

# KEYS[1] budget hash. ARGV: now (unix s), cost -> seconds to wait ("0": taken)
_TAKE = """
local key, now, cost = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local f = redis.call('HMGET', key, 'remaining', 'reset', 'throttled_until')
local wait = 0
local throttled = tonumber(f[3])
if throttled and throttled > now then wait = throttled - now end
local remaining, reset = tonumber(f[1]), tonumber(f[2])
if remaining and reset and reset <= now then
  redis.call('HDEL', key, 'remaining')
  remaining = nil
end
if remaining and remaining < cost then
  local refill = (reset or now) - now
  if refill > wait then wait = refill end
end
if wait > 0 then return tostring(wait) end
if remaining then redis.call('HSET', key, 'remaining', tostring(remaining - cost)) end
return '0'
"""

# KEYS[1] budget hash. ARGV: remaining, reset, tier, warning ('' = not reported), throttled_until
# ('' = none), now, ttl ms
_REPORT = """
local key = KEYS[1]
if ARGV[1] ~= '' then redis.call('HSET', key, 'remaining', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', key, 'reset', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', key, 'tier', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', key, 'warning', ARGV[4]) end
if ARGV[5] ~= '' then
  local old = tonumber(redis.call('HGET', key, 'throttled_until') or '0')
  if tonumber(ARGV[5]) > old then redis.call('HSET', key, 'throttled_until', ARGV[5]) end
end
redis.call('HSET', key, 'updated_at', ARGV[6])
redis.call('HINCRBY', key, 'reports', 1)
redis.call('PEXPIRE', key, tonumber(ARGV[7]))
return 1
"""


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RateBudget:
    """The shared budget of ``local.signer``, as one process sees and spends it."""

    def __init__(self, r: aioredis.Redis, keys: Keys, local: SignerRateLimit, max_wait_s: float,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.r, self.keys, self.local = r, keys, local
        self.max_wait_s = max_wait_s
        self.clock, self.sleep = clock, sleep
        self._take = r.register_script(_TAKE)
        self._report = r.register_script(_REPORT)
        self.redis_ok = True

    def key(self, bucket: Bucket) -> str:
        return self.keys.ratelimit(self.local.signer, bucket)

    async def wait_s(self, bucket: Bucket, cost: float = 1) -> float:
        """0 when ``cost`` was taken from the budget; else how long to wait before asking again."""
        try:
            wait = float(await self._take(keys=[self.key(bucket)], args=[repr(self.clock()), repr(float(cost))]))
        except (RedisError, OSError) as exc:
            if self.redis_ok:
                logger.warning("shared rate budget unreadable ({}); using this process's own view", exc)
            self.redis_ok = False
            return self.local.wait_s(self.clock())
        self.redis_ok = True
        return wait

    async def acquire(self, bucket: Bucket, cost: float = 1) -> None:
        """Return once ``cost`` may be spent; raise VenueUnavailable (429, nothing sent) when that
        would take longer than ``max_wait_s``."""
        started = self.clock()
        counted = False
        while (wait := await self.wait_s(bucket, cost)) > 0:
            if self.clock() - started + wait > self.max_wait_s:
                REFUSED.labels(bucket).inc()
                raise VenueUnavailable(f"the {bucket} rate budget of signer {self.local.signer} is spent for "
                                       f"{wait:.1f}s more (rate_budget.max_wait_sec {self.max_wait_s:g})",
                                       status=429, retry_after=wait)
            if not counted:
                WAITS.labels(bucket).inc()
                counted = True
            await self.sleep(min(wait, MAX_NAP_S))

    async def report(self, bucket: Bucket, updates: list[RateLimitUpdate], throttled_until: float = 0.0) -> None:
        """What the venue said about ``bucket`` in one call: its last header report, and a 429's hold."""
        if not updates and throttled_until <= self.clock():
            return
        last = updates[-1] if updates else RateLimitUpdate()
        args = [_num(last.remaining), _num(last.reset), last.tier or "",
                ("1" if last.warning else "0") if updates else "",
                _num(throttled_until) if throttled_until > self.clock() else "", repr(self.clock()), TTL_MS]
        try:
            await self._report(keys=[self.key(bucket)], args=args)
        except (RedisError, OSError) as exc:  # the local view has it; the venue's 429s still count
            logger.warning("could not share the {} rate report: {}", bucket, exc)


def rate_budget(settings: Settings, r: aioredis.Redis, keys: Keys, local: SignerRateLimit) -> RateBudget | None:
    """The shared budget for this signer, or None when ``rate_budget.shared`` is false."""
    cfg = settings.rate_budget
    return RateBudget(r, keys, local, cfg.max_wait_sec) if cfg.shared else None


@asynccontextmanager
async def metered(budget: RateBudget | None, local: SignerRateLimit, bucket: Bucket,
                  cost: float = 1) -> AsyncIterator[None]:
    """Around one order or cancel call: wait for the shared budget first, then file what the venue
    reported (its headers, a 429 noted in ``local``) under ``bucket``, whatever the call's outcome."""
    if budget is None:
        yield
        return
    await budget.acquire(bucket, cost)
    with collecting() as reports:
        try:
            yield
        finally:
            await budget.report(bucket, reports, local.throttled_until)
