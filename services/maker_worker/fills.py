"""Booking a session's fills: the one place a fill is booked (the strategy's position and PnL,
``pf:fills`` with the snapshot that counts it, the metrics). docs/architecture.md "Fills and
settlement" is the contract.

One fill per venue trade of our order: the order's answer (``tradeIDs``) and its later reads
(``associate_trades``) name the trades, and each is read from the venue's trades endpoint for our
side, shares, price and its settlement status. A trade still pending is followed until it settles
(:mod:`services.maker_worker.trades`); one already FAILED is written (the orchestrator voids it)
but never counted by the strategy. What an order matched that no trade accounts for (an executor
that names no trades, such as paper; trades the venue did not list after a few reads) is booked as
one fill without a trade, as before: CONFIRMED, the venue's balance being its record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.executor import Executor
from services.maker_worker.trades import FAILED, TradeFollower
from services.maker_worker.volatility import VolatilityStrategy
from shared.clock import now_ms
from shared.messages import Fill, TradeStatus, stable_id
from shared.venue.views import TradeView

FINISH_READS = 4  # reads of an order's trades before what they leave unexplained is booked without one
UNEXPLAINED = 0.005  # shares: less than this between matched and booked is rounding, not a missing trade


class VenueRead(Protocol):
    async def __call__(self, what: str, read: Callable[[], Awaitable[Any]]) -> Any: ...


class FillHost(Protocol):
    @property
    def strategy(self) -> VolatilityStrategy: ...

    async def snapshot(self, *messages: Fill | TradeStatus) -> None:
        """Persist the strategy's state, and ``messages`` on ``pf:fills`` with it (atomically)."""


class FillBook:
    def __init__(self, host: FillHost, executor: Executor, follower: TradeFollower, token_id: str, epoch: int,
                 worker_id: str, pause: Callable[[float], Awaitable[None]], read: VenueRead) -> None:
        self.host, self.ex, self.follower = host, executor, follower
        # the trades read is retried while the venue is throttled and waits out its restart window
        # (VenueReads.read): a fill booked without its trade would never be followed to settlement
        self.read = read
        self.token_id, self.epoch, self.worker_id = token_id, epoch, worker_id
        self.pause = pause
        self.booked: dict[str, float] = {}  # order id -> shares booked for it
        self.seen: dict[str, set[str]] = {}  # order id -> its trades booked (or found beyond what it matched)
        self.unexplained_ms = 0  # when a fill without a trade was last booked

    async def book(self, side: str, order_id: str, intent_id: str, trade_ids: Iterable[str], matched: float,
                   price: float) -> None:
        """Book what the venue says ``order_id`` has matched so far (``matched`` shares, in
        ``trade_ids``): a fill per trade not booked yet. A trade the venue does not list yet waits
        for the next call. An order that names no trades is booked by its matched size."""
        ids = list(trade_ids)
        if not ids:
            await self._unexplained(side, order_id, intent_id, matched, price)
            return
        seen = self.seen.setdefault(order_id, set())
        new = [t for t in dict.fromkeys(ids) if t not in seen]
        if not new:
            return
        views = await self.read("trades read", lambda: self.ex.trades(new, strict=True))
        for trade_id in new:
            view = views.get(trade_id)
            if view is None:
                continue
            seen.add(trade_id)
            if self.booked.get(order_id, 0.0) + view.our_size > matched + UNEXPLAINED:
                # booked already without its trade (the venue listed it late): counting it again would double it
                logger.warning("{}: trade {} of order {} is beyond the {:.2f} matched; not booked twice",
                               self.token_id, trade_id[:12], order_id[:12], matched)
                continue
            await self._book_trade(side, order_id, view)

    async def finish(self, side: str, order_id: str, intent_id: str, trade_ids: Iterable[str], matched: float,
                     price: float) -> None:
        """The order matches no more: book each of its trades; what they do not account for after
        a few reads is booked as one fill without a trade (so the position is never short of
        what the venue matched)."""
        ids = list(trade_ids)
        for attempt in range(FINISH_READS):
            await self.book(side, order_id, intent_id, ids, matched, price)
            if not ids or matched - self.booked.get(order_id, 0.0) < UNEXPLAINED:
                return
            if attempt + 1 < FINISH_READS:
                await self.pause(0.5 * 2 ** attempt)
        logger.warning("{}: order {} matched {:.2f}, its trades listed {:.2f}: the rest booked without a trade",
                       self.token_id, order_id[:12], matched, self.booked.get(order_id, 0.0))
        await self._unexplained(side, order_id, intent_id, matched, price)

    async def _unexplained(self, side: str, order_id: str, intent_id: str, matched: float, price: float) -> None:
        rest = round(matched - self.booked.get(order_id, 0.0), 6)
        if rest >= UNEXPLAINED:
            await self.record(side, rest, price, intent_id, order_id, round(matched, 6))

    async def _book_trade(self, side: str, order_id: str, view: TradeView) -> None:
        status = view.status.upper()
        size, price = view.our_size, view.our_price
        self.booked[order_id] = round(self.booked.get(order_id, 0.0) + size, 6)
        # the venue takes a taker's fee from the pUSD balance and its trade record does not say it
        # (docs/venue.md F1): the fill carries it, from the market's schedule
        fee = self.ex.fees_of(self.token_id).of_trade(view.trader_side, size, price)
        fill = self._fill(stable_id("fill", view.trade_id, order_id), side, size, price, order_id,
                          view.trade_id, status, fee, view.matched_ms)
        if status == FAILED:  # learned late: it never was a position; the orchestrator voids it
            logger.warning("{}: trade {} of order {} had FAILED when first read; not counted", self.token_id,
                           view.trade_id[:12], order_id[:12])
            await self.host.snapshot(fill)
            return
        self.follower.follow(view, side, fee)  # before the fill: a SELL keeps the cost basis it is booked against
        await self._count(fill)

    async def record(self, side: str, size: float, price: float, intent_id: str, order_id: str,
                     cumulative: float) -> None:
        """Book a fill no venue trade names (paper, a reconcile with the venue's balance). The id
        comes from the order and its cumulative matched size, so a re-read never books it twice."""
        self.unexplained_ms = now_ms()  # its trade, unknown to us, may not have settled yet
        if order_id:
            self.booked[order_id] = round(max(self.booked.get(order_id, 0.0), cumulative), 6)
        await self._count(self._fill(stable_id("fill", intent_id, order_id, f"{cumulative:.6f}"), side, size, price,
                                     order_id, "", "CONFIRMED"))

    async def _count(self, fill: Fill) -> None:
        strategy = self.host.strategy
        strategy.on_fill(fill.side, fill.size, fill.price, now_ms(), fee=fill.fee, final=False)
        metrics.FILLS.labels(fill.side).inc()
        metrics.FILLED_SHARES.labels(fill.side).inc(fill.size)
        await self.host.snapshot(fill)
        logger.info("{}: {} {:.2f} @ {:.4f} filled{}; position {:.2f}", self.token_id, fill.side, fill.size,
                    fill.price, f" (trade {fill.trade_id[:12]} {fill.status})" if fill.trade_id else "",
                    strategy.position)

    def _fill(self, fill_id: str, side: str, size: float, price: float, order_id: str, trade_id: str,
              status: str, fee: float = 0.0, matched_ms: int = 0) -> Fill:
        """``ts_event`` is the venue's match time when its trade says it, else now (booked on sight)."""
        now = now_ms()
        return Fill(id=fill_id, ts_event=matched_ms or now, ts_init=now, producer=self.worker_id,
                    token_id=self.token_id, epoch=self.epoch, worker=self.worker_id, order_id=order_id,
                    side=side, price=price, size=size, fee=fee, trade_id=trade_id,
                    status=status)  # type: ignore[arg-type]
