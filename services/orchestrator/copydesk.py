"""The copy-trading room's I/O for intake (docs/copytrading.md): one read per BUY run of what the
copy rules need (each leader's open copies and portfolio value, the books), and the writes that
keep a leader's open copies and holdings right. The rules are shared/copy_rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from services.orchestrator.riskbook import RiskBook
from shared.config import Settings
from shared.copy_rules import HELD_DUST, CopySize, book_asks, exit_fraction, guard, held_field, size_copy
from shared.keys import Keys
from shared.messages import Signal

SCREEN = "screen"


def is_copy(sig: Signal) -> bool:
    """A followed wallet's trade (the screen's and manual signals are not copies of anyone)."""
    return bool(sig.account) and sig.source != SCREEN


@dataclass
class CopyInputs:
    leader_open: dict[str, float] = field(default_factory=dict)  # $ of open copies per leader (this run adds)
    leader_value: dict[str, float | None] = field(default_factory=dict)
    books: dict[str, dict[str, str]] = field(default_factory=dict)


class CopyDesk:
    def __init__(self, redis: aioredis.Redis, keys: Keys, risk: RiskBook) -> None:
        self.redis, self.keys, self.risk = redis, keys, risk

    async def read(self, sigs: list[Signal]) -> CopyInputs:
        copies = [s for s in sigs if is_copy(s)]
        if not copies:
            return CopyInputs()
        accounts = sorted({s.account.lower() for s in copies})
        tokens = [s.token_id for s in copies]
        async with self.redis.pipeline(transaction=False) as rp:
            rp.hmget(self.keys.copy_exposure(), [f"@{a}" for a in accounts])
            rp.hmget(self.keys.leader_value(), accounts)
            for token in tokens:
                rp.hgetall(self.keys.book(token))
            opens, values, *books = await rp.execute()
        return CopyInputs({a: float(v or 0.0) for a, v in zip(accounts, opens, strict=True)},
                          {a: float(v) if v else None for a, v in zip(accounts, values, strict=True)},
                          dict(zip(tokens, books, strict=True)))

    @staticmethod
    def plan(sig: Signal, params: dict[str, Any], inputs: CopyInputs, settings: Settings,
             now: int) -> tuple[CopySize, str | None]:
        """The copy's size and the guard's verdict (a reason to skip, or None); on success the
        START params carry the size (maker_strategy.order_size) and the leader's open copies in
        ``inputs`` count it, so a second copy of the same leader in the run sees it."""
        acct = sig.account.lower()
        rules = settings.copytrade.rules_for(acct)
        size = size_copy(rules, sig.size, sig.price, float(params["maker_strategy"]["order_size"]),
                         inputs.leader_open.get(acct, 0.0), inputs.leader_value.get(acct),
                         settings.copytrade.bankroll_usd)
        if not size.ok:
            return size, size.reason
        asks = book_asks(inputs.books.get(sig.token_id), now, int(settings.gateway.stale_after_sec * 1000))
        skip = guard(asks, sig.price, size.shares, rules.max_slippage_bps)
        if skip is None:
            params["maker_strategy"]["order_size"] = size.shares
            unchecked = asks is None and rules.max_slippage_bps > 0
            params["copy"] = {"account": acct, "notional": size.notional, "sizing": size.reason,
                              "guard": "no book" if unchecked else "passed"}
            if unchecked:  # the session holds the limit instead (services/maker_worker/copycap.py)
                params["copy"].update(leader_price=sig.price, max_slippage_bps=rules.max_slippage_bps)
            inputs.leader_open[acct] = inputs.leader_open.get(acct, 0.0) + size.notional
        return size, skip

    def saw_buy(self, pipe: Any, sig: Signal) -> None:
        """The leader bought: what it holds (as the signals add up) grows."""
        if is_copy(sig) and sig.size > 0:
            pipe.hincrbyfloat(self.keys.leader_held(), held_field(sig.account, sig.token_id), sig.size)

    async def saw_sell(self, pipe: Any, sig: Signal, settings: Settings) -> float | None:
        """The leader sold: the share of ours to sell (None: a full exit), and what it holds shrinks."""
        if not is_copy(sig):
            return None
        name = held_field(sig.account, sig.token_id)
        held = float(await self.redis.hget(self.keys.leader_held(), name) or 0.0)
        if held - sig.size < HELD_DUST:
            pipe.hdel(self.keys.leader_held(), name)
        else:
            pipe.hset(self.keys.leader_held(), name, repr(held - sig.size))
        return exit_fraction(settings.copytrade.rules_for(sig.account).exit_mode, held, sig.size)
