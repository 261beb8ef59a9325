"""The orchestrator: signals in, sessions out.

Reads ``pf:signals``, ``pf:sessions``, ``pf:fills`` and ``pf:control`` with the ``orchestrator``
consumer group; each entry's decision and effects commit in one MULTI with its XACK (see
store.py). Between reads, ``maintain()`` checks worker leases (reassigning the tokens of dead
workers under a new epoch) and starts queued tokens as slots free up.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator.assignment import WorkerView, pick_worker
from services.orchestrator.decisions import BuyContext, blacklist_reason, decide_buy, decide_sell
from services.orchestrator.positions import apply_fill
from services.orchestrator.scheduling import tokens_to_start
from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.config import Settings, merge_strategy_params
from shared.keys import GROUP_ORCHESTRATOR, REQUESTER_ORCHESTRATOR
from shared.messages import ControlRequest, Fill, SessionReport, Signal
from shared.redisio import StreamConsumer, StreamEntry
from shared.redisio.health import beat
from shared.service import RedisService

ACTIVE = ("starting", "running", "exiting")


class OrchestratorService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self._last_start_ms = 0
        self._last_maintain = 0.0
        self._last_beat = 0.0
        self.decisions = 0

    async def _setup(self) -> None:
        await self.connect_redis()
        k = self.keys
        self.store = TokenStore(self.redis, k, f"orchestrator:{self.instance}")
        self.consumer = StreamConsumer(
            self.redis, [k.signals(), k.sessions(), k.fills(), k.control()], GROUP_ORCHESTRATOR, self.instance,
            claim_idle_ms=max(5_000, self.settings.workers.lease_ms),
        )
        await self.consumer.ensure_groups()

    async def run(self) -> None:
        await self._setup()
        logger.info("orchestrator consuming signals as {}", self.instance)
        while not self._stop.is_set():
            try:
                await self.step()
            except (ConnectionError, OSError) as exc:
                logger.warning("Redis trouble ({}); retrying", exc)
                await asyncio.sleep(1.0)

    async def step(self, block_ms: int = 200) -> None:
        """One read of the streams, then maintenance if its interval has passed."""
        if not hasattr(self, "store"):
            await self._setup()
        for entry in await self.consumer.read(count=200, block_ms=block_ms):
            await self.handle(entry)
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._last_maintain >= self.settings.scheduler.poll_interval_seconds:
            self._last_maintain = loop_now
            await self.maintain()
        if loop_now - self._last_beat >= self.settings.monitoring.heartbeat_interval_sec:
            self._last_beat = loop_now
            await beat(self.redis, self.keys, "orchestrator", self.instance,
                       self.settings.monitoring.heartbeat_interval_sec,
                       {"decisions": self.decisions, "skipped": self.consumer.skipped})

    async def handle(self, entry: StreamEntry) -> None:
        pipe = self.redis.pipeline(transaction=True)
        msg = entry.message
        if isinstance(msg, Signal):
            await self._on_signal(pipe, msg, entry.entry_id)
        elif isinstance(msg, SessionReport):
            await self._on_session(pipe, msg, entry.entry_id)
        elif isinstance(msg, Fill):
            await self._on_fill(pipe, msg)
        elif isinstance(msg, ControlRequest):
            await self._on_control(pipe, msg, entry.entry_id)
        else:
            logger.warning("{} on {} is not for the orchestrator; skipped", msg.TYPE, entry.stream)
        pipe.xack(entry.stream, GROUP_ORCHESTRATOR, entry.entry_id)
        await pipe.execute()
        self.decisions += 1

    # --- signals -------------------------------------------------------------------------

    async def _on_signal(self, pipe: Pipe, sig: Signal, cause: str) -> None:
        token, fields = await self.store.view(sig.token_id)
        if sig.side == "SELL":
            verdict = decide_sell(token)
            if verdict.action == "exit":
                await self._exit(pipe, sig.token_id, token.owner, token.epoch, verdict.reason, cause)
            elif verdict.action == "dequeue":
                self.store.transition(pipe, sig.token_id, "done")
                self.store.event(pipe, "token.dequeued", sig.token_id, verdict.reason, cause=cause)
            else:
                self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, side="SELL")
            return
        k = self.keys
        async with self.redis.pipeline(transaction=False) as rp:
            rp.sismember(k.handled(), sig.token_id)
            rp.exists(k.cooldown(sig.token_id))
            rp.get(k.halt())
            rp.hget(k.exposure(), "_total")
            rp.hgetall(k.blacklist())
            handled, cooling, halt, total, runtime_bl = await rp.execute()
        runtime = {}
        for key, raw in (runtime_bl or {}).items():
            try:
                spec = json.loads(raw)
                runtime[key] = (str(spec.get("reason", "")), int(spec.get("expires_at", 0)))
            except (ValueError, AttributeError):
                runtime[key] = (raw, 0)
        reason = blacklist_reason([sig.token_id, sig.condition_id, sig.slug, sig.account],
                                  self.settings.risk.blacklist_token_keys, runtime, now_ms())
        notional = self.settings.maker_strategy.order_size * max(sig.price, 0.01)
        ctx = BuyContext(reason, bool(handled), bool(cooling), halt or "", float(total or 0.0), notional)
        verdict = decide_buy(token, ctx, self.settings.risk)
        detail = {"account": sig.account, "source": sig.source, "signal": sig.id}
        if verdict.action == "queue":
            self.store.transition(pipe, sig.token_id, "queued", source=sig.source,
                                  account=sig.account, slug=sig.slug, condition_id=sig.condition_id,
                                  title=sig.title, outcome=sig.outcome, signal_id=sig.id,
                                  queued_at=now_ms(), epoch=token.epoch)
            self.store.event(pipe, "token.queued", sig.token_id, verdict.reason, cause=cause, **detail)
        elif verdict.action == "reject":
            if not fields:
                self.store.transition(pipe, sig.token_id, "rejected", source=sig.source, slug=sig.slug)
            self.store.event(pipe, "token.rejected", sig.token_id, verdict.reason, level="warning",
                             cause=cause, **detail)
        else:
            self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, **detail)

    async def _exit(self, pipe: Pipe, token_id: str, owner: str, epoch: int, reason: str, cause: str) -> None:
        self.store.transition(pipe, token_id, "exiting", exit_reason=reason)
        self.store.command(pipe, owner, "EXIT", token_id, epoch, reason=reason)
        self.store.event(pipe, "token.exiting", token_id, reason, cause=cause, owner=owner, epoch=epoch)

    # --- worker reports and fills ----------------------------------------------------------

    async def _on_session(self, pipe: Pipe, rep: SessionReport, cause: str) -> None:
        token, _ = await self.store.view(rep.token_id)
        if rep.epoch != token.epoch or rep.worker != token.owner:
            self.store.event(pipe, "session.stale_report", rep.token_id, f"{rep.status} from {rep.worker} "
                             f"epoch {rep.epoch}; owner is {token.owner} epoch {token.epoch}", cause=cause)
            return
        if rep.status == "started" and token.state == "starting":
            self.store.transition(pipe, rep.token_id, "running")
            self.store.event(pipe, "token.running", rep.token_id, f"on {rep.worker}", cause=cause)
        elif rep.status == "closed":
            self.store.transition(pipe, rep.token_id, "done", owner="", position=f"{rep.position:.6f}")
            pipe.sadd(self.keys.handled(), rep.token_id)
            cooldown = self.settings.cooldown.cooldown_sec_per_token
            if cooldown > 0:
                pipe.set(self.keys.cooldown(rep.token_id), "1", ex=max(1, int(cooldown)))
            self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
            self.store.event(pipe, "token.closed", rep.token_id, rep.reason or "session ended", cause=cause,
                             position=rep.position, realized_pnl=rep.realized_pnl)
        elif rep.status == "handed_back":
            await self._reassign(pipe, rep.token_id, token.state, rep.worker, f"handed back: {rep.reason}", cause)
        elif rep.status == "failed":
            self.store.transition(pipe, rep.token_id, "error", owner="")
            self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
            self.store.event(pipe, "token.error", rep.token_id, rep.reason, level="error", cause=cause)

    async def _on_fill(self, pipe: Pipe, fill: Fill) -> None:
        _, fields = await self.store.view(fill.token_id)
        updated, exposure_delta = apply_fill(fields, fill.side, fill.price, fill.size, fill.fee)
        pipe.hset(self.keys.token(fill.token_id), mapping=updated)
        pipe.hset(self.keys.exposure(), fill.token_id, updated["exposure"])
        pipe.hincrbyfloat(self.keys.exposure(), "_total", exposure_delta)

    async def _on_control(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        k = self.keys
        if req.action == "stop_token":
            token, _ = await self.store.view(req.target)
            if token.state in ("starting", "running"):
                await self._exit(pipe, req.target, token.owner, token.epoch, req.reason or "stopped by operator", cause)
            elif token.state == "queued":
                self.store.transition(pipe, req.target, "done")
        elif req.action == "halt":
            pipe.set(k.halt(), "reduce_only" if req.target == "reduce_only" else "halt")
        elif req.action == "resume":
            pipe.delete(k.halt())
        elif req.action == "handled_reset":
            if req.target:
                pipe.srem(k.handled(), req.target)
            else:
                pipe.delete(k.handled())
        elif req.action == "blacklist_add":
            pipe.hset(k.blacklist(), req.target, json.dumps({"reason": req.reason, "expires_at": req.expires_at}))
        elif req.action == "blacklist_remove":
            pipe.hdel(k.blacklist(), req.target)
        elif req.action == "drain_worker":
            pipe.hset(k.worker(req.target), "draining", "1")
        self.store.event(pipe, f"control.{req.action}", req.target if req.action == "stop_token" else "",
                         req.reason, cause=cause, target=req.target, force=req.force)

    # --- maintenance: leases, reassignment, scheduling ------------------------------------

    async def workers(self) -> tuple[list[WorkerView], dict[str, tuple[str, str, int]]]:
        """Worker views (with load) and the active tokens: token -> (state, owner, epoch).

        Two pipelined round trips whatever the fleet size: members, then every hash and lease.
        """
        k = self.keys
        async with self.redis.pipeline(transaction=False) as p:
            for state in ACTIVE:
                p.smembers(k.tokens_in_state(state))
            p.smembers(k.workers())
            *members, worker_ids = await p.execute()
        pairs = [(state, tid) for state, ids in zip(ACTIVE, members, strict=True) for tid in ids]
        wids = sorted(worker_ids)
        async with self.redis.pipeline(transaction=False) as p:
            for _, tid in pairs:
                p.hmget(k.token(tid), ["owner", "epoch"])
            for wid in wids:
                p.hgetall(k.worker(wid))
                p.exists(k.worker_lease(wid))
            replies = await p.execute()
        active: dict[str, tuple[str, str, int]] = {}
        for (state, tid), (owner, epoch) in zip(pairs, replies[:len(pairs)], strict=True):
            active[tid] = (state, owner or "", int(epoch or 0))
        load: dict[str, int] = {}
        for _, owner, _ in active.values():
            load[owner] = load.get(owner, 0) + 1
        views = []
        worker_replies = replies[len(pairs):]
        for i, wid in enumerate(wids):
            h: dict[str, Any] = worker_replies[2 * i]
            views.append(WorkerView(wid, bool(worker_replies[2 * i + 1]), int(h.get("capacity", 0) or 0),
                                    load.get(wid, 0), h.get("draining") == "1"))
        return views, active

    async def maintain(self) -> None:
        views, active = await self.workers()
        alive = {w.worker_id for w in views if w.alive}
        for token_id, (state, owner, _) in active.items():
            if owner not in alive:
                pipe = self.redis.pipeline(transaction=True)
                taker = await self._reassign(pipe, token_id, state, owner, f"worker {owner or '?'} lease expired",
                                             "", views)
                await pipe.execute()
                views = _with_one_more(views, taker)
        queued = []
        for token_id in await self.redis.smembers(self.keys.tokens_in_state("queued")):  # type: ignore[misc]
            queued.append((token_id, int(await self.redis.hget(self.keys.token(token_id), "queued_at") or 0)))  # type: ignore[misc]
        starting_running = sum(1 for s, _, _ in active.values() if s in ("starting", "running"))
        sched = self.settings.scheduler
        for token_id in tokens_to_start(queued, starting_running, sched.max_concurrent_jobs,
                                        self._last_start_ms, now_ms(), sched.topic_start_cooldown_sec):
            worker = pick_worker(views)
            if worker is None:
                logger.debug("no live worker with room; {} stays queued", token_id)
                return
            await self._start(token_id, worker)
            views = _with_one_more(views, worker)

    async def _start(self, token_id: str, worker: str) -> None:
        _, fields = await self.store.view(token_id)
        params = merge_strategy_params(self.settings, token_id, fields.get("slug", ""))
        epoch = int(await self.redis.hincrby(self.keys.token(token_id), "epoch", 1))  # type: ignore[misc]
        pipe = self.redis.pipeline(transaction=True)
        self.store.transition(pipe, token_id, "starting", owner=worker, epoch=epoch,
                              started_at=now_ms(), params=json.dumps(params, sort_keys=True))
        self.store.want(pipe, token_id, True, REQUESTER_ORCHESTRATOR)
        self.store.command(pipe, worker, "START", token_id, epoch, params)
        self.store.event(pipe, "token.starting", token_id, f"assigned to {worker}", owner=worker, epoch=epoch)
        await pipe.execute()
        self._last_start_ms = now_ms()

    async def _reassign(self, pipe: Pipe, token_id: str, state: str, old_owner: str, reason: str, cause: str,
                        views: list[WorkerView] | None = None) -> str | None:
        """Move an active token to another live worker under a new epoch (the old one is fenced).
        Returns the worker that takes it, or None when no live worker can."""
        if views is None:
            views, _ = await self.workers()
        worker = pick_worker(views, exclude=frozenset({old_owner}))
        if worker is None:
            self.store.event(pipe, "token.orphaned", token_id, f"{reason}; no live worker to take it",
                             level="warning", cause=cause)
            return None
        _, fields = await self.store.view(token_id)
        epoch = int(fields.get("epoch", "0") or 0) + 1
        params = json.loads(fields.get("params") or "{}")
        new_state = "exiting" if state == "exiting" else "starting"
        self.store.transition(pipe, token_id, new_state, owner=worker, epoch=epoch)
        self.store.command(pipe, worker, "START", token_id, epoch, params, reason=reason)
        if new_state == "exiting":
            self.store.command(pipe, worker, "EXIT", token_id, epoch, reason=fields.get("exit_reason", reason))
        self.store.event(pipe, "token.reassigned", token_id, reason, level="warning", cause=cause,
                         old_owner=old_owner, owner=worker, epoch=epoch)
        return worker


def _with_one_more(views: list[WorkerView], worker_id: str | None) -> list[WorkerView]:
    """The views after ``worker_id`` took one more token (no rescan of Redis needed)."""
    return [replace(w, load=w.load + 1) if w.worker_id == worker_id else w for w in views]
