"""One token's order desk: works the strategy's intents at the venue (D6, D8; docs/strategy.md section 14).

The session (:mod:`services.maker_worker.session`) owns the token's lifecycle and hands the desk one
:class:`OrderIntent` at a time; the desk turns it into placements (the decisions are
:class:`OrderWork`'s), sends them through the send gate, and tells the strategy how the intent ended.
Around it, each with one job:

* :mod:`order_watch`: what became of an order once sent (a resting order's fills, a ``delayed``
  order's outcome, a send whose answer was lost);
* :mod:`fills`: the one place a fill is booked, one per venue trade;
* :mod:`trades`: the session's trades followed until they settle (a FAILED one voided);
* :mod:`venue_reads`: reads that ride out throttling and the venue's trading windows, and the
  position as held once the pending trades settle (or as sellable now).

:meth:`OrderDesk.send` is the one place an order leaves for the venue: its size and price are
final there (recorded as an intent in ``pf:session:{id}`` before the POST).

What the desk needs of its session (the strategy, the latest tick, the ownership check, the
snapshot write) comes through :class:`DeskHost`; it does not reach into the session otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.execution import DEFAULT_MIN_SIZE, Bounds, OrderWork, Placement, is_balance_error
from services.maker_worker.executor import NOT_SENT, Executor, OrderResult
from services.maker_worker.fills import FillBook
from services.maker_worker.lease import LeaseClock
from services.maker_worker.order_watch import Matched, OrderWatch
from services.maker_worker.strategy import OrderIntent
from services.maker_worker.trades import TradeFollower
from services.maker_worker.venue_reads import VenueReads, VenueWindow
from services.maker_worker.volatility import VolatilityStrategy
from shared.clock import now_ms
from shared.config import ExecutionSection, MakerStrategySection
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Fill, OrderEvent, TradeStatus, stable_id
from shared.redisio import add_message
from shared.ticks import Tick


class DeskHost(Protocol):
    """What the desk asks of the session it works for."""

    @property
    def strategy(self) -> VolatilityStrategy: ...  # replaced at resume: always read through the host

    def latest_tick(self) -> Tick | None:
        """The newest tick from the source the session trades on (ticks or REST books)."""

    async def check_owner(self) -> str:
        """Fencing: raise unless the session still owns the token; returns the kill switch."""

    async def snapshot(self, *messages: Fill | TradeStatus) -> None:
        """Persist the strategy's state (and ``messages`` on ``pf:fills`` with it, atomically)."""


@dataclass(frozen=True)
class Placed:
    """How one placement ended: shares filled (matched), their average price, the venue's refusal
    ("" when none) and the trading window it named (``restarting``, ``post_only``)."""

    filled: float
    avg: float
    error: str = ""
    restriction: str = ""
    retry_after: float | None = None


class OrderDesk:
    def __init__(self, r: aioredis.Redis, keys: Keys, executor: Executor, host: DeskHost, worker_id: str,
                 token_id: str, epoch: int, params: MakerStrategySection, execution: ExecutionSection,
                 stop_requested: asyncio.Event, exit_requested: asyncio.Event,
                 lease: LeaseClock | None = None, min_size: float = DEFAULT_MIN_SIZE) -> None:
        self.r, self.keys, self.ex, self.host = r, keys, executor, host
        self.worker_id, self.token_id, self.epoch = worker_id, token_id, epoch
        self.params, self.execution = params, execution
        self.stop_requested, self.exit_requested = stop_requested, exit_requested
        # The worker's lease as its clock knows it: no order is posted unless the lease held without
        # a break since the ownership check (None: no worker lease, a bare session in a test or tool).
        self.lease = lease
        self.min_size = min_size  # the market's own resting minimum (START params), for every order
        self.intent_seq = 0
        self.trades = TradeFollower(executor, lambda: host.strategy, host.snapshot, token_id, epoch, worker_id)
        self.reads = VenueReads(executor, token_id, self.trades, stop_requested, execution.venue_window_max_sec)
        self.fills = FillBook(host, executor, self.trades, token_id, epoch, worker_id, self.reads.pause,
                              self.reads.read)
        self.watch = OrderWatch(executor, self.reads, self.fills, host, execution, token_id, stop_requested,
                                self._emit_order)
        self.pause = self.reads.pause
        self.venue_position = self.reads.position
        self.cancel_orders = self.watch.cancel_token  # resume, STOP: every order on the token
        self.cancel_resting = self.watch.cancel_resting  # fenced: our own resting order only

    @property
    def strategy(self) -> VolatilityStrategy:
        return self.host.strategy

    @property
    def resting_order(self) -> str:
        return self.watch.resting_order

    # --- an intent (the decisions are execution.OrderWork's) --------------------------------

    async def execute(self, intent: OrderIntent) -> None:
        """Work the strategy's order at the venue, then tell the strategy how it ended: its fills
        (already booked one by one) or a reject. A BUY under the kill switch is not sent."""
        if intent.side == "BUY":
            halt = await self.host.check_owner()
            if halt:
                self.strategy.on_reject("BUY", f"kill switch {halt}: no new BUY", now_ms())
                await self.host.snapshot()
                return
        work = OrderWork(intent, self.execution, self._bounds(intent), now_ms(), self.strategy.exit_attempts,
                         min_size=self.min_size)
        try:
            await self._work(work)
        except BaseException:
            if work.filled > 0:
                self.strategy.on_fill(intent.side, 0, 0, now_ms(), final=True)
            else:
                self.strategy.on_reject(intent.side, "not sent", now_ms())
            raise
        if work.filled > 0:
            self.strategy.on_fill(intent.side, 0, 0, now_ms(), final=True)
            logger.info("{}: {} done: {:.2f} @ {:.4f}{}", self.token_id, intent.side, work.filled, work.avg_price,
                        f" ({work.gave_up})" if work.gave_up else "")
        else:
            self.strategy.on_reject(intent.side, work.gave_up or work.last_error or "not filled", now_ms())
            logger.info("{}: {} not filled: {}", self.token_id, intent.side, work.gave_up or work.last_error)
        await self.host.snapshot()

    def _bounds(self, intent: OrderIntent) -> Bounds:
        """The BUY cap is the strategy's own price guard; a profit SELL never goes below the profit
        target (conservative) or the entry (aggressive); a liquidation's floor is exit_floor_price."""
        if intent.side == "BUY":
            return Bounds(cap=min(self.params.max_price, self.params.buy_price_threshold))
        if intent.exit:
            return Bounds(floor=self.execution.exit_floor_price)
        entry = self.strategy.avg_cost
        floor = entry if self.execution.sell_mode == "aggressive" else entry * (1 + self.params.profit_pct)
        return Bounds(floor=min(floor, intent.price))

    def top(self) -> tuple[float, float | None, float | None]:
        """(tick size, best bid, best ask) now, from the session's chosen source."""
        tick = self.host.latest_tick()
        if tick is None:
            return self.strategy.tick_size, None, None
        return tick.tick_size or self.strategy.tick_size, tick.bid, tick.ask

    async def settle_buys(self) -> None:
        """Before a SELL: shares bought moments ago are in the wallet only once their trades settle
        (docs/venue.md T2), so wait for the pending BUYs (at most ``settle_wait_sec``). A BUY
        whose trade FAILED is voided meanwhile: what never came is not sold."""
        x = self.execution
        if self.trades.pending.buys():
            await self.trades.wait(True, x.settle_wait_sec, x.settle_poll_sec, self.pause,
                                   self.stop_requested.is_set)

    async def _work(self, work: OrderWork) -> None:
        first = True
        window = VenueWindow(self.execution.venue_window_max_sec, self.pause)
        while not work.done:
            if self.stop_requested.is_set():
                work.gave_up = "stopped"
                return
            if work.side == "BUY" and self.exit_requested.is_set():
                work.gave_up = "exit requested"
                return
            if not first:
                await self.pause(self.execution.order_interval_sec)
            first = False
            tick_size, bid, ask = self.top()
            held = None
            if work.side == "SELL":
                await self.settle_buys()
                held = await self.reads.sellable()
            placement = work.next(now_ms(), tick_size, bid, ask, held)
            if placement is None:
                return
            placed = await self.place(placement, tick_size, work.intent.reason)
            if placed.error == NOT_SENT:  # nothing reached the venue: no attempt spent, no price step conceded
                await self.await_lease()
                continue
            if placed.restriction:  # the venue restarting, or post-only after it: the same order once it is over
                if await window.wait(placed.restriction, placed.retry_after, f"{placement.side} order"):
                    first = True  # the window's pause was the interval
                    continue
                work.gave_up = f"venue {placed.restriction} for over {self.execution.venue_window_max_sec:g}s"
                return
            window.over()
            affordable = None
            if placed.error and is_balance_error(placed.error):
                affordable = (await self.ex.cash()) / placement.price if work.side == "BUY" else \
                    await self.reads.sellable()
                logger.warning("{}: {} {:.2f} @ {:.4f} refused ({}); affordable {:.2f}: shrinking", self.token_id,
                               work.side, placement.size, placement.price, placed.error, affordable)
            work.on_outcome(placement, placed.filled, placed.avg, placed.error, affordable)

    # --- one placement ----------------------------------------------------------------------

    async def place(self, p: Placement, tick_size: float, reason: str) -> Placed:
        """One placement: send (fenced, intent first), wait for a delayed order's outcome and a
        resting order's fills, cancel the rest, book each trade, and reconcile with the venue's
        position when nothing filled."""
        before = self.strategy.position
        result, intent_id = await self.send(p, tick_size, reason)
        if result.restriction:
            return Placed(0.0, 0.0, result.error, result.restriction, result.retry_after)
        got, rests = Matched(result.filled_size, result.avg_price or p.price, result.trade_ids), True
        if result.ok and result.order_id and result.status.lower() == "delayed":
            got = await self.watch.await_delayed(p, result.order_id, got)  # never sent twice (P6)
            rests = got.live
        if result.ok and result.order_id and p.order_type == "GTC" and got.size < p.size - 1e-9 and rests:
            got = await self.watch.await_fills(p, result.order_id, intent_id, got)
        if result.order_id and got.size > 0:
            await self.fills.finish(p.side, result.order_id, intent_id, got.trade_ids, got.size, got.price)
        filled = got.size
        if filled <= 0 and (result.ok or result.ambiguous):
            filled = await self.watch.reconcile_fill(p, before, intent_id, result.order_id)
        error = "" if result.ok else (result.error or result.status)
        return Placed(filled, got.price if filled > 0 else 0.0, error)

    def _send_gate(self, checked_at: float) -> Callable[[], bool]:
        """Asked just before the POST (after the market info and the signature): still ours for sure? A STOP (hand-back, halt, a newer epoch here)
        sends nothing more; a lease that lapsed or broke since ``checked_at`` means the token may
        have moved (soak finding: orders reached the venue up to 2.8 s after a supersede)."""
        lease, stop = self.lease, self.stop_requested

        def may_send() -> bool:
            return not stop.is_set() and (lease is None or lease.may_send(checked_at))
        return may_send

    async def send(self, p: Placement, tick_size: float, reason: str) -> tuple[OrderResult, str]:
        """Send one placement, fenced, its intent recorded first; book what filled at once.
        -> (the venue's answer, resolved if it was ambiguous; the intent id)."""
        checked_at = time.monotonic()  # before the read: the check proves ownership from here on
        halt = await self.host.check_owner()
        if halt == "halt" or (halt and p.side == "BUY"):
            return OrderResult(False, status="rejected", error=f"kill switch {halt}"), ""
        self.intent_seq += 1
        intent_id = stable_id(self.token_id, self.epoch, self.intent_seq, p.side)
        record = {"side": p.side, "price": p.price, "size": p.size, "type": p.order_type, "status": "sending",
                  "ts": now_ms()}
        await self.r.hset(self.keys.session(self.token_id),
                          mapping={f"intent:{intent_id}": json.dumps(record), "intent_seq": self.intent_seq})
        before = self.strategy.position
        result = await self.ex.place(self.token_id, p.side, p.price, p.size,  # type: ignore[arg-type]
                                     tick_size, p.order_type, self._send_gate(checked_at))
        if result.error == NOT_SENT:
            metrics.NOT_SENT.labels(p.side).inc()
            logger.warning("{} epoch {}: {} {:.2f} @ {:.4f} not sent: lease {:.2f}s left, stop {}", self.token_id,
                           self.epoch, p.side, p.size, p.price, self.lease.remaining() if self.lease else 0.0,
                           self.stop_requested.is_set())
        if result.ambiguous:
            # We do not know whether it reached the venue: ask it, never send again blindly.
            result = await self.watch.resolve_ambiguous(p, result, before)
        if result.restriction:  # a trading window: nothing happened, not a refusal (the desk waits it out)
            record.update(status=f"paused: {result.restriction}", error=result.error)
            await self.r.hset(self.keys.session(self.token_id), f"intent:{intent_id}", json.dumps(record))
            return result, intent_id
        status = "matched" if result.filled_size > 0 else ("placed" if result.ok else "rejected")
        record.update(status=status, order_id=result.order_id, error=result.error)
        await self.r.hset(self.keys.session(self.token_id), f"intent:{intent_id}", json.dumps(record))
        await self._emit_order(intent_id, result.order_id, p, status, result.error or reason)
        if result.filled_size > 0:
            await self.fills.book(p.side, result.order_id, intent_id, result.trade_ids, result.filled_size,
                                  result.avg_price or p.price)
        return result, intent_id

    async def await_lease(self) -> None:
        """After the lease gate refused a send: wait (at most a lease period) until the gate would
        pass a fresh check. The next send checks ownership afresh, so a token that moved meanwhile
        fences us there."""
        if self.lease is None:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + self.lease.lease_s
        while not self.lease.sendable() and loop.time() < until and not self.stop_requested.is_set():
            await self.pause(0.05)

    async def _emit_order(self, intent_id: str, order_id: str, p: Placement, status: str, reason: str) -> None:
        metrics.ORDERS.labels(p.side, status).inc()
        await add_message(self.r, self.keys.orders(), OrderEvent(
            id=stable_id(intent_id, status), ts_event=now_ms(), ts_init=now_ms(), producer=self.worker_id,
            token_id=self.token_id, epoch=self.epoch, worker=self.worker_id, intent_id=intent_id, order_id=order_id,
            side=p.side, price=p.price, size=p.size, status=status, reason=reason,  # type: ignore[arg-type]
        ), STREAM_MAXLEN["orders"])
