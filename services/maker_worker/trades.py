"""The venue trades behind a session's fills, followed until they settle (docs/venue.md T1-T2;
docs/architecture.md "Fills and settlement").

The venue matches a trade at once and settles it later: MATCHED -> MINED -> CONFIRMED, or
RETRYING -> FAILED. Until it is CONFIRMED the shares a BUY bought are not in the wallet (selling
them is refused "not enough balance / allowance") and the shares a SELL sold still are; a FAILED
trade never was (a BUY's shares never came, a SELL's never left).

:class:`PendingTrades` (pure) is the session's list of its unsettled trades: what they add to the
venue's settled balance, and how a FAILED one is taken out of the strategy (:func:`void`). It is
written to ``pf:session:{token}`` with every snapshot (field ``trades``), so the next owner (a
hand-back, a crash) follows them on. :class:`TradeFollower` reads their status from the venue's
trades endpoint and reports each change as a :class:`~shared.messages.TradeStatus` on
``pf:fills``, in the same transaction as the snapshot that drops a final one from the list.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.executor import Executor
from services.maker_worker.volatility import State, VolatilityStrategy
from shared.clock import now_ms
from shared.ledger import FINAL, PENDING
from shared.messages import TradeStatus, stable_id
from shared.venue.views import TradeView

CONFIRMED, FAILED = "CONFIRMED", "FAILED"


@dataclass
class Followed:
    """One of our trades not settled yet: our side, shares and price in it, and (a SELL) the
    strategy's average cost when it was booked, to undo its PnL should it fail."""

    trade_id: str
    side: str
    size: float
    price: float
    status: str
    avg_cost: float = 0.0
    fee: float = 0.0  # the taker fee booked with it (a FAILED trade charged none: it is given back)


class PendingTrades:
    def __init__(self) -> None:
        self.trades: dict[str, Followed] = {}

    def __bool__(self) -> bool:
        return bool(self.trades)

    def add(self, trade: Followed) -> None:
        if trade.status in PENDING:
            self.trades[trade.trade_id] = trade

    def buys(self) -> list[str]:
        return [t.trade_id for t in self.trades.values() if t.side == "BUY"]

    def delta(self) -> float:
        """What the pending trades will add to the settled balance if they all settle."""
        return round(sum(t.size if t.side == "BUY" else -t.size for t in self.trades.values()), 6)

    def selling(self) -> float:
        """Shares still in the wallet that pending SELLs have sold (not ours to sell again)."""
        return round(sum(t.size for t in self.trades.values() if t.side == "SELL"), 6)

    def update(self, trade_id: str, status: str) -> Followed | None:
        """A new status read for ``trade_id``: the trade as it now is when the status changed (and
        gone from the list when final), else None."""
        trade = self.trades.get(trade_id)
        if trade is None or status == trade.status or status not in PENDING | FINAL:
            return None
        trade.status = status
        if status in FINAL:
            del self.trades[trade_id]
        return trade

    def dump(self) -> str:
        return json.dumps([asdict(t) for t in self.trades.values()], separators=(",", ":"))

    @classmethod
    def load(cls, raw: str | None) -> PendingTrades:
        out = cls()
        for row in json.loads(raw) if raw else []:
            out.add(Followed(**row))
        return out


def void(strategy: VolatilityStrategy, trade: Followed) -> None:
    """Take a FAILED trade out of the strategy: a BUY's shares never came (the average cost is
    what the other buys paid), a SELL's shares never left (its PnL is undone, at the average cost
    it was booked against); a taker's fee booked with it is given back (it never settled). An order being worked keeps its state; the next intent sees the change."""
    s = strategy
    if trade.side == "BUY":
        left = s.position - trade.size
        if left < s.dust:
            s.position, s.avg_cost = max(round(left, 6), 0.0), 0.0
        else:
            s.avg_cost = max((s.position * s.avg_cost - trade.size * trade.price) / left, 0.0)
            s.position = round(left, 6)
    else:
        s.realized_pnl -= trade.size * (trade.price - trade.avg_cost)
        total = s.position + trade.size
        s.avg_cost = (s.position * s.avg_cost + trade.size * trade.avg_cost) / total
        s.position = round(total, 6)
    s.fees -= trade.fee
    s.realized_pnl += trade.fee
    if not s.awaiting:
        s.state = State.LONG if s.position >= s.dust else State.FLAT


Publish = Callable[[TradeStatus], Awaitable[None]]  # one status, written with the snapshot that counts it


class TradeFollower:
    """Reads the session's pending trades from the venue and reports what changed."""

    def __init__(self, executor: Executor, strategy: Callable[[], VolatilityStrategy], publish: Publish,
                 token_id: str, epoch: int, worker_id: str) -> None:
        self.ex, self.strategy, self.publish = executor, strategy, publish
        self.token_id, self.epoch, self.worker_id = token_id, epoch, worker_id
        self.pending = PendingTrades()
        self.changes = 0  # status changes seen: a position read between two refreshes is exact if unchanged
        self.failed = 0  # trades seen FAILED

    def follow(self, view: TradeView, side: str, fee: float = 0.0) -> None:
        """A trade we just wrote a fill for (with its status then): followed while it is pending."""
        self.pending.add(Followed(view.trade_id, side, view.our_size, view.our_price, view.status.upper(),
                                  self.strategy().avg_cost, fee))

    async def refresh(self) -> int:
        """Read every pending trade once; report and apply each change. -> changes seen."""
        if not self.pending:
            return 0
        views = await self.ex.trades(list(self.pending.trades))
        seen = 0
        for trade_id, view in views.items():
            if view is None:  # not listed, or unread this time: still pending as far as we know
                continue
            trade = self.pending.update(trade_id, view.status.upper())
            if trade is None:
                continue
            seen += 1
            metrics.TRADE_STATUSES.labels(trade.status).inc()
            if trade.status == FAILED:
                void(self.strategy(), trade)
                self.failed += 1
                logger.warning("{}: trade {} ({} {:.2f} @ {:.4f}) FAILED at settlement: voided; position {:.2f}",
                               self.token_id, trade_id[:12], trade.side, trade.size, trade.price,
                               self.strategy().position)
            await self.publish(TradeStatus(
                id=stable_id("trade", trade_id, trade.status), ts_event=now_ms(), ts_init=now_ms(),
                producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
                trade_id=trade_id, status=trade.status,  # type: ignore[arg-type]
                tx_hash=view.transaction_hash or ""))
        self.changes += seen
        return seen

    async def wait(self, buys_only: bool, seconds: float, poll_s: float,
                   pause: Callable[[float], Awaitable[None]], stopped: Callable[[], bool]) -> bool:
        """Follow the pending trades (only the BUYs: ``buys_only``) until each is final, for at most
        ``seconds``; ``pause`` sleeps between reads (and wakes on STOP). -> True when none is left."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while True:
            await self.refresh()
            left = self.pending.buys() if buys_only else list(self.pending.trades)
            if not left:
                return True
            if loop.time() >= until or stopped():
                logger.warning("{}: {} trade(s) still unsettled after {:.0f}s", self.token_id, len(left), seconds)
                return False
            await pause(min(poll_s, until - loop.time()))
