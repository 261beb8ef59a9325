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
import json
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.maker_worker.deadline import epoch_ms
from services.maker_worker.executor import Executor, OrderResult
from services.maker_worker.strategy import OrderIntent
from services.maker_worker.volatility import VolatilityStrategy
from shared.clock import now_ms
from shared.config import ConfigError, ExecutionSection, MakerStrategySection, RunParamsSection
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import Fill, Message, OrderEvent, SessionReport, stable_id
from shared.redisio import add_message
from shared.tickfeed import TickFeed
from shared.ticks import Tick

DUST = 0.01  # shares below this cannot be sold (two-decimal sizes)
SNAPSHOT_EVERY_MS = 5_000  # the drop window changes on every tick; persist it at most this often


class Fenced(Exception):
    """This worker no longer owns the token at this epoch."""


class TokenSession:
    def __init__(self, r: aioredis.Redis, keys: Keys, feed: TickFeed, executor: Executor, worker_id: str,
                 token_id: str, epoch: int, params: dict[str, Any]) -> None:
        self.r, self.keys, self.feed, self.ex = r, keys, feed, executor
        self.worker_id, self.token_id, self.epoch = worker_id, token_id, epoch
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
        self.last_tick: Tick | None = None
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
            await self._resume()
            await self._report("started")
            await self._trade_until_exit()
            if self.stop_requested.is_set():
                await self._cancel_orders()
                if self.hand_back:
                    await self._report("handed_back", reason="worker stopping")
                return
            await self._liquidate()
            reason = self.strategy.exit_reason or "exit"
            await self._report("closed", reason=f"{reason}: liquidated" if self.position < DUST else f"{reason}: exit incomplete")
        except Fenced:
            logger.warning("{} epoch {}: fenced (another owner now); stopping quietly", self.token_id, self.epoch)
            await self._cancel_orders()
        except Exception as exc:
            logger.exception("session {} failed", self.token_id)
            await self._report("failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            await self.feed.remove(self.token_id)

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
        if self.ex.venue_is_truth:
            held = await self.ex.position(self.token_id)
        else:  # a paper account does not survive the worker: the snapshot is the record
            held = self.strategy.position
            await self.ex.adopt_position(self.token_id, held)
        self.strategy.reconcile(held, now_ms())
        await self._snapshot()
        logger.info("{} epoch {}: session up, position {:.2f}, state {}", self.token_id, self.epoch, self.position,
                    self.strategy.state.value)

    async def _trade_until_exit(self) -> None:
        """Ticks (or, without them, a timer every ``poll_interval_seconds``) into the strategy; its
        intents out to the venue. Ends on EXIT/STOP, or when a deadline liquidation has finished."""
        while not (self.exit_requested.is_set() or self.stop_requested.is_set()):
            tick = await self.feed.next_tick(self.token_id, self.last_tick, timeout=self.execution.poll_interval_seconds)
            now = now_ms()
            if tick is None:
                intent = self.strategy.on_timer(now)
            else:
                self.last_tick = tick
                intent = self.strategy.on_tick(tick, now)
            if intent is not None:
                await self._execute(intent)
            elif now - self.snapshot_ms >= SNAPSHOT_EVERY_MS:
                await self._snapshot()
            if self.strategy.exiting and self.position < self.strategy.dust and not self.strategy.awaiting:
                logger.info("{}: {} liquidation done", self.token_id, self.strategy.exit_reason)
                self.exit_requested.set()

    async def _execute(self, intent: OrderIntent) -> None:
        """Send the strategy's order and tell it the outcome: fills, a reject, or the venue's position."""
        tick_size = self.last_tick.tick_size if self.last_tick else self.strategy.tick_size
        try:
            result = await self._send(intent, tick_size)
        except BaseException:
            self.strategy.on_reject(intent.side, "not sent", now_ms())  # nothing reached the venue
            raise
        if result.filled_size > 0:
            pass  # _record_fill already told the strategy
        elif result.ok:  # accepted without a fill we know of ("Duplicated", resting): ask the venue
            self.strategy.reconcile(await self._venue_position(), now_ms())
        else:
            self.strategy.on_reject(intent.side, result.error or result.status, now_ms())
        await self._snapshot()

    async def _venue_position(self) -> float:
        return await self.ex.position(self.token_id)

    async def _liquidate(self) -> None:
        self.strategy.request_exit("exit")
        attempts = self.execution.retry_attempts + 1
        for attempt in range(attempts):
            self.strategy.reconcile(await self._venue_position(), now_ms())  # sell what is really held
            if self.position < self.strategy.dust:
                return
            tick = self.feed.latest.get(self.token_id) or self.last_tick
            intent = self.strategy.exit_intent(tick.bid if tick else None, tick.tick_size if tick else None, attempt)
            if intent is None:
                return
            await self._send(intent, tick.tick_size if tick else self.strategy.tick_size)
            if attempt + 1 < attempts:
                await self.feed.next_tick(self.token_id, tick, timeout=self.execution.order_interval_seconds + 0.5)
        self.strategy.reconcile(await self._venue_position(), now_ms())

    # --- orders ----------------------------------------------------------------------------

    async def _check_owner(self) -> None:
        owner, epoch = await self.r.hmget(self.keys.token(self.token_id), ["owner", "epoch"])
        if owner != self.worker_id or int(epoch or 0) != self.epoch:
            raise Fenced()

    async def _send(self, intent: OrderIntent, tick_size: float) -> OrderResult:
        await self._check_owner()
        self.intent_seq += 1
        intent_id = stable_id(self.token_id, self.epoch, self.intent_seq, intent.side)
        record = {"side": intent.side, "price": intent.price, "size": intent.size, "status": "sending", "ts": now_ms()}
        await self.r.hset(self.keys.session(self.token_id),
                          mapping={f"intent:{intent_id}": json.dumps(record), "intent_seq": self.intent_seq})
        before = self.position
        result = await self.ex.place(self.token_id, intent.side, intent.price, intent.size, tick_size)  # type: ignore[arg-type]
        if result.ambiguous:
            # We do not know whether it reached the venue: ask it, never send again blindly.
            open_ids = [o.get("id") for o in await self.ex.open_orders(self.token_id)]
            held = await self.ex.position(self.token_id)
            filled = abs(held - before)
            logger.warning("{}: ambiguous {} ({}); venue shows {} open, position {:.2f}",
                           self.token_id, intent.side, result.error, len(open_ids), held)
            result = OrderResult(bool(open_ids) or filled > 0, order_id=str(open_ids[0]) if open_ids else "",
                                 status="reconciled", filled_size=filled, avg_price=intent.price,
                                 error=result.error, ambiguous=True)
        status = "matched" if result.filled_size > 0 else ("placed" if result.ok else "rejected")
        record.update(status=status, order_id=result.order_id, error=result.error)
        await self.r.hset(self.keys.session(self.token_id), f"intent:{intent_id}", json.dumps(record))
        await self._emit(self.keys.orders(), OrderEvent(
            id=intent_id, ts_event=now_ms(), ts_init=now_ms(), producer=self.worker_id, token_id=self.token_id,
            epoch=self.epoch, worker=self.worker_id, intent_id=intent_id, order_id=result.order_id,
            side=intent.side, price=intent.price, size=intent.size, status=status, reason=result.error or intent.reason,  # type: ignore[arg-type]
        ), "orders")
        if result.filled_size > 0:
            await self._record_fill(intent.side, result, intent_id)
        return result

    async def _record_fill(self, side: str, result: OrderResult, intent_id: str) -> None:
        size, price = result.filled_size, result.avg_price or 0.0
        self.strategy.on_fill(side, size, price, now_ms(), final=True)
        await self._snapshot()
        await self._emit(self.keys.fills(), Fill(
            id=stable_id("fill", intent_id, result.order_id), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            order_id=result.order_id, side=side, price=price, size=size,  # type: ignore[arg-type]
        ), "fills")
        logger.info("{}: {} {:.2f} @ {:.4f} filled; position {:.2f}", self.token_id, side, size, price, self.position)

    async def _cancel_orders(self) -> None:
        try:
            await self.ex.cancel_token_orders(self.token_id)
        except Exception as exc:  # best effort; the next owner reconciles again
            logger.warning("{}: cancel failed: {}", self.token_id, exc)

    # --- state and reports -----------------------------------------------------------------

    async def _snapshot(self) -> None:
        status = self.strategy.status()
        self.snapshot_ms = now_ms()
        await self.r.hset(self.keys.session(self.token_id), mapping={
            "epoch": self.epoch, "worker": self.worker_id, "position": f"{self.position:.6f}",
            "avg_cost": f"{self.avg_cost:.6f}", "realized_pnl": f"{self.realized:.6f}",
            "unrealized_pnl": f"{status['unrealized_pnl']:.6f}", "state": status["state"],
            "strategy": json.dumps(status, separators=(",", ":")), "updated_at": self.snapshot_ms,
        })

    async def _report(self, status: str, reason: str = "") -> None:
        await self._emit(self.keys.sessions(), SessionReport(
            id=stable_id("session", self.token_id, self.epoch, status), ts_event=now_ms(), ts_init=now_ms(),
            producer=self.worker_id, token_id=self.token_id, epoch=self.epoch, worker=self.worker_id,
            status=status, position=self.position, avg_cost=self.avg_cost, realized_pnl=self.realized,  # type: ignore[arg-type]
            reason=reason,
        ), "sessions")

    async def _emit(self, stream: str, msg: Message, kind: str) -> None:
        await add_message(self.r, stream, msg, STREAM_MAXLEN[kind])
