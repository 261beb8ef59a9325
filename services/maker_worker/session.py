"""One token's session inside a worker: reconcile, wait for ticks, trade, liquidate on EXIT.

Safety rules kept here (ARCHITECTURE "Ownership and orders"):
* fencing: before every order and every snapshot the session checks ``pf:token:{id}`` still names
  this worker at this epoch (:meth:`TokenSession.check_owner`); a stale owner stops, cancels its
  own resting order and sends nothing more;
* resume (:mod:`services.maker_worker.resume`): a new owner starts from the snapshot in
  ``pf:session:{id}`` (the strategy's state and the trades still settling) and the venue's position.

The decisions are :class:`VolatilityStrategy`'s; this class only feeds it ticks, timers and order
outcomes. What it asks for is worked at the venue by the session's :class:`OrderDesk`
(:mod:`services.maker_worker.desk`: the send gate, fills by venue trade, trades followed until settled).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.maker_worker import metrics
from services.maker_worker.copycap import buy_cap, over_cap
from services.maker_worker.deadline import epoch_ms
from services.maker_worker.desk import OrderDesk
from services.maker_worker.executor import Executor, MarketFacts
from services.maker_worker.latency import LatencyHistogram
from services.maker_worker.lease import LeaseClock
from services.maker_worker.restbook import RestBooks
from services.maker_worker.resume import book_unrecorded, resume
from services.maker_worker.trims import TrimQueue
from services.maker_worker.volatility import VolatilityStrategy
from shared.clock import now_ms
from shared.config import ConfigError, ExecutionSection, MakerStrategySection, RunParamsSection
from shared.fleet import DUST
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Fill, SessionReport, TradeStatus, stable_id
from shared.redisio import add_message
from shared.tickfeed import TickFeed
from shared.ticks import Tick
from shared.venue.errors import VenueSetupError

SNAPSHOT_EVERY_MS = 5_000  # the drop window changes on every tick; persist it at most this often


class Fenced(Exception):
    """This worker no longer owns the token at this epoch."""


class TokenSession:
    def __init__(self, r: aioredis.Redis, keys: Keys, feed: TickFeed, executor: Executor, worker_id: str,
                 token_id: str, epoch: int, params: dict[str, Any], books: RestBooks | None = None,
                 decisions: LatencyHistogram | None = None, lease: LeaseClock | None = None) -> None:
        self.r, self.keys, self.feed, self.ex = r, keys, feed, executor
        self.decisions = decisions  # the worker's tick-to-decision histogram (heartbeat); None: not measured
        self.books = books  # the worker's shared REST poller (B6); None: ticks only
        self.worker_id, self.token_id, self.epoch = worker_id, token_id, epoch
        self._owned = False  # True once the ownership check at start passed
        self.fills_written = 0  # fills of this epoch on pf:fills: the closed report says how many to wait for
        self.setup_error = ""
        try:
            self.params = MakerStrategySection.model_validate(params.get("maker_strategy", {}))
            self.run_params = RunParamsSection.model_validate(params.get("run_params", {}))
            self.execution = ExecutionSection.model_validate(params.get("execution", {}))
            self.facts = MarketFacts.from_params(params)
            end = params.get("market_end_ts")
            self.market_end_ms = epoch_ms(end) if end else None
            self.strategy = self._new_strategy()
        except (ConfigError, ValueError, VenueSetupError) as exc:  # reported as "failed" by run(), naming the key
            self.setup_error = str(exc)
            self.params, self.run_params, self.execution = MakerStrategySection(), RunParamsSection(), ExecutionSection()
            self.facts = MarketFacts()
            self.market_end_ms = None
            self.strategy = self._new_strategy()
        self.exit_requested = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.hand_back = False
        self.buy_cap = buy_cap(params)  # a copy let through without a book: never BUY above the leader's limit
        self.reconciles = 0  # differences with the venue booked as fills this epoch (after the resume's)
        self.reconciled_ms = now_ms()  # the resume takes the venue's word: the periodic one counts from it
        self.trims = TrimQueue()  # partial exits (EXIT with a fraction): the START's, then the commands'
        self.trims.add_all(params.get("trims") or [])
        self.last_tick: Tick | None = None  # the latest tick fed to the strategy, from either source
        self.last_feed_tick: Tick | None = None
        self.last_rest_tick: Tick | None = None
        self.source = "ticks"  # ticks | rest (B6)
        self.source_changes = 0
        self.snapshot_ms = 0
        self.trades_ms = 0  # when the pending trades were last read
        # Every order goes through the desk; it sees this session only as its DeskHost.
        self.desk = OrderDesk(r, keys, executor, self, worker_id, token_id, epoch, self.params, self.execution,
                              self.stop_requested, self.exit_requested, lease, self.facts.min_order_size)

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

    @property
    def lease(self) -> LeaseClock | None:
        """The worker's lease clock, which gates every POST (kept by the desk)."""
        return self.desk.lease

    @lease.setter
    def lease(self, lease: LeaseClock | None) -> None:
        self.desk.lease = lease

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if self.setup_error:
                await self._report("failed", reason=f"bad parameters: {self.setup_error}")
                return
            try:  # the market's system and minimum: a token its market version contradicts trades nothing
                self.ex.describe(self.token_id, self.facts)
            except VenueSetupError as exc:
                await self._report("failed", reason=f"market not tradable: {exc}")
                return
            # A START read late (the orchestrator gave the token a newer epoch or another owner since,
            # e.g. a restarted worker reading its predecessor's unread commands) must run nothing:
            # no resume snapshot over the owner's, no cancel of the owner's orders (soak finding).
            await self.check_owner()
            self._owned = True
            await resume(self)
            await self._report("started")
            await self._trade_until_exit()
            if self.stop_requested.is_set():
                await self.desk.cancel_orders()
                if self.hand_back:
                    await self.snapshot()  # the next owner resumes from exactly this
                    await self._report("handed_back", reason="worker stopping")
                return
            await self._liquidate()
            # The final reconcile with the venue may have moved the position without a fill of
            # ours: the snapshot must say what the report says, or a later resume starts wrong.
            await self.snapshot()
            reason = self.strategy.exit_reason or "exit"
            await self._report("closed", reason=f"{reason}: liquidated" if self.position < DUST else f"{reason}: exit incomplete")
        except Fenced:
            logger.warning("{} epoch {}: fenced (another owner now); stopping quietly", self.token_id, self.epoch)
            await self.desk.cancel_resting()
        except Exception as exc:
            logger.exception("session {} failed", self.token_id)
            await self._report("failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            if self.books is not None:
                self.books.unwant(self.token_id)
            await self.feed.remove(self.token_id)

    async def _trade_until_exit(self) -> None:
        """Ticks (or, without them, a timer every ``poll_interval_sec``) into the strategy; its
        intents out to the venue. Ends on EXIT/STOP, or when a deadline liquidation has finished.

        When the feed is stale (B6) the token is polled over REST by the worker's shared
        :class:`RestBooks` and those books drive the strategy until ticks are trusted again."""
        while not (self.exit_requested.is_set() or self.stop_requested.is_set()):
            if self.trims and not self.strategy.awaiting:
                fraction = self.trims.take()
                await self.snapshot()  # done before its SELL goes out: never sold twice (trims.py)
                await self._trim(fraction)
                continue
            self._choose_source()
            tick = await self.feed.next_tick(self.token_id, self.last_feed_tick,
                                             timeout=self.execution.poll_interval_sec)
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
            refused = None if intent is None else over_cap(self.buy_cap, intent.side, intent.price)
            if refused is not None:
                self.strategy.on_reject("BUY", refused, now)  # cools down; a later tick may be within it
                metrics.COPY_GUARDED.inc()
            elif intent is not None:
                await self.desk.execute(intent)
            elif now - self.trades_ms >= self.execution.settle_poll_sec * 1000 and self.desk.trades.pending:
                self.trades_ms = now  # our trades followed until they settle (a FAILED one voided)
                await self.desk.trades.refresh()
            elif self._reconcile_due(now):
                self.reconciled_ms = now
                await self.reconcile_with_venue()
            elif now - self.snapshot_ms >= SNAPSHOT_EVERY_MS:
                await self.snapshot()
            if self.strategy.exiting and self.position < self.strategy.dust and not self.strategy.awaiting:
                logger.info("{}: {} liquidation done", self.token_id, self.strategy.exit_reason)
                self.exit_requested.set()

    def latest_tick(self) -> Tick | None:
        """The newest tick from the source traded on (the feed's, or the REST poller's when stale)."""
        tick = self.last_tick
        if self.source == "ticks":
            tick = self.feed.latest.get(self.token_id) or tick
        elif self.books is not None:
            tick = self.books.latest(self.token_id) or tick
        return tick

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

    def request_trim(self, fraction: float, trim_id: str = "") -> None:
        """EXIT with a fraction: sell that share of the position, keep trading the rest."""
        try:
            self.trims.add(trim_id, fraction)
        except ValueError as exc:
            logger.warning("{}: partial exit {} refused: {}", self.token_id, trim_id or "(unnamed)", exc)

    async def _trim(self, fraction: float) -> None:
        """One partial exit: ``fraction`` of what is held, sold like a liquidation (from the bid down
        by price_tolerance_step per attempt, never below exit_floor_price)."""
        held, sellable = await self.desk.reads.holdings()  # one read: the share of what is really held
        await self.reconcile_with_venue(held)
        _, bid, _ = self.desk.top()
        intent = self.strategy.trim_intent(fraction, bid, now_ms(), f"followed wallet sold {fraction:.0%}", sellable)
        if intent is None:
            logger.info("{}: partial exit of {:.0%} has nothing to sell", self.token_id, fraction)
            return
        await self.desk.execute(intent)

    async def _liquidate(self) -> None:
        """EXIT: sell what the venue says is held, from the current bid down by price_tolerance_step
        per attempt (exit_sell_mode aggressive), never below exit_floor_price; several rounds. Then
        wait (at most settle_wait_sec) for the session's trades to settle, so the closed report
        says what settled: a SELL whose trade FAILED gives its shares back, and they are sold once more."""
        x = self.execution
        self.strategy.request_exit("exit")
        for _ in range(2):
            failed = self.desk.trades.failed
            await self._liquidation_rounds()
            await self.desk.trades.wait(False, x.settle_wait_sec, x.settle_poll_sec, self.desk.pause,
                                        self.stop_requested.is_set)
            await self.reconcile_with_venue()
            if self.position < self.strategy.dust or self.stop_requested.is_set() or self.desk.trades.failed == failed:
                return

    async def _liquidation_rounds(self) -> None:
        for _ in range(self.execution.retry_attempts + 1):
            await self.reconcile_with_venue()  # sell what is really held
            if self.position < self.strategy.dust or self.stop_requested.is_set():
                return
            _, bid, _ = self.desk.top()
            intent = self.strategy.begin_exit(bid, now_ms())
            if intent is None:
                return
            await self.desk.execute(intent)
            await self.desk.pause(self.execution.order_interval_sec)

    def _reconcile_due(self, now: int) -> bool:
        """Time for the periodic reconcile: on the venue (not paper), nothing pending, no order out,
        not exiting, and no fill without a trade booked within settle_wait_sec (its trade may not
        have settled, and the balance would not show it yet)."""
        x = self.execution
        return (x.reconcile_sec > 0 and self.ex.venue_is_truth and now - self.reconciled_ms >= x.reconcile_sec * 1000
                and not self.strategy.awaiting and not self.strategy.exiting and not self.desk.trades.pending
                and now - self.desk.fills.unexplained_ms >= x.settle_wait_sec * 1000)

    async def reconcile_with_venue(self, held: float | None = None) -> None:
        """The venue's position (``held``: already read) wins, and a difference from the booked
        fills is booked as a fill: a trade no fill recorded (its session was fenced or died between
        the trade and the record while the trade was unsettled, so the resume's check could not see
        it: soak finding) must reach the orchestrator's books, not only this session's count."""
        if held is None:
            held = await self.desk.venue_position()
        missing = round(held - self.strategy.position, 6)
        self.strategy.reconcile(held, now_ms())
        if self.ex.venue_is_truth and abs(missing) >= self.strategy.dust:
            self.reconciles += 1
            await book_unrecorded(self, missing, self.reconciles)

    # --- ownership -------------------------------------------------------------------------

    async def check_owner(self) -> str:
        """Fencing: raise :class:`Fenced` unless this worker owns the token at this epoch. Returns the
        kill switch (``pf:halt``: "", ``reduce_only`` or ``halt``) read in the same round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.keys.token(self.token_id), ["owner", "epoch"])
        pipe.get(self.keys.halt())
        (owner, epoch), halt = await pipe.execute()
        if owner != self.worker_id or int(epoch or 0) != self.epoch:
            raise Fenced()
        return str(halt or "")

    # --- state and reports -----------------------------------------------------------------

    async def snapshot(self, *messages: Fill | TradeStatus) -> None:
        # Only the owner at this epoch writes pf:session: a session superseded while it ran (its
        # worker's lease lapsed, e.g. while Redis was down) would otherwise overwrite the new
        # owner's snapshot every SNAPSHOT_EVERY_MS until it next tried to send (soak finding).
        await self.check_owner()
        status = self.strategy.status()
        self.snapshot_ms = now_ms()
        mapping = {
            "epoch": self.epoch, "worker": self.worker_id, "position": f"{self.position:.6f}",
            "avg_cost": f"{self.avg_cost:.6f}", "realized_pnl": f"{self.realized:.6f}",
            "unrealized_pnl": f"{status['unrealized_pnl']:.6f}", "state": status["state"],
            "source": self.source,
            "strategy": json.dumps(status, separators=(",", ":")), "updated_at": self.snapshot_ms,
            "trades": self.desk.trades.pending.dump(),  # the trades still to follow (the next owner's too)
            "trims": self.trims.dump(),  # the partial exits done and still to do (the next owner's too)
        }
        if not messages:
            await self.r.hset(self.keys.session(self.token_id), mapping=mapping)
            return
        # A fill (or a trade's new status) and the snapshot that counts it land together: a kill
        # between the two would leave the next owner a position, or a list of trades to follow,
        # that the messages (the orchestrator's books) do not explain.
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.session(self.token_id), mapping=mapping)
            for msg in messages:
                pipe.xadd(self.keys.fills(), msg.encode(), maxlen=STREAM_MAXLEN["fills"], approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
        self.fills_written += sum(isinstance(m, Fill) for m in messages)

    async def report_failure(self, reason: str) -> None:
        """Tell the orchestrator this session failed (the worker calls it when the session's own
        report could not be sent, e.g. Redis was unreachable at that moment)."""
        await self._report("failed", reason=reason)

    async def _report(self, status: str, reason: str = "") -> None:
        if status in ("closed", "failed", "handed_back"):
            metrics.SESSION_ENDS.labels(status).inc()
        await add_message(self.r, self.keys.sessions(), SessionReport(
            id=stable_id("session", self.token_id, self.epoch, status), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            status=status, position=self.position, avg_cost=self.avg_cost, realized_pnl=self.realized,  # type: ignore[arg-type]
            reason=reason, fills=self.fills_written,
        ), STREAM_MAXLEN["sessions"])
