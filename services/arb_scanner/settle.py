"""Waiting for an execution's trades to settle (docs/venue.md T1-T3).

The venue matches a fill at once and settles it later: MATCHED -> MINED -> CONFIRMED, or
RETRYING -> FAILED. Until a leg's trades are CONFIRMED its shares are not in the wallet (a merge
of them is refused); a FAILED trade's shares never changed hands (a BUY's collateral never left,
a SELL's shares stayed). So after the legs, and after an unwind, the executor waits here -- at
most ``arbitrage.settle_wait_sec``, reading the trades' status every ``settle_poll_sec`` through
the venue room (:meth:`~shared.venue.taker.TakerOrders.trades`) -- and voids what FAILED from the
fill it belonged to. A fill whose order answer named no trade has nothing to wait for.

The decisions (which trades are final, what failed adds up to) are pure; :class:`Settling` is the
polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.config import ArbitrageSection
from shared.venue.views import TradeView

CONFIRMED, FAILED = "CONFIRMED", "FAILED"
Views = Mapping[str, TradeView | None]


@dataclass(frozen=True)
class SettleRules:
    wait_s: float = 120.0  # the legs' trades may take this long to settle before the executor goes on
    poll_s: float = 1.0  # their status is read this often meanwhile
    merge_retry_s: float = 60.0  # a merge refused for shares not there yet is retried this long

    @classmethod
    def from_config(cls, cfg: ArbitrageSection) -> SettleRules:
        return cls(cfg.settle_wait_sec, cfg.settle_poll_sec, cfg.merge_retry_sec)


class TradeReader(Protocol):
    async def trades(self, trade_ids: Iterable[str]) -> Mapping[str, TradeView | None]: ...


@dataclass(frozen=True)
class Voided:
    """The FAILED trades among some trade ids: their shares and $ (shares x price) never moved."""

    shares: float = 0.0
    cash: float = 0.0
    trades: tuple[str, ...] = ()


def final(view: TradeView | None) -> bool:
    return view is not None and view.status.upper() in (CONFIRMED, FAILED)


def unsettled(trade_ids: Iterable[str], views: Views) -> list[str]:
    """The trades not known CONFIRMED or FAILED (a trade the venue does not list yet included)."""
    return [t for t in trade_ids if not final(views.get(t))]


def voided(trade_ids: Iterable[str], views: Views) -> Voided:
    failed = [v for t in trade_ids if (v := views.get(t)) is not None and v.status.upper() == FAILED]
    return Voided(round(sum(v.size for v in failed), 6), round(sum(v.size * v.price for v in failed), 6),
                  tuple(v.trade_id for v in failed))


class Settling:
    def __init__(self, reader: TradeReader, rules: SettleRules,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.reader = reader
        self.rules = rules
        self.sleep = sleep

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def deadline(self) -> float:
        return self.now() + self.rules.wait_s

    async def wait(self, trade_ids: Iterable[str], until: float) -> dict[str, TradeView | None]:
        """Read the trades until every one is final or ``until`` (loop time) has passed; at least
        once. Their last readings (a trade never read is missing: unsettled)."""
        ids = list(dict.fromkeys(trade_ids))
        views: dict[str, TradeView | None] = {}
        while True:
            got = await self.reader.trades(unsettled(ids, views))
            views.update({t: v for t, v in got.items() if v is not None})  # an unread trade keeps its last reading
            if not unsettled(ids, views):
                return views
            left = until - self.now()
            if left <= 0:
                return views
            await self.sleep(min(self.rules.poll_s, left))
