"""Auto-demotion's I/O (docs/copytrading.md "Auto-demotion"): every
``copytrade.demotion.check_interval_sec`` the leader reads the followed wallets' scorecards (the
demotion's own, smaller windows: the scorecard's full ones cost seconds) and pauses each one a
rule condemns: a ``pf:leaders:paused`` entry and a ``leader.paused`` warning (the alerter sends
it). The rules are shared/demotion.py. A paused leader is not evaluated again: it stays paused
until an operator resumes it, so a leader near a threshold cannot flap; a resumed leader is judged
afresh, on its signals and copies after the resume (``pf:leaders:resumed``), or the history that
paused it would pause it again at the next check.

The operator's pause and resume (control requests) write the same entry and events.
"""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.config import Settings
from shared.demotion import AUTO, demotion_reason, pause_entry, paused_leaders
from shared.keys import Keys
from shared.marks import as_float
from shared.scorecard_reads import read_cards


class Demotion:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: TokenStore,
                 settings: Callable[[], Settings]) -> None:
        self.redis, self.keys, self.store = redis, keys, store
        self.settings = settings  # read at each use: a reload takes effect at once
        self._last_check = float("-inf")
        self.checks = 0  # how many checks ran (tests wait on it)

    def due(self, loop_now: float) -> bool:
        rules = self.settings().copytrade.demotion
        return rules.any_rule and loop_now - self._last_check >= rules.check_interval_sec

    async def check(self, loop_now: float) -> list[str]:
        """Pause every followed, unpaused leader that breaks a rule; the addresses paused."""
        self._last_check = loop_now
        self.checks += 1
        settings = self.settings()
        rules = settings.copytrade.demotion
        window = settings.copytrade.scorecard.model_copy(
            update={"read_signals": rules.read_signals, "read_fills": rules.read_fills, "read_events": 0})
        resumed = {a: int(as_float(ms)) for a, ms in (await self.redis.hgetall(self.keys.leaders_resumed())).items()}
        cards, _ = await read_cards(self.redis, self.keys, settings, window, since=resumed)
        paused = paused_leaders(await self.redis.hgetall(self.keys.leaders_paused()))
        verdicts = [(c.account, demotion_reason(c, rules)) for c in cards if c.followed and c.account not in paused]
        condemned = [(account, reason) for account, reason in verdicts if reason is not None]
        if not condemned:
            return []
        pipe = self.redis.pipeline(transaction=True)
        for account, reason in condemned:
            self.pause(pipe, account, reason, AUTO, f"{AUTO}:{account}:{now_ms()}")
            logger.warning("leader {} paused: {}", account, reason)
        await pipe.execute()
        return [account for account, _ in condemned]

    def pause(self, pipe: Pipe, account: str, reason: str, by: str, cause: str) -> None:
        pipe.hset(self.keys.leaders_paused(), account.lower(), pause_entry(reason, now_ms(), by))
        self.store.event(pipe, "leader.paused", "", reason, level="warning", cause=cause, account=account.lower(),
                         by=by)

    async def resume(self, pipe: Pipe, account: str, reason: str, by: str, cause: str) -> bool:
        """Unpause ``account``; False (nothing changed, a warning event) when it is not paused."""
        if not await self.redis.hexists(self.keys.leaders_paused(), account.lower()):
            self.store.event(pipe, "leader.resume_refused", "", f"{account.lower()} is not paused; nothing done",
                             level="warning", cause=cause, account=account.lower(), by=by)
            return False
        pipe.hdel(self.keys.leaders_paused(), account.lower())
        pipe.hset(self.keys.leaders_resumed(), account.lower(), now_ms())  # the rules judge it afresh from now
        self.store.event(pipe, "leader.resumed", "", reason or "resumed by operator", cause=cause,
                         account=account.lower(), by=by)
        return True
