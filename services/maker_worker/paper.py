"""Paper trading: fills against the current top of book, no keys, no venue (D7).

:class:`PaperVenue` is the fill model of docs/strategy.md section 12 (pure, used as is by the
backtest); :class:`PaperExecutor` puts it behind the :class:`Executor` interface for the worker in
``mode: paper``, reading the book from the worker's tick feed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from services.maker_worker.executor import NOT_SENT, MarketFacts, OrderResult, OrderStatus, SendGate, Side
from shared.ticks import Tick
from shared.venue.fees import FeeSchedule
from shared.venue.views import TradeView

EPS = 1e-9
NO_MATCH = "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
NOT_FULL = "order couldn't be fully filled. FOK orders are fully filled or killed."
NO_BALANCE = "not enough balance / allowance"
RESTING = ("GTC", "GTD")


class PaperReject(Exception):
    """The paper venue refused the order; the text is the real venue's for the same case."""


@dataclass
class PaperFill:
    order_id: str
    token_id: str
    side: str
    price: float
    size: float
    ts_ms: int


@dataclass
class PaperOrder:
    id: str
    token_id: str
    side: str
    price: float
    size: float
    order_type: str
    created_ms: int
    filled: float = 0.0
    status: str = "LIVE"  # LIVE | MATCHED | CANCELED
    fills: list[PaperFill] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return round(self.size - self.filled, 6)


def _on_grid(price: float, tick: float) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


class PaperVenue:
    def __init__(self, cash: float | None = None) -> None:
        self.cash = cash  # None: unlimited
        self.positions: dict[str, float] = {}
        self.orders: dict[str, PaperOrder] = {}
        self.fills: list[PaperFill] = []
        self.books: dict[str, Tick] = {}
        self.taken: dict[str, dict[str, float]] = {}  # per token, per side: size we took from this book
        self._seq = 0

    # --- book ---------------------------------------------------------------------------------

    def observe(self, tick: Tick, now_ms: int) -> list[PaperFill]:
        """A new top of book: forget what we took from the old one, fill resting orders it crosses."""
        if self.books.get(tick.token_id) == tick:
            return []
        self.books[tick.token_id] = tick
        self.taken[tick.token_id] = {"BUY": 0.0, "SELL": 0.0}
        out: list[PaperFill] = []
        for order in [o for o in self.orders.values() if o.status == "LIVE" and o.token_id == tick.token_id]:
            price, avail = self._available(order.token_id, order.side, order.price)
            if price is not None:
                out.extend(self._fill(order, order.price, min(order.remaining, avail), now_ms))
        return out

    def _available(self, token_id: str, side: str, limit: float) -> tuple[float | None, float]:
        """(price, size) an order at ``limit`` can take now; (None, 0) when the book does not cross it."""
        tick = self.books.get(token_id)
        if tick is None:
            return None, 0.0
        price, size = (tick.ask, tick.ask_size) if side == "BUY" else (tick.bid, tick.bid_size)
        if price is None or (price > limit + EPS if side == "BUY" else price < limit - EPS):
            return None, 0.0
        left = (size if size > 0 else float("inf")) - self.taken.get(token_id, {}).get(side, 0.0)
        return (price, left) if left > EPS else (None, 0.0)

    # --- orders -------------------------------------------------------------------------------

    def free_cash(self) -> float:
        if self.cash is None:
            return float("inf")
        return self.cash - sum(o.remaining * o.price for o in self.orders.values() if o.status == "LIVE" and o.side == "BUY")

    def free_shares(self, token_id: str) -> float:
        reserved = sum(o.remaining for o in self.orders.values()
                       if o.status == "LIVE" and o.side == "SELL" and o.token_id == token_id)
        return self.positions.get(token_id, 0.0) - reserved

    def place(self, token_id: str, side: str, price: float, size: float, tick_size: float, order_type: str,
              now_ms: int) -> tuple[PaperOrder, list[PaperFill]]:
        self._seq += 1
        oid = f"paper-{self._seq}"
        if not _on_grid(price, tick_size) or not (tick_size - EPS <= price <= 1 - tick_size + EPS):
            raise PaperReject(f"order {oid} is invalid. Price ({price:g}) breaks minimum tick size rule: {tick_size:g}")
        if size <= 0:
            raise PaperReject(f"order {oid} is invalid. Size ({size:g}) lower than the minimum: 0.01")
        if side == "BUY" and price * size > self.free_cash() + EPS:
            raise PaperReject(NO_BALANCE)
        if side == "SELL" and size > self.free_shares(token_id) + EPS:
            raise PaperReject(NO_BALANCE)
        fill_price, avail = self._available(token_id, side, price)
        take = min(size, avail) if fill_price is not None else 0.0
        if order_type == "FOK" and take < size - EPS:
            raise PaperReject(NOT_FULL)
        if order_type == "FAK" and take <= EPS:
            raise PaperReject(NO_MATCH)
        order = PaperOrder(oid, token_id, side, price, size, order_type, now_ms)
        self.orders[oid] = order
        fills = self._fill(order, fill_price or price, take, now_ms) if take > EPS else []
        if order.status == "LIVE" and order_type not in RESTING:
            order.status = "MATCHED" if order.filled > 0 else "CANCELED"
        return order, fills

    def _fill(self, order: PaperOrder, price: float, size: float, now_ms: int) -> list[PaperFill]:
        size = round(size, 6)
        if size <= EPS:
            return []
        fill = PaperFill(order.id, order.token_id, order.side, price, size, now_ms)
        order.fills.append(fill)
        order.filled = round(order.filled + size, 6)
        self.fills.append(fill)
        book_side = self.taken.setdefault(order.token_id, {"BUY": 0.0, "SELL": 0.0})
        book_side[order.side] += size
        held = self.positions.get(order.token_id, 0.0)
        sign = 1 if order.side == "BUY" else -1
        self.positions[order.token_id] = round(held + sign * size, 6)
        if self.cash is not None:
            self.cash = round(self.cash - sign * price * size, 6)
        if order.remaining <= EPS:
            order.status = "MATCHED"
        return [fill]

    def cancel_token(self, token_id: str) -> list[str]:
        gone = [o for o in self.orders.values() if o.status == "LIVE" and o.token_id == token_id]
        for o in gone:
            o.status = "CANCELED"
        return [o.id for o in gone]


class PaperExecutor:
    """The paper venue behind the executor interface; ``book`` gives the latest tick of a token."""

    venue_is_truth = False  # a restarted worker has a fresh paper account: trust the session snapshot

    def __init__(self, venue: PaperVenue, book: Callable[[str], Tick | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.venue, self.book, self.clock = venue, book, clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def describe(self, token_id: str, facts: MarketFacts) -> None:
        """Paper fills against the top of book; the market's system and minimum change nothing."""

    def fees_of(self, token_id: str) -> FeeSchedule:
        """Paper names no venue trades, so no fill is booked as a taker's: no fee."""
        return FeeSchedule()

    def _refresh(self, token_id: str) -> None:
        tick = self.book(token_id)
        if tick is not None:
            self.venue.observe(tick, self._now_ms())

    async def place(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                    order_type: str = "FAK", may_send: SendGate | None = None) -> OrderResult:
        if may_send is not None and not may_send():  # the same gate as the live venue's
            return OrderResult(False, status="rejected", error=NOT_SENT)
        self._refresh(token_id)
        try:
            order, fills = self.venue.place(token_id, side, price, size, tick_size, str(order_type), self._now_ms())
        except PaperReject as exc:
            return OrderResult(False, status="rejected", error=str(exc))
        shares = sum(f.size for f in fills)
        avg = sum(f.size * f.price for f in fills) / shares if shares > 0 else 0.0
        return OrderResult(True, order_id=order.id, status="matched" if fills else "live",
                           filled_size=shares, avg_price=avg)

    async def prepare(self, token_id: str, tick_size: float | None = None) -> None:
        """Nothing to fetch: the paper venue takes the tick size with each order."""

    async def order_status(self, order_id: str) -> OrderStatus | None:
        order = self.venue.orders.get(order_id)
        if order is None:
            return None
        self._refresh(order.token_id)
        return OrderStatus(order.id, order.status, order.filled, order.price)

    async def trades(self, trade_ids: Iterable[str], strict: bool = False) -> dict[str, TradeView | None]:
        """Paper fills name no venue trade (they settle at once): nothing to read."""
        return dict.fromkeys(trade_ids)

    async def cancel_order(self, order_id: str) -> None:
        order = self.venue.orders.get(order_id)
        if order is not None and order.status == "LIVE":
            order.status = "CANCELED"

    async def cash(self) -> float:
        return self.venue.free_cash()

    async def open_orders(self, token_id: str) -> list[dict[str, Any]]:
        self._refresh(token_id)
        return [{"id": o.id, "asset_id": o.token_id, "side": o.side, "price": str(o.price),
                 "original_size": str(o.size), "size_matched": str(o.filled), "status": o.status}
                for o in self.venue.orders.values() if o.status == "LIVE" and o.token_id == token_id]

    async def cancel_token_orders(self, token_id: str) -> None:
        self.venue.cancel_token(token_id)

    async def position(self, token_id: str) -> float:
        self._refresh(token_id)
        return self.venue.positions.get(token_id, 0.0)

    async def adopt_position(self, token_id: str, size: float) -> None:
        """A resumed session brings the position its snapshot recorded into this paper account."""
        self.venue.positions[token_id] = round(size, 6)
