"""Order heartbeats to the venue, and the order gate they hold (docs/venue.md H1, issue 16 item 3).

The venue cancels every open order of an API key that has sent a heartbeat and then stays silent
for ~10 s: the dead-man switch that keeps a crashed worker's resting orders from outliving it. A
worker with a venue account sends one every ``order_heartbeats.interval_sec`` (5 s, as the
official clients do) from its own task, whatever its sessions are doing.

When sends fail, the deadline still runs at the venue. An order posted close to it would rest
unprotected (the worker may be cut off for good) or be cancelled moments later, so the worker
fails closed: once no more than ``fail_closed_margin_sec`` remain before the deadline counted from
the last accepted send, :meth:`HeartbeatState.sendable` is false and the send gate
(:class:`~services.maker_worker.lease.LeaseClock`, ``venue_gate``) lets no order out. Cancels are
never gated. The gate opens again with the next accepted send. Before the first accepted send the
gate is closed too: an order placed before the switch is armed would survive a crash.

The closing and the reopening are said once each, in ``pf:events`` (``worker.heartbeat_failing``,
level error, which the alerter turns into a ``venue_heartbeat`` alert; ``worker.heartbeat_restored``),
in the worker's metrics and in its log. A closure while the venue says it is restarting (425, O1)
is written at level warning: the weekly restart is expected, and no order could be placed anyway.

Every worker of an account shares the key's heartbeat chain (the venue keys it by API key): a send
answered with another worker's id is sent again with it (``VenueOrders.heartbeat``). The account's
orders therefore live as long as any of its workers beats; a dead worker's orphans are cancelled
by the token's next owner (D8).

:class:`HeartbeatState` decides (pure, times in monotonic seconds passed in); :class:`VenueHeartbeat`
sends, reports, and sleeps until the next thing is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.maker_worker import metrics
from shared.clock import now_ms
from shared.config import OrderHeartbeatsSection
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import AuditEvent, stable_id
from shared.redisio import add_message
from shared.venue.errors import VenueUnavailable

Change = Literal["closed", "reopened"]
MIN_SLEEP_S = 0.01


@dataclass(frozen=True)
class HeartbeatTimes:
    interval_s: float
    retry_s: float
    venue_timeout_s: float
    margin_s: float

    @classmethod
    def of(cls, cfg: OrderHeartbeatsSection) -> HeartbeatTimes:
        return cls(cfg.interval_sec, cfg.retry_sec, cfg.venue_timeout_sec, cfg.fail_closed_margin_sec)

    @property
    def open_s(self) -> float:
        """How long after an accepted send the gate stays open."""
        return self.venue_timeout_s - self.margin_s

    @property
    def send_timeout_s(self) -> float:
        """A send not answered within this long counts as failed: one slower than the margin could
        not keep the gate open anyway, and the next send must not wait behind it."""
        return max(0.5, min(self.interval_s, self.margin_s))


class HeartbeatState:
    """When to send the next heartbeat, whether orders may be placed, and when that changed."""

    def __init__(self, times: HeartbeatTimes) -> None:
        self.times = times
        self.last_ok = -math.inf  # when the last accepted send *started* (the venue got it no earlier)
        self.last_attempt = -math.inf
        self.last_failed = False
        self.failing_since: float | None = None  # the first failure since the last accepted send
        self.last_error = ""
        self.restarting = False  # the last failure was the venue's engine restart (425)
        self.closed_said = False  # a closure was reported and no reopening since
        self.accepted_count = 0
        self.failed_count = 0

    def next_send(self) -> float:
        """When the next send is due (immediately at first; ``retry_s`` after a failure)."""
        return self.last_attempt + (self.times.retry_s if self.last_failed else self.times.interval_s)

    def closes_at(self) -> float:
        """When the gate closes unless a send is accepted first."""
        return self.last_ok + self.times.open_s

    def sendable(self, now: float) -> bool:
        """May an order be posted now? (an accepted send, and the venue's deadline not near)"""
        return now < self.closes_at()

    def accepted(self, started: float) -> None:
        self.last_ok = max(self.last_ok, started)
        self.last_attempt = started
        self.last_failed = False
        self.failing_since = None
        self.last_error = ""
        self.restarting = False
        self.accepted_count += 1

    def failed(self, started: float, error: str, restarting: bool = False) -> None:
        self.last_attempt = started
        self.last_failed = True
        if self.failing_since is None:
            self.failing_since = started
        self.last_error = error
        self.restarting = restarting
        self.failed_count += 1

    def change(self, now: float) -> Change | None:
        """``closed`` once when the gate shut (or never opened for as long as it would have stayed
        open), ``reopened`` once when it opens after that; None otherwise."""
        if self.closed_said:
            if self.sendable(now):
                self.closed_said = False
                return "reopened"
            return None
        if self.sendable(now):
            return None
        never_opened = self.last_ok == -math.inf
        if not never_opened or (self.failing_since is not None and now - self.failing_since >= self.times.open_s):
            self.closed_said = True
            return "closed"
        return None

    def wake_in(self, now: float) -> float:
        """Seconds until the loop has something to do: a send, or the gate closing."""
        due = self.next_send()
        if not self.closed_said:
            due = min(due, self.closes_at() if self.sendable(now) else
                      (self.failing_since or now) + self.times.open_s)
        return max(MIN_SLEEP_S, due - now)

    def silent_s(self, now: float) -> float:
        """Seconds since the last accepted send began (inf before the first)."""
        return now - self.last_ok


Send = Callable[[str], Awaitable[str]]  # VenueOrders.heartbeat: the id to send -> the next id


class VenueHeartbeat:
    """Sends the heartbeats of one worker process and reports the gate's changes."""

    def __init__(self, send: Send, cfg: OrderHeartbeatsSection, redis: aioredis.Redis, keys: Keys,
                 worker_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.send_beat = send
        self.state = HeartbeatState(HeartbeatTimes.of(cfg))
        self.redis, self.keys, self.worker_id = redis, keys, worker_id
        self.clock = clock
        self.heartbeat_id = ""  # the id the next send carries ("" arms the switch)
        metrics.HEARTBEAT_GATE.set(0)

    def sendable(self) -> bool:
        """The send gate's question (LeaseClock.venue_gate): may an order be posted now?"""
        return self.state.sendable(self.clock())

    async def beat(self) -> None:
        """One send, bounded by the send timeout; its outcome recorded."""
        started = self.clock()
        try:
            self.heartbeat_id = await asyncio.wait_for(self.send_beat(self.heartbeat_id),
                                                       self.state.times.send_timeout_s)
        except Exception as exc:  # any failure is a missed beat: the deadline runs on
            restarting = isinstance(exc, VenueUnavailable) and (exc.restriction == "restarting" or exc.status == 425)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.state.failed(started, error, restarting)
            metrics.HEARTBEATS.labels("failed").inc()
            logger.warning("order heartbeat failed ({}); {:.1f}s since the last accepted one", error,
                           self.state.silent_s(self.clock()))
            return
        self.state.accepted(started)
        metrics.HEARTBEATS.labels("ok").inc()

    async def step(self) -> float:
        """Send if due, report a change; the seconds until the next step."""
        if self.clock() >= self.state.next_send():
            await self.beat()
        now = self.clock()
        change = self.state.change(now)
        metrics.HEARTBEAT_GATE.set(1 if self.state.sendable(now) else 0)
        if change is not None:
            await self.report(change, now)
        return self.state.wake_in(self.clock())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                wait = await self.step()
            except Exception:  # a dead heartbeat loop would let the venue cancel every order
                logger.exception("order heartbeat step failed; retrying")
                wait = self.state.times.retry_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def report(self, change: Change, now: float) -> None:
        s = self.state
        silent = s.silent_s(now)
        detail: dict[str, Any] = {"worker": self.worker_id, "failures": s.failed_count, "error": s.last_error,
                                  "silent_sec": None if math.isinf(silent) else round(silent, 3),
                                  "venue_timeout_sec": s.times.venue_timeout_s, "restarting": s.restarting}
        if change == "closed":
            metrics.HEARTBEAT_CLOSURES.inc()
            level = "warning" if s.restarting else "error"
            reason = (f"worker {self.worker_id} stopped placing orders: no order heartbeat accepted for "
                      + ("ever" if math.isinf(silent) else f"{silent:.1f}s")
                      + f" (the venue cancels every open order after {s.times.venue_timeout_s:g}s); {s.last_error}")
            logger.error(reason)
            kind = "worker.heartbeat_failing"
        else:
            level = "info"
            reason = f"worker {self.worker_id} places orders again: order heartbeats accepted"
            logger.warning(reason)
            kind = "worker.heartbeat_restored"
        ts = now_ms()
        msg = AuditEvent(id=stable_id(self.worker_id, kind, ts), ts_event=ts, ts_init=ts, producer=self.worker_id,
                         kind=kind, level=level, reason=reason, detail=detail)  # type: ignore[arg-type]
        try:
            await add_message(self.redis, self.keys.events(), msg, STREAM_MAXLEN["events"])
        except (RedisError, OSError) as exc:  # the gate has changed regardless; the log and metric say so
            logger.warning("could not write {}: {}", kind, exc)

    def summary(self) -> dict[str, Any]:
        """For the worker's liveness beat: is the gate open, and how the sends went."""
        now = self.clock()
        silent = self.state.silent_s(now)
        return {"venue_heartbeat": "ok" if self.state.sendable(now) else "failing",
                "venue_heartbeat_silent_sec": None if math.isinf(silent) else round(silent, 1),
                "venue_heartbeats_ok": self.state.accepted_count, "venue_heartbeats_failed": self.state.failed_count}
