"""What became of an order once it was sent (docs/strategy.md section 14): the fills of a resting
order, the outcome of a ``delayed`` one, the fate of one whose answer was lost. Each is learned by
asking the venue about that very order; nothing here sends an order. Fills go to the session's
:class:`~services.maker_worker.fills.FillBook`, one per venue trade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from services.maker_worker.execution import Placement
from services.maker_worker.executor import Executor, OrderResult, OrderStatus
from services.maker_worker.fills import FillBook
from services.maker_worker.venue_reads import VenueReads
from shared.config import ExecutionSection

DELAYED = "DELAYED"
DELAYED_WAIT_S = 30.0  # a delayed order (sports markets: seconds) is awaited this long before it is cancelled
EmitOrder = Callable[[str, str, Placement, str, str], Awaitable[None]]  # intent, order, placement, status, reason


class Owner(Protocol):
    async def check_owner(self) -> str:
        """Fencing: raise unless the session still owns the token."""


@dataclass
class Matched:
    """What an order has matched so far, as the venue last said."""

    size: float
    price: float
    trade_ids: tuple[str, ...] = ()
    live: bool = False  # still resting on the book


class OrderWatch:
    def __init__(self, executor: Executor, reads: VenueReads, fills: FillBook, owner: Owner, execution: ExecutionSection,
                 token_id: str, stop_requested: asyncio.Event, emit: EmitOrder) -> None:
        self.ex, self.reads, self.fills, self.owner = executor, reads, fills, owner
        self.execution, self.token_id, self.stop_requested, self.emit = execution, token_id, stop_requested, emit
        self.resting_order = ""  # id of this session's GTC while it rests (a fenced session cancels only it)

    # --- a delayed order (docs/venue.md P6) ------------------------------------------------------

    async def await_delayed(self, p: Placement, order_id: str, answer: Matched) -> Matched:
        """The venue took the order and will match it after its delay: wait for that, never send it
        again. Still delayed after ``DELAYED_WAIT_S``: cancel it and take what it matched."""
        loop = asyncio.get_running_loop()
        until = loop.time() + DELAYED_WAIT_S
        status: OrderStatus | None = None
        while loop.time() < until and not self.stop_requested.is_set():
            await self.reads.pause(self.execution.poll_interval_sec)
            status = await self.reads.read("order status", lambda: self.ex.order_status(order_id))
            if status is not None and status.status.upper() != DELAYED:
                break
        if status is None or status.status.upper() == DELAYED:
            await self._cancel(order_id)
            status = await self.reads.read("order status", lambda: self.ex.order_status(order_id)) or status
        if status is None:
            return answer
        logger.info("{}: delayed {} {:.2f} @ {:.4f} came out {}: {:.2f} matched", self.token_id, p.side, p.size,
                    p.price, status.status, status.size_matched)
        return Matched(status.size_matched, status.price or p.price, status.trade_ids, status.live)

    # --- a resting order --------------------------------------------------------------------------

    async def await_fills(self, p: Placement, order_id: str, intent_id: str, known: Matched) -> Matched:
        """Poll a resting order every ``poll_interval_sec`` for ``wait_sec``; book each new
        fill; then cancel what is left and book what filled before the cancel landed."""
        self.resting_order = order_id  # left set if this raises (Fenced): the session cancels it then
        known = await self._watch_resting(p, order_id, intent_id, known)
        self.resting_order = ""
        return known

    async def _watch_resting(self, p: Placement, order_id: str, intent_id: str, known: Matched) -> Matched:
        x = self.execution
        loop = asyncio.get_running_loop()
        deadline = loop.time() + x.wait_sec
        status = None
        while loop.time() < deadline and not self.stop_requested.is_set():
            await self.reads.pause(min(x.poll_interval_sec, max(0.0, deadline - loop.time())))
            await self.owner.check_owner()  # superseded while resting (e.g. our lease lapsed): stop now
            status = await self.reads.read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known = await self._book(p, status, intent_id, known)
            if status is None or not status.live:
                break
        if status is None or status.live:
            await self._cancel(order_id)
            status = await self.reads.read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known = await self._book(p, status, intent_id, known)
            await self.emit(intent_id, order_id, p, "cancelled", "rest cancelled after wait_sec")
        return known

    async def _book(self, p: Placement, status: OrderStatus, intent_id: str, known: Matched) -> Matched:
        if status.size_matched <= known.size + 1e-9:
            return known
        price = status.price or p.price
        await self.fills.book(p.side, status.order_id, intent_id, status.trade_ids, status.size_matched, price)
        return Matched(status.size_matched, price, status.trade_ids or known.trade_ids, status.live)

    async def _cancel(self, order_id: str) -> None:
        try:
            await self.ex.cancel_order(order_id)
        except Exception as exc:  # the next status read says what happened
            logger.warning("{}: cancel of {} failed: {}", self.token_id, order_id[:12], exc)

    async def cancel_token(self) -> None:
        """Cancel every order on the token (resume, STOP: the token is surely ours)."""
        try:
            await self.ex.cancel_token_orders(self.token_id)
        except Exception as exc:  # best effort; the next owner reconciles again
            logger.warning("{}: cancel failed: {}", self.token_id, exc)

    async def cancel_resting(self) -> None:
        """Fenced: cancel our own resting order only. The account is shared, so cancelling the
        token's orders would also cancel the new owner's. (A session fenced before it started has none.)"""
        if self.resting_order:
            await self._cancel(self.resting_order)
            self.resting_order = ""

    # --- an answer lost ---------------------------------------------------------------------------

    async def resolve_ambiguous(self, p: Placement, result: OrderResult, before: float) -> OrderResult:
        """What became of a placement whose answer was lost. The order id is known before the answer
        (the order's hash), so the venue is asked about this very order first: found means it
        arrived, with what matched and in which trades. Not found (or the lookup failed) falls back
        to the open orders and the position change, which cannot name a filled order's id."""
        if result.order_id:
            try:
                found = await self.ex.order_status(result.order_id)
            except Exception as exc:  # the fallback below still tells placed from not placed
                logger.warning("{}: lookup of ambiguous order {} failed: {}", self.token_id, result.order_id[:12], exc)
                found = None
            if found is not None:
                logger.warning("{}: ambiguous {} ({}); the venue has it: {} matched {:.2f}", self.token_id, p.side,
                               result.error, found.status, found.size_matched)
                return OrderResult(True, order_id=result.order_id, status=found.status.lower(),
                                   filled_size=min(found.size_matched, p.size), avg_price=found.price or p.price,
                                   error=result.error, ambiguous=True, trade_ids=found.trade_ids)
        rows = await self.reads.read("open orders read", lambda: self.ex.open_orders(self.token_id))
        opened = [o for o in rows if str(o.get("side", "")).upper() == p.side]
        held = await self.reads.position()
        filled = round(max(0.0, held - before if p.side == "BUY" else before - held), 6)
        logger.warning("{}: ambiguous {} ({}); venue shows {} open, position {:.2f}",
                       self.token_id, p.side, result.error, len(opened), held)
        return OrderResult(bool(opened) or filled > 0, order_id=str(opened[0].get("id", "")) if opened else "",
                           status="reconciled", filled_size=min(filled, p.size), avg_price=p.price,
                           error=result.error, ambiguous=True)

    async def reconcile_fill(self, p: Placement, before: float, intent_id: str, order_id: str) -> float:
        """Accepted yet no fill we know of ("Duplicated", killed, cancelled empty): the venue's
        position says whether something traded after all (D6: reconcile on no fill)."""
        held = await self.reads.position()
        delta = round(held - before if p.side == "BUY" else before - held, 6)
        if delta < 0.01:
            return 0.0
        size = min(delta, p.size)
        logger.warning("{}: venue shows {:.2f} held, expected {:.2f}: booking {:.2f} as filled by {}",
                       self.token_id, held, before, size, intent_id)
        await self.fills.record(p.side, size, p.price, intent_id, order_id or intent_id, size)
        return size
