"""One token's session inside a worker: reconcile, wait for ticks, trade, liquidate on EXIT.

Safety rules kept here (ARCHITECTURE "Ownership and orders"):
* fencing: before every order the session checks ``pf:token:{id}`` still names this worker at
  this epoch; a stale owner stops, cancels its orders and sends nothing more;
* intents: every order has a deterministic intent id stored in ``pf:session:{id}`` before it is
  sent; after an ambiguous failure the session asks the venue (open orders, position) instead
  of sending again;
* resume: a new owner starts from the snapshot in ``pf:session:{id}`` (the strategy's whole state,
  docs/strategy.md section 10) and the venue's position, which wins over the snapshot.

The decisions are :class:`VolatilityStrategy`'s; this class only feeds it ticks, timers and order
outcomes, and executes what it asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.deadline import epoch_ms
from services.maker_worker.execution import Bounds, OrderWork, Placement, is_balance_error
from services.maker_worker.executor import NOT_SENT, Executor, OrderResult, OrderStatus, is_transient
from services.maker_worker.latency import LatencyHistogram
from services.maker_worker.lease import LeaseClock
from services.maker_worker.restbook import RestBooks
from services.maker_worker.strategy import OrderIntent
from services.maker_worker.volatility import VolatilityStrategy
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import ConfigError, ExecutionSection, MakerStrategySection, RunParamsSection
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Fill, Message, OrderEvent, SessionReport, stable_id
from shared.redisio import add_message
from shared.tickfeed import TickFeed
from shared.ticks import Tick

VENUE_READ_ATTEMPTS = 6  # position reads: about 20 s of retries before a session gives up
VENUE_READ_BACKOFF = Backoff(max_attempts=VENUE_READ_ATTEMPTS, initial_backoff_seconds=0.5, backoff_multiplier=2.0,
                             max_backoff_seconds=8.0, jitter_fraction=0.2)

DUST = 0.01  # shares below this cannot be sold (two-decimal sizes)
SNAPSHOT_EVERY_MS = 5_000  # the drop window changes on every tick; persist it at most this often


T = TypeVar("T")

class Fenced(Exception):
    """This worker no longer owns the token at this epoch."""


class TokenSession:
    def __init__(self, r: aioredis.Redis, keys: Keys, feed: TickFeed, executor: Executor, worker_id: str,
                 token_id: str, epoch: int, params: dict[str, Any], books: RestBooks | None = None,
                 decisions: LatencyHistogram | None = None, lease: LeaseClock | None = None) -> None:
        self.r, self.keys, self.feed, self.ex = r, keys, feed, executor
        # The worker's lease as its clock knows it: no order is posted unless the lease held without
        # a break since the ownership check (None: no worker lease, a bare session in a test or tool).
        self.lease = lease
        self.decisions = decisions  # the worker's tick-to-decision histogram (heartbeat); None: not measured
        self.books = books  # the worker's shared REST poller (B6); None: ticks only
        self.worker_id, self.token_id, self.epoch = worker_id, token_id, epoch
        self._owned = False  # True once the ownership check at start passed
        self.fills_written = 0  # fills of this epoch on pf:fills: the closed report says how many to wait for
        self.resting_order = ""  # id of this session's GTC while it rests (a fenced session cancels only it)
        self.setup_error = ""
        try:
            self.params = MakerStrategySection.model_validate(params.get("maker_strategy", {}))
            self.run_params = RunParamsSection.model_validate(params.get("run_params", {}))
            self.execution = ExecutionSection.model_validate(params.get("execution", {}))
            end = params.get("market_end_ts")
            self.market_end_ms = epoch_ms(end) if end else None
            self.strategy = self._new_strategy()
        except (ConfigError, ValueError) as exc:  # reported as "failed" by run(), naming the key
            self.setup_error = str(exc)
            self.params, self.run_params, self.execution = MakerStrategySection(), RunParamsSection(), ExecutionSection()
            self.market_end_ms = None
            self.strategy = self._new_strategy()
        self.intent_seq = 0
        self.exit_requested = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.hand_back = False
        self.last_tick: Tick | None = None  # the latest tick fed to the strategy, from either source
        self.last_feed_tick: Tick | None = None
        self.last_rest_tick: Tick | None = None
        self.source = "ticks"  # ticks | rest (B6)
        self.source_changes = 0
        self.snapshot_ms = 0

    def _new_strategy(self) -> VolatilityStrategy:
        return VolatilityStrategy(self.params, self.run_params, self.execution, now_ms(), self.market_end_ms)

    @property
    def position(self) -> float:
        return self.strategy.position

    @property
    def avg_cost(self) -> float:
        return self.strategy.avg_cost

    @property
    def realized(self) -> float:
        return self.strategy.realized_pnl

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if self.setup_error:
                await self._report("failed", reason=f"bad parameters: {self.setup_error}")
                return
            # A START read late (the orchestrator gave the token a newer epoch or another owner since,
            # e.g. a restarted worker reading its predecessor's unread commands) must run nothing:
            # no resume snapshot over the owner's, no cancel of the owner's orders (soak finding).
            await self._check_owner()
            self._owned = True
            await self._resume()
            await self._report("started")
            await self._trade_until_exit()
            if self.stop_requested.is_set():
                await self._cancel_orders()
                if self.hand_back:
                    await self._snapshot()  # the next owner resumes from exactly this
                    await self._report("handed_back", reason="worker stopping")
                return
            await self._liquidate()
            # The final reconcile with the venue may have moved the position without a fill of
            # ours: the snapshot must say what the report says, or a later resume starts wrong.
            await self._snapshot()
            reason = self.strategy.exit_reason or "exit"
            await self._report("closed", reason=f"{reason}: liquidated" if self.position < DUST else f"{reason}: exit incomplete")
        except Fenced:
            logger.warning("{} epoch {}: fenced (another owner now); stopping quietly", self.token_id, self.epoch)
            await self._on_fenced()
        except Exception as exc:
            logger.exception("session {} failed", self.token_id)
            await self._report("failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            if self.books is not None:
                self.books.unwant(self.token_id)
            await self.feed.remove(self.token_id)

    async def _book_unrecorded(self, missing: float) -> None:
        """The venue holds ``missing`` shares more (or fewer) than the recorded fills say: the last
        owner died between a fill at the venue and its record, or its resting order filled after it
        died. Book the difference as one fill (at the snapshot's cost basis, else the mid) so the
        orchestrator's position, risk and the next close agree with the venue (hour-soak finding:
        a SELL of what the venue held took pf:token short)."""
        _, bid, ask = self._top()
        price = self.avg_cost or ((bid + ask) / 2 if bid and ask else 0.5)
        side = "BUY" if missing > 0 else "SELL"
        logger.warning("{} epoch {}: the venue holds {:+.2f} shares the fills do not record; booked as a {} fill",
                       self.token_id, self.epoch, missing, side)
        await self._snapshot(Fill(
            id=stable_id("reconcile", self.token_id, self.epoch), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            order_id="", side=side, price=price, size=abs(missing),  # type: ignore[arg-type]
        ))

    async def _on_fenced(self) -> None:
        """Cancel our own resting order only: the account is shared, so cancelling the token's
        orders would also cancel the new owner's. (A session fenced before it started has none.)"""
        if not self.resting_order:
            return
        try:
            await self.ex.cancel_order(self.resting_order)
        except Exception as exc:  # the new owner's resume cancels what is left on the token
            logger.warning("{}: cancel of {} failed: {}", self.token_id, self.resting_order[:12], exc)
        self.resting_order = ""

    async def _resume(self) -> None:
        """Start from the last owner's snapshot, then trust the venue: cancel orphans, read the position."""
        snap: dict[str, str] = await self.r.hgetall(self.keys.session(self.token_id))
        if snap.get("strategy"):
            try:
                self.strategy = VolatilityStrategy.restore(json.loads(snap["strategy"]), self.params,
                                                           self.run_params, self.execution)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("{}: strategy snapshot unusable ({}); starting the strategy afresh", self.token_id, exc)
        elif snap.get("avg_cost"):  # a snapshot without strategy state: keep its cost basis and PnL
            self.strategy.avg_cost = float(snap.get("avg_cost", 0) or 0)
            self.strategy.realized_pnl = float(snap.get("realized_pnl", 0) or 0)
            self.strategy.position = float(snap.get("position", 0) or 0)
        await self.feed.add(self.token_id)
        await self._cancel_orders()
        recorded = self.strategy.position  # what the snapshot, and so the fills, account for
        if self.ex.venue_is_truth:
            held = await self._venue_position()
        else:  # a paper account does not survive the worker: the snapshot is the record
            held = recorded
            await self.ex.adopt_position(self.token_id, held)
        self.strategy.reconcile(held, now_ms())
        missing = round(held - recorded, 6)
        if abs(missing) >= self.strategy.dust:
            await self._book_unrecorded(missing)
        else:
            await self._snapshot()
        logger.info("{} epoch {}: session up, position {:.2f}, state {}", self.token_id, self.epoch, self.position,
                    self.strategy.state.value)

    async def _trade_until_exit(self) -> None:
        """Ticks (or, without them, a timer every ``poll_interval_seconds``) into the strategy; its
        intents out to the venue. Ends on EXIT/STOP, or when a deadline liquidation has finished.

        When the feed is stale (B6) the token is polled over REST by the worker's shared
        :class:`RestBooks` and those books drive the strategy until ticks are trusted again."""
        while not (self.exit_requested.is_set() or self.stop_requested.is_set()):
            self._choose_source()
            tick = await self.feed.next_tick(self.token_id, self.last_feed_tick,
                                             timeout=self.execution.poll_interval_seconds)
            # The first feed tick is the pf:book hash read at subscribe: its ts_recv is its age, not a latency.
            measured = tick is not None and self.last_feed_tick is not None
            if tick is not None:
                self.last_feed_tick = tick
            elif self.source == "rest" and self.books is not None:
                rest = self.books.latest(self.token_id)
                tick = rest if rest is not None and rest is not self.last_rest_tick else None
                self.last_rest_tick = rest
            now = now_ms()
            if tick is None:
                intent = self.strategy.on_timer(now)
            else:
                self.last_tick = tick
                intent = self.strategy.on_tick(tick, now)
                if measured and self.decisions is not None:
                    self.decisions.add(time.time() * 1000 - tick.ts_recv)
            if intent is not None:
                await self._execute(intent)
            elif now - self.snapshot_ms >= SNAPSHOT_EVERY_MS:
                await self._snapshot()
            if self.strategy.exiting and self.position < self.strategy.dust and not self.strategy.awaiting:
                logger.info("{}: {} liquidation done", self.token_id, self.strategy.exit_reason)
                self.exit_requested.set()

    def _choose_source(self) -> None:
        if self.books is None:
            return
        source = "rest" if self.feed.stale(self.token_id) else "ticks"
        if source != self.source:
            self.source = source
            self.source_changes += 1
            self.snapshot_ms = 0  # record the switch in pf:session at once
            if source == "rest":
                self.books.want(self.token_id)
            else:
                self.books.unwant(self.token_id)

    # --- execution (D6; the decisions are execution.OrderWork's) -----------------------------

    async def _execute(self, intent: OrderIntent) -> None:
        """Work the strategy's order at the venue, then tell the strategy how it ended: its fills
        (already booked one by one) or a reject. A BUY under the kill switch is not sent."""
        if intent.side == "BUY":
            halt = await self._check_owner()
            if halt:
                self.strategy.on_reject("BUY", f"kill switch {halt}: no new BUY", now_ms())
                await self._snapshot()
                return
        work = OrderWork(intent, self.execution, self._bounds(intent), now_ms(), self.strategy.exit_attempts)
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
        await self._snapshot()

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

    def _top(self) -> tuple[float, float | None, float | None]:
        tick = self.last_tick
        if self.source == "ticks":
            tick = self.feed.latest.get(self.token_id) or tick
        elif self.books is not None:
            tick = self.books.latest(self.token_id) or tick
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
                await self._pause(self.execution.order_interval_seconds)
            first = False
            tick_size, bid, ask = self._top()
            held = await self._venue_position() if work.side == "SELL" else None
            placement = work.next(now_ms(), tick_size, bid, ask, held)
            if placement is None:
                return
            filled, avg, error = await self._place(placement, tick_size, work.intent.reason)
            if error == NOT_SENT:  # nothing reached the venue: no attempt spent, no price step conceded
                await self._await_lease()
                continue
            affordable = None
            if error and is_balance_error(error):
                affordable = (await self.ex.cash()) / placement.price if work.side == "BUY" else \
                    await self._venue_position()
                logger.warning("{}: {} {:.2f} @ {:.4f} refused ({}); affordable {:.2f}: shrinking", self.token_id,
                               work.side, placement.size, placement.price, error, affordable)
            work.on_outcome(placement, filled, avg, error, affordable)

    async def _place(self, p: Placement, tick_size: float, reason: str) -> tuple[float, float, str]:
        """One placement: send (fenced, intent first), wait for a resting order's fills, cancel the
        rest, and reconcile with the venue's position when nothing filled. -> (filled, avg, error)."""
        before = self.position
        result, intent_id = await self._send(p, tick_size, reason)
        filled, cost = result.filled_size, result.filled_size * (result.avg_price or p.price)
        if result.ok and result.order_id and p.order_type == "GTC" and filled < p.size - 1e-9:
            filled, cost = await self._await_fills(p, result.order_id, intent_id, filled, cost)
        if filled <= 0 and (result.ok or result.ambiguous):
            # Accepted yet no fill we know of ("Duplicated", killed, cancelled empty): the venue's
            # position says whether something traded after all (D6: reconcile on no fill).
            filled = await self._reconcile_fill(p, before, intent_id, result.order_id)
            cost = filled * p.price
        error = "" if result.ok else (result.error or result.status)
        return filled, (cost / filled if filled > 0 else 0.0), error

    async def _await_fills(self, p: Placement, order_id: str, intent_id: str, known: float,
                           cost: float) -> tuple[float, float]:
        """Poll a resting order every ``poll_interval_seconds`` for ``wait_seconds``; book each new
        fill; then cancel what is left and book what filled before the cancel landed."""
        self.resting_order = order_id  # left set if this raises (Fenced): run() cancels it then
        known, cost = await self._watch_resting(p, order_id, intent_id, known, cost)
        self.resting_order = ""
        return known, cost

    async def _watch_resting(self, p: Placement, order_id: str, intent_id: str, known: float,
                             cost: float) -> tuple[float, float]:
        x = self.execution
        loop = asyncio.get_running_loop()
        deadline = loop.time() + x.wait_seconds
        status = None
        while loop.time() < deadline and not self.stop_requested.is_set():
            await self._pause(min(x.poll_interval_seconds, max(0.0, deadline - loop.time())))
            await self._check_owner()  # superseded while resting (e.g. our lease lapsed): stop now
            status = await self._venue_read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known, cost = await self._book_new_fills(p, status, intent_id, known, cost)
            if status is None or not status.live:
                break
        if status is None or status.live:
            try:
                await self.ex.cancel_order(order_id)
            except Exception as exc:  # the next status read says what happened
                logger.warning("{}: cancel of {} failed: {}", self.token_id, order_id[:12], exc)
            status = await self._venue_read("order status", lambda: self.ex.order_status(order_id))
            if status is not None:
                known, cost = await self._book_new_fills(p, status, intent_id, known, cost)
            await self._emit_order(intent_id, order_id, p, "cancelled", "rest cancelled after wait_seconds")
        return known, cost

    async def _book_new_fills(self, p: Placement, status: OrderStatus, intent_id: str, known: float,
                              cost: float) -> tuple[float, float]:
        new = round(status.size_matched - known, 6)
        if new <= 1e-9:
            return known, cost
        await self._record_fill(p.side, new, status.price or p.price, intent_id, status.order_id,
                                round(status.size_matched, 6))
        return known + new, cost + new * (status.price or p.price)

    async def _reconcile_fill(self, p: Placement, before: float, intent_id: str, order_id: str) -> float:
        held = await self._venue_position()
        delta = round(held - before if p.side == "BUY" else before - held, 6)
        if delta < 0.01:
            return 0.0
        size = min(delta, p.size)
        logger.warning("{}: venue shows {:.2f} held, expected {:.2f}: booking {:.2f} as filled by {}",
                       self.token_id, held, before, size, intent_id)
        await self._record_fill(p.side, size, p.price, intent_id, order_id or intent_id, size)
        return size

    async def _await_lease(self) -> None:
        """After the lease gate refused a send: wait (at most a lease period) until the gate would
        pass a fresh check. The next send checks ownership afresh, so a token that moved meanwhile
        fences us there."""
        if self.lease is None:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + self.lease.lease_s
        while not self.lease.sendable() and loop.time() < until and not self.stop_requested.is_set():
            await self._pause(0.05)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once on STOP (a drain must not wait out an order cycle)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)

    async def _venue_position(self) -> float:
        """The position the venue holds (asked again while the venue is throttled or failing)."""
        return await self._venue_read("position read", lambda: self.ex.position(self.token_id))

    async def _venue_read(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
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
                await self._pause(delay)
        raise AssertionError("unreachable")

    async def _liquidate(self) -> None:
        """EXIT: sell what the venue says is held, from the current bid down by price_tolerance_step
        per attempt (exit_sell_mode aggressive), never below exit_floor_price; several rounds."""
        self.strategy.request_exit("exit")
        for _ in range(self.execution.retry_attempts + 1):
            self.strategy.reconcile(await self._venue_position(), now_ms())  # sell what is really held
            if self.position < self.strategy.dust or self.stop_requested.is_set():
                return
            _, bid, _ = self._top()
            intent = self.strategy.begin_exit(bid, now_ms())
            if intent is None:
                return
            await self._execute(intent)
            await self._pause(self.execution.order_interval_seconds)
        self.strategy.reconcile(await self._venue_position(), now_ms())

    # --- orders ----------------------------------------------------------------------------

    async def _check_owner(self) -> str:
        """Fencing: raise :class:`Fenced` unless this worker owns the token at this epoch. Returns the
        kill switch (``pf:halt``: "", ``reduce_only`` or ``halt``) read in the same round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.keys.token(self.token_id), ["owner", "epoch"])
        pipe.get(self.keys.halt())
        (owner, epoch), halt = await pipe.execute()
        if owner != self.worker_id or int(epoch or 0) != self.epoch:
            raise Fenced()
        return str(halt or "")

    def _send_gate(self, checked_at: float) -> Callable[[], bool]:
        """Asked on the venue thread just before the POST (after any wait for a thread, the market
        info and the signature): still ours for sure? A STOP (hand-back, halt, a newer epoch here)
        sends nothing more; a lease that lapsed or broke since ``checked_at`` means the token may
        have moved (soak finding: orders reached the venue up to 2.8 s after a supersede)."""
        lease, stop = self.lease, self.stop_requested

        def may_send() -> bool:
            return not stop.is_set() and (lease is None or lease.may_send(checked_at))
        return may_send

    async def _send(self, p: Placement, tick_size: float, reason: str) -> tuple[OrderResult, str]:
        checked_at = time.monotonic()  # before the read: the check proves ownership from here on
        halt = await self._check_owner()
        if halt == "halt" or (halt and p.side == "BUY"):
            return OrderResult(False, status="rejected", error=f"kill switch {halt}"), ""
        self.intent_seq += 1
        intent_id = stable_id(self.token_id, self.epoch, self.intent_seq, p.side)
        record = {"side": p.side, "price": p.price, "size": p.size, "type": p.order_type, "status": "sending",
                  "ts": now_ms()}
        await self.r.hset(self.keys.session(self.token_id),
                          mapping={f"intent:{intent_id}": json.dumps(record), "intent_seq": self.intent_seq})
        before = self.position
        result = await self.ex.place(self.token_id, p.side, p.price, p.size,  # type: ignore[arg-type]
                                     tick_size, p.order_type, self._send_gate(checked_at))
        if result.error == NOT_SENT:
            metrics.NOT_SENT.labels(p.side).inc()
            logger.warning("{} epoch {}: {} {:.2f} @ {:.4f} not sent: lease {:.2f}s left, stop {}", self.token_id,
                           self.epoch, p.side, p.size, p.price, self.lease.remaining() if self.lease else 0.0,
                           self.stop_requested.is_set())
        if result.ambiguous:
            # We do not know whether it reached the venue: ask it, never send again blindly.
            result = await self._resolve_ambiguous(p, result, before)
        status = "matched" if result.filled_size > 0 else ("placed" if result.ok else "rejected")
        record.update(status=status, order_id=result.order_id, error=result.error)
        await self.r.hset(self.keys.session(self.token_id), f"intent:{intent_id}", json.dumps(record))
        await self._emit_order(intent_id, result.order_id, p, status, result.error or reason)
        if result.filled_size > 0:
            await self._record_fill(p.side, result.filled_size, result.avg_price or p.price, intent_id,
                                    result.order_id, result.filled_size)
        return result, intent_id

    async def _resolve_ambiguous(self, p: Placement, result: OrderResult, before: float) -> OrderResult:
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
        rows = await self._venue_read("open orders read", lambda: self.ex.open_orders(self.token_id))
        opened = [o for o in rows if str(o.get("side", "")).upper() == p.side]
        held = await self._venue_position()
        filled = round(max(0.0, held - before if p.side == "BUY" else before - held), 6)
        logger.warning("{}: ambiguous {} ({}); venue shows {} open, position {:.2f}",
                       self.token_id, p.side, result.error, len(opened), held)
        return OrderResult(bool(opened) or filled > 0, order_id=str(opened[0].get("id", "")) if opened else "",
                           status="reconciled", filled_size=min(filled, p.size), avg_price=p.price,
                           error=result.error, ambiguous=True)

    async def _emit_order(self, intent_id: str, order_id: str, p: Placement, status: str, reason: str) -> None:
        metrics.ORDERS.labels(p.side, status).inc()
        await self._emit(self.keys.orders(), OrderEvent(
            id=stable_id(intent_id, status), ts_event=now_ms(), ts_init=now_ms(), producer=self.worker_id,
            token_id=self.token_id, epoch=self.epoch, worker=self.worker_id, intent_id=intent_id, order_id=order_id,
            side=p.side, price=p.price, size=p.size, status=status, reason=reason,  # type: ignore[arg-type]
        ), "orders")

    async def _record_fill(self, side: str, size: float, price: float, intent_id: str, order_id: str,
                           cumulative: float) -> None:
        """Book one fill (the strategy's position and PnL, the snapshot, ``pf:fills``). The id comes
        from the order and its cumulative matched size, so a re-read never books a fill twice."""
        self.strategy.on_fill(side, size, price, now_ms(), final=False)
        metrics.FILLS.labels(side).inc()
        metrics.FILLED_SHARES.labels(side).inc(size)
        await self._snapshot(Fill(
            id=stable_id("fill", intent_id, order_id, f"{cumulative:.6f}"), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            order_id=order_id, side=side, price=price, size=size,  # type: ignore[arg-type]
        ))
        logger.info("{}: {} {:.2f} @ {:.4f} filled; position {:.2f}", self.token_id, side, size, price, self.position)

    async def _cancel_orders(self) -> None:
        try:
            await self.ex.cancel_token_orders(self.token_id)
        except Exception as exc:  # best effort; the next owner reconciles again
            logger.warning("{}: cancel failed: {}", self.token_id, exc)

    # --- state and reports -----------------------------------------------------------------

    async def _snapshot(self, fill: Fill | None = None) -> None:
        # Only the owner at this epoch writes pf:session: a session superseded while it ran (its
        # worker's lease lapsed, e.g. while Redis was down) would otherwise overwrite the new
        # owner's snapshot every SNAPSHOT_EVERY_MS until it next tried to send (soak finding).
        await self._check_owner()
        status = self.strategy.status()
        self.snapshot_ms = now_ms()
        mapping = {
            "epoch": self.epoch, "worker": self.worker_id, "position": f"{self.position:.6f}",
            "avg_cost": f"{self.avg_cost:.6f}", "realized_pnl": f"{self.realized:.6f}",
            "unrealized_pnl": f"{status['unrealized_pnl']:.6f}", "state": status["state"],
            "source": self.source,
            "strategy": json.dumps(status, separators=(",", ":")), "updated_at": self.snapshot_ms,
        }
        if fill is None:
            await self.r.hset(self.keys.session(self.token_id), mapping=mapping)
            return
        # The fill and the snapshot that counts it land together: a kill between the two would
        # leave the next owner a position that the fills (the orchestrator's books) do not explain.
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.session(self.token_id), mapping=mapping)
            pipe.xadd(self.keys.fills(), fill.encode(), maxlen=STREAM_MAXLEN["fills"], approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
        self.fills_written += 1

    async def report_failure(self, reason: str) -> None:
        """Tell the orchestrator this session failed (the worker calls it when the session's own
        report could not be sent, e.g. Redis was unreachable at that moment)."""
        await self._report("failed", reason=reason)

    async def _report(self, status: str, reason: str = "") -> None:
        if status in ("closed", "failed", "handed_back"):
            metrics.SESSION_ENDS.labels(status).inc()
        await self._emit(self.keys.sessions(), SessionReport(
            id=stable_id("session", self.token_id, self.epoch, status), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            status=status, position=self.position, avg_cost=self.avg_cost, realized_pnl=self.realized,  # type: ignore[arg-type]
            reason=reason, fills=self.fills_written,
        ), "sessions")

    async def _emit(self, stream: str, msg: Message, kind: str) -> None:
        await add_message(self.r, stream, msg, STREAM_MAXLEN[kind])
