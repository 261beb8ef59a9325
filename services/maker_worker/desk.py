"""One token's order desk: works the strategy's intents at the venue (D6, D8; docs/strategy.md section 14).

The session (:mod:`services.maker_worker.session`) owns the token's lifecycle and hands the desk one
:class:`OrderIntent` at a time; the desk turns it into placements (the decisions are
:class:`OrderWork`'s), sends them through the send gate, waits for fills, resolves ambiguous sends
by asking the venue, and tells the strategy how the intent ended.

Two seams carry everything a venue change touches:
* :meth:`OrderDesk.send` is the one place an order leaves for the venue: its size and price are
  final there (recorded as an intent in ``pf:session:{id}`` before the POST);
* :meth:`OrderDesk.record_fill` is the one place a fill is booked (the strategy, ``pf:fills`` with
  the snapshot that counts it, the metrics).

What the desk needs of its session (the strategy, the latest tick, the ownership check, the
snapshot write) comes through :class:`DeskHost`; it does not reach into the session otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.execution import DEFAULT_MIN_SIZE, Bounds, OrderWork, Placement, is_balance_error
from services.maker_worker.executor import NOT_SENT, Executor, OrderResult, OrderStatus, is_transient
from services.maker_worker.lease import LeaseClock
from services.maker_worker.strategy import OrderIntent
from services.maker_worker.volatility import VolatilityStrategy
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import ExecutionSection, MakerStrategySection
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Fill, OrderEvent, stable_id
from shared.redisio import add_message
from shared.ticks import Tick

VENUE_READ_ATTEMPTS = 6  # position reads: about 20 s of retries before a session gives up
VENUE_READ_BACKOFF = Backoff(max_attempts=VENUE_READ_ATTEMPTS, initial_backoff_sec=0.5, backoff_multiplier=2.0,
                             max_backoff_sec=8.0, jitter_fraction=0.2)

T = TypeVar("T")


class DeskHost(Protocol):
    """What the desk asks of the session it works for."""

    @property
    def strategy(self) -> VolatilityStrategy: ...  # replaced at resume: always read through the host

    def latest_tick(self) -> Tick | None:
        """The newest tick from the source the session trades on (ticks or REST books)."""

    async def check_owner(self) -> str:
        """Fencing: raise unless the session still owns the token; returns the kill switch."""

    async def snapshot(self, fill: Fill | None = None) -> None:
        """Persist the strategy's state (and ``fill`` with it, atomically)."""


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
        self.resting_order = ""  # id of this session's GTC while it rests (a fenced session cancels only it)

    @property
    def strategy(self) -> VolatilityStrategy:
        return self.host.strategy

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

    async def _work(self, work: OrderWork) -> None:
        first = True
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
            held = await self.venue_position() if work.side == "SELL" else None
            placement = work.next(now_ms(), tick_size, bid, ask, held)
            if placement is None:
                return
            filled, avg, error = await self.place(placement, tick_size, work.intent.reason)
            if error == NOT_SENT:  # nothing reached the venue: no attempt spent, no price step conceded
                await self.await_lease()
                continue
            affordable = None
            if error and is_balance_error(error):
                affordable = (await self.ex.cash()) / placement.price if work.side == "BUY" else \
                    await self.venue_position()
                logger.warning("{}: {} {:.2f} @ {:.4f} refused ({}); affordable {:.2f}: shrinking", self.token_id,
                               work.side, placement.size, placement.price, error, affordable)
            work.on_outcome(placement, filled, avg, error, affordable)

    # --- one placement ----------------------------------------------------------------------

    async def place(self, p: Placement, tick_size: float, reason: str) -> tuple[float, float, str]:
        """One placement: send (fenced, intent first), wait for a resting order's fills, cancel the
        rest, and reconcile with the venue's position when nothing filled. -> (filled, avg, error)."""
        before = self.strategy.position
        result, intent_id = await self.send(p, tick_size, reason)
        filled, cost = result.filled_size, result.filled_size * (result.avg_price or p.price)
        if result.ok and result.order_id and p.order_type == "GTC" and filled < p.size - 1e-9:
            filled, cost = await self.await_fills(p, result.order_id, intent_id, filled, cost)
        if filled <= 0 and (result.ok or result.ambiguous):
            # Accepted yet no fill we know of ("Duplicated", killed, cancelled empty): the venue's
            # position says whether something traded after all (D6: reconcile on no fill).
            filled = await self._reconcile_fill(p, before, intent_id, result.order_id)
            cost = filled * p.price
        error = "" if result.ok else (result.error or result.status)
        return filled, (cost / filled if filled > 0 else 0.0), error

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
            result = await self.resolve_ambiguous(p, result, before)
        status = "matched" if result.filled_size > 0 else ("placed" if result.ok else "rejected")
        record.update(status=status, order_id=result.order_id, error=result.error)
        await self.r.hset(self.keys.session(self.token_id), f"intent:{intent_id}", json.dumps(record))
        await self._emit_order(intent_id, result.order_id, p, status, result.error or reason)
        if result.filled_size > 0:
            await self.record_fill(p.side, result.filled_size, result.avg_price or p.price, intent_id,
                                   result.order_id, result.filled_size)
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

    async def resolve_ambiguous(self, p: Placement, result: OrderResult, before: float) -> OrderResult:
        """What became of a placement whose answer was lost. The order id is known before the answer
        (the order's hash), so the venue is asked about this very order first: found means it
        arrived, with what matched. Not found (or the lookup failed) falls back to the open orders
        and the position change, which cannot name a filled order's id."""
        if result.order_id:
            try:
                found = await self.ex.order_status(result.order_id)
            except Exception as exc:  # the fallback below still tells placed from not placed
                logger.warning("{}: lookup of ambiguous order {} failed: {}", self.token_id, result.order_id[:12], exc)
                found = None
            if found is not None:
                logger.warning("{}: ambiguous {} ({}); the venue has it: {} matched {:.2f}", self.token_id, p.side,
                               result.error, found.status, found.size_matched)
                return OrderResult(True, order_id=result.order_id, status="reconciled",
                                   filled_size=min(found.size_matched, p.size), avg_price=found.price or p.price,
                                   error=result.error, ambiguous=True)
        rows = await self.venue_read("open orders read", lambda: self.ex.open_orders(self.token_id))
        opened = [o for o in rows if str(o.get("side", "")).upper() == p.side]
        held = await self.venue_position()
        filled = round(max(0.0, held - before if p.side == "BUY" else before - held), 6)
        logger.warning("{}: ambiguous {} ({}); venue shows {} open, position {:.2f}",
                       self.token_id, p.side, result.error, len(opened), held)
        return OrderResult(bool(opened) or filled > 0, order_id=str(opened[0].get("id", "")) if opened else "",
                           status="reconciled", filled_size=min(filled, p.size), avg_price=p.price,
                           error=result.error, ambiguous=True)

    # --- fills --------------------------------------------------------------------------------

    async def await_fills(self, p: Placement, order_id: str, intent_id: str, known: float,
                          cost: float) -> tuple[float, float]:
        """Poll a resting order every ``poll_interval_sec`` for ``wait_sec``; book each new
        fill; then cancel what is left and book what filled before the cancel landed."""
        self.resting_order = order_id  # left set if this raises (Fenced): the session cancels it then
        known, cost = await self._watch_resting(p, order_id, intent_id, known, cost)
        self.resting_order = ""
        return known, cost

    async def _watch_resting(self, p: Placement, order_id: str, intent_id: str, known: float,
                             cost: float) -> tuple[float, float]:
        x = self.execution
        loop = asyncio.get_running_loop()
        deadline = loop.time() + x.wait_sec
        status = None
        while loop.time() < deadline and not self.stop_requested.is_set():
            await self.pause(min(x.poll_interval_sec, max(0.0, deadline - loop.time())))
            await self.host.check_owner()  # superseded while resting (e.g. our lease lapsed): stop now
            status = await self.venue_read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known, cost = await self._book_new_fills(p, status, intent_id, known, cost)
            if status is None or not status.live:
                break
        if status is None or status.live:
            try:
                await self.ex.cancel_order(order_id)
            except Exception as exc:  # the next status read says what happened
                logger.warning("{}: cancel of {} failed: {}", self.token_id, order_id[:12], exc)
            status = await self.venue_read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known, cost = await self._book_new_fills(p, status, intent_id, known, cost)
            await self._emit_order(intent_id, order_id, p, "cancelled", "rest cancelled after wait_sec")
        return known, cost

    async def _book_new_fills(self, p: Placement, status: OrderStatus, intent_id: str, known: float,
                              cost: float) -> tuple[float, float]:
        new = round(status.size_matched - known, 6)
        if new <= 1e-9:
            return known, cost
        await self.record_fill(p.side, new, status.price or p.price, intent_id, status.order_id,
                               round(status.size_matched, 6))
        return known + new, cost + new * (status.price or p.price)

    async def _reconcile_fill(self, p: Placement, before: float, intent_id: str, order_id: str) -> float:
        held = await self.venue_position()
        delta = round(held - before if p.side == "BUY" else before - held, 6)
        if delta < 0.01:
            return 0.0
        size = min(delta, p.size)
        logger.warning("{}: venue shows {:.2f} held, expected {:.2f}: booking {:.2f} as filled by {}",
                       self.token_id, held, before, size, intent_id)
        await self.record_fill(p.side, size, p.price, intent_id, order_id or intent_id, size)
        return size

    async def record_fill(self, side: str, size: float, price: float, intent_id: str, order_id: str,
                          cumulative: float) -> None:
        """Book one fill (the strategy's position and PnL, the snapshot, ``pf:fills``). The id comes
        from the order and its cumulative matched size, so a re-read never books a fill twice."""
        self.strategy.on_fill(side, size, price, now_ms(), final=False)
        metrics.FILLS.labels(side).inc()
        metrics.FILLED_SHARES.labels(side).inc(size)
        await self.host.snapshot(Fill(
            id=stable_id("fill", intent_id, order_id, f"{cumulative:.6f}"), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            order_id=order_id, side=side, price=price, size=size,  # type: ignore[arg-type]
        ))
        logger.info("{}: {} {:.2f} @ {:.4f} filled; position {:.2f}", self.token_id, side, size, price,
                    self.strategy.position)

    async def _emit_order(self, intent_id: str, order_id: str, p: Placement, status: str, reason: str) -> None:
        metrics.ORDERS.labels(p.side, status).inc()
        await add_message(self.r, self.keys.orders(), OrderEvent(
            id=stable_id(intent_id, status), ts_event=now_ms(), ts_init=now_ms(), producer=self.worker_id,
            token_id=self.token_id, epoch=self.epoch, worker=self.worker_id, intent_id=intent_id, order_id=order_id,
            side=p.side, price=p.price, size=p.size, status=status, reason=reason,  # type: ignore[arg-type]
        ), STREAM_MAXLEN["orders"])

    # --- cancels and venue reads ------------------------------------------------------------

    async def cancel_orders(self) -> None:
        """Cancel every order on the token (resume, STOP: the token is surely ours)."""
        try:
            await self.ex.cancel_token_orders(self.token_id)
        except Exception as exc:  # best effort; the next owner reconciles again
            logger.warning("{}: cancel failed: {}", self.token_id, exc)

    async def cancel_resting(self) -> None:
        """Fenced: cancel our own resting order only. The account is shared, so cancelling the
        token's orders would also cancel the new owner's. (A session fenced before it started has none.)"""
        if not self.resting_order:
            return
        try:
            await self.ex.cancel_order(self.resting_order)
        except Exception as exc:  # the new owner's resume cancels what is left on the token
            logger.warning("{}: cancel of {} failed: {}", self.token_id, self.resting_order[:12], exc)
        self.resting_order = ""

    async def venue_position(self) -> float:
        """The position the venue holds (asked again while the venue is throttled or failing)."""
        return await self.venue_read("position read", lambda: self.ex.position(self.token_id))

    async def venue_read(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
        """A read from the venue. A throttled or failing venue (429, 5xx, no answer) is asked again
        after a growing pause, so neither a liquidation nor a resting order's watch is abandoned
        over one 429 or a 503 storm (the session would fail and its token be ignored)."""
        for attempt in range(1, VENUE_READ_ATTEMPTS + 1):
            try:
                return await read()
            except Exception as exc:
                if not is_transient(exc) or attempt == VENUE_READ_ATTEMPTS or self.stop_requested.is_set():
                    raise
                delay = VENUE_READ_BACKOFF.delay(attempt)
                logger.warning("{}: {} failed ({}); retry {} in {:.1f}s", self.token_id, what, exc, attempt, delay)
                await self.pause(delay)
        raise AssertionError("unreachable")

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once on STOP (a drain must not wait out an order cycle)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)
