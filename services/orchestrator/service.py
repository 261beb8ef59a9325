"""The orchestrator: signals in, sessions out.

Reads ``pf:signals``, ``pf:sessions``, ``pf:fills`` and ``pf:control`` with the ``orchestrator``
consumer group; each entry's decision and effects commit in one MULTI with its XACK (see
store.py). Between reads, ``maintain()`` checks worker leases (reassigning the tokens of dead
workers under a new epoch), moves drained workers' tokens, runs queued exits and starts queued
tokens as slots free up. Only the instance holding the leader lease does any of this.

The rules themselves live in pure modules (decisions, scheduling, assignment, positions, risk's
planned_notional); this class reads what they need and writes what they decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator.assignment import WorkerView, pick_worker
from services.orchestrator.decisions import (
    BuyContext,
    TokenView,
    blacklist_reason,
    decide_buy,
    decide_sell,
    reservation_refused,
)
from services.orchestrator.leader import LeaderLease
from services.orchestrator.positions import apply_fill
from services.orchestrator.risk import RiskBook, planned_notional
from services.orchestrator.scheduling import exits_to_run, tokens_to_start
from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.config import ConfigError, Settings, merge_strategy_params
from shared.config_reload import ConfigReloader
from shared.keys import GROUP_ORCHESTRATOR, REQUESTER_ORCHESTRATOR
from shared.messages import ControlRequest, Fill, SessionReport, Signal
from shared.redisio import StreamConsumer, StreamEntry
from shared.redisio.health import beat
from shared.service import RedisService

ACTIVE = ("starting", "running", "exiting")
DUST = 0.01  # shares below this are not a position (two-decimal sizes)
SEEN_RETENTION_MS = 24 * 3600 * 1000  # how long applied signal/fill ids are remembered
SELL_EXIT_REASON = "followed wallet sold"


def utc_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


class OrchestratorService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None,
                 reloader: ConfigReloader | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.reloader = reloader
        self._last_start_ms = 0
        self._last_maintain = 0.0
        self._last_beat = 0.0
        self.decisions = 0
        self.duplicates = 0
        self._ready = False

    @property
    def leader_ttl_ms(self) -> int:
        return max(3000, int(3 * self.settings.scheduler.poll_interval_seconds * 1000))

    async def _setup(self) -> None:
        await self.connect_redis()
        k = self.keys
        self.store = TokenStore(self.redis, k, f"orchestrator:{self.instance}")
        self.risk = RiskBook(self.redis, k)
        self.lease = LeaderLease(self.redis, k.orchestrator_leader(), self.instance, self.leader_ttl_ms)
        # Only the leader consumes, so an entry idle for a lease period was left by a dead leader.
        # Within one read, control and worker reports come before signals: a halt or a freed slot
        # takes effect before the signals that arrived with it are decided.
        self.consumer = StreamConsumer(
            self.redis, [k.control(), k.sessions(), k.fills(), k.signals()], GROUP_ORCHESTRATOR, self.instance,
            claim_idle_ms=self.leader_ttl_ms,
        )
        await self.consumer.ensure_groups()
        if self.reloader is None:
            self.reloader = ConfigReloader(self.settings)
        self._ready = True

    async def run(self) -> None:
        await self._setup()
        logger.info("orchestrator {} up; waiting for the leader lease", self.instance)
        try:
            while not self._stop.is_set():
                try:
                    await self.step()
                except (ConnectionError, OSError) as exc:
                    logger.warning("Redis trouble ({}); retrying", exc)
                    await self.sleep_unless_stopped(1.0)
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                await self.lease.release()
            await self.close_redis()

    async def step(self, block_ms: int = 200) -> None:
        """Reload config if due, hold the lease, read the streams, maintain when its interval passed."""
        if not self._ready:
            await self._setup()
        loop_now = asyncio.get_running_loop().time()
        await self._maybe_reload(loop_now)
        leading, became = await self.lease.renew()
        if became:
            logger.info("orchestrator {} is the leader", self.instance)
        if not leading:
            await self.sleep_unless_stopped(self.settings.scheduler.poll_interval_seconds)
            return
        for entry in await self.consumer.read(count=200, block_ms=block_ms):
            await self.handle(entry)
        if loop_now - self._last_maintain >= self.settings.scheduler.poll_interval_seconds:
            self._last_maintain = loop_now
            await self.maintain()
        if loop_now - self._last_beat >= self.settings.monitoring.heartbeat_interval_sec:
            self._last_beat = loop_now
            await beat(self.redis, self.keys, "orchestrator", self.instance,
                       self.settings.monitoring.heartbeat_interval_sec,
                       {"decisions": self.decisions, "duplicates": self.duplicates,
                        "skipped": self.consumer.skipped, "leader": True})

    # --- config reload (C9) ----------------------------------------------------------------

    async def _maybe_reload(self, loop_now: float) -> None:
        if self.reloader is None or not self.reloader.due(loop_now):
            return
        result = self.reloader.poll()
        if not result.changed and not result.error:
            return
        pipe = self.redis.pipeline(transaction=True)
        if result.error:
            logger.error("config reload refused; the last good config stays in force: {}", result.error)
            self.store.event(pipe, "config.invalid", reason=result.error, level="error", path=str(self.reloader.path))
        else:
            assert result.settings is not None
            self.settings = result.settings
            logger.info("config reloaded: {} changed", ", ".join(result.changed_sections) or "nothing")
            self.store.event(pipe, "config.reloaded", reason="changed: " + (", ".join(result.changed_sections) or "-"),
                             path=str(self.reloader.path), sections=list(result.changed_sections))
        await pipe.execute()

    # --- one stream entry ------------------------------------------------------------------

    async def handle(self, entry: StreamEntry) -> None:
        pipe = self.redis.pipeline(transaction=True)
        msg = entry.message
        seen_kind = "signals" if isinstance(msg, Signal) else "fills" if isinstance(msg, Fill) else ""
        if seen_kind and await self.redis.zscore(self.keys.seen(seen_kind), msg.id) is not None:
            # The same signal or fill twice (a producer retried its XADD): applied once already.
            self.duplicates += 1
            logger.debug("{} {} already applied; acked", seen_kind, msg.id)
        else:
            if isinstance(msg, Signal):
                await self._on_signal(pipe, msg, entry.entry_id)
            elif isinstance(msg, SessionReport):
                await self._on_session(pipe, msg, entry.entry_id)
            elif isinstance(msg, Fill):
                await self._on_fill(pipe, msg, entry.entry_id)
            elif isinstance(msg, ControlRequest):
                await self._on_control(pipe, msg, entry.entry_id)
            else:
                logger.warning("{} on {} is not for the orchestrator; skipped", msg.TYPE, entry.stream)
            if seen_kind:
                pipe.zadd(self.keys.seen(seen_kind), {msg.id: now_ms()})
        pipe.xack(entry.stream, GROUP_ORCHESTRATOR, entry.entry_id)
        await pipe.execute()
        self.decisions += 1

    # --- signals (C1-C6, C10) --------------------------------------------------------------

    async def _on_signal(self, pipe: Pipe, sig: Signal, cause: str) -> None:
        token, fields = await self.store.view(sig.token_id)
        if sig.side == "SELL":
            await self._on_sell(pipe, sig, token.state, token.owner, token.epoch, cause)
            return
        k, now = self.keys, now_ms()
        async with self.redis.pipeline(transaction=False) as rp:
            rp.sismember(k.handled(), sig.token_id)
            rp.exists(k.cooldown(sig.token_id))
            rp.get(k.halt())
            rp.hgetall(k.blacklist())
            rp.zscore(k.ignored(), sig.token_id)
            rp.hget(k.ignored_why(), sig.token_id)
            rp.hget(k.pnl_daily(), utc_day(now))
            handled, cooling, halt, runtime_bl, ignored_until, ignored_why, daily = await rp.execute()
        ignored = None
        if ignored_until is not None and float(ignored_until) > now:
            ignored = ignored_why or "on the ignored list"
        reason = blacklist_reason([sig.token_id, sig.condition_id, sig.slug, sig.account], [sig.title, sig.slug],
                                  self.settings.risk.blacklist_token_keys, _runtime_blacklist(runtime_bl), now)
        ctx = BuyContext(reason, bool(handled), bool(cooling), halt or "", ignored, float(daily or 0.0))
        verdict = decide_buy(token, ctx, self.settings.risk)
        detail = {"account": sig.account, "source": sig.source, "signal": sig.id}
        if verdict.action == "queue":
            try:
                params = merge_strategy_params(self.settings, sig.token_id, sig.slug)
            except ConfigError as exc:
                self._reject(pipe, sig, bool(fields), f"bad strategy parameters: {exc}", cause, detail)
                return
            amount = planned_notional(params)
            risk = self.settings.risk
            res = await self.risk.reserve(sig.token_id, amount, risk.max_notional_per_token, risk.max_notional_total)
            if not res.ok:
                self._reject(pipe, sig, bool(fields), reservation_refused(res.refused_by, amount, res.committed, risk),
                             cause, detail)
                return
            self.store.transition(pipe, sig.token_id, "queued", source=sig.source,
                                  account=sig.account, slug=sig.slug, condition_id=sig.condition_id,
                                  title=sig.title, outcome=sig.outcome, signal_id=sig.id,
                                  signal_ts=sig.ts_event or now, queued_at=now, epoch=token.epoch,
                                  reserved=f"{amount:.6f}", params=json.dumps(params, sort_keys=True),
                                  exit_pending="0", exit_reason="")
            self.store.event(pipe, "token.queued", sig.token_id, verdict.reason, cause=cause,
                             reserved=amount, committed=res.committed, **detail)
        elif verdict.action == "reject":
            self._reject(pipe, sig, bool(fields), verdict.reason, cause, detail)
        else:
            self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, **detail)

    def _reject(self, pipe: Pipe, sig: Signal, known: bool, reason: str, cause: str, detail: dict[str, Any]) -> None:
        if not known:
            self.store.transition(pipe, sig.token_id, "rejected", source=sig.source, slug=sig.slug, title=sig.title)
        self.store.event(pipe, "token.rejected", sig.token_id, reason, level="warning", cause=cause, **detail)

    async def _on_sell(self, pipe: Pipe, sig: Signal, state: str, owner: str, epoch: int, cause: str) -> None:
        verdict = decide_sell(TokenView(sig.token_id, state, owner, epoch))
        if verdict.action == "exit":
            await self._request_exit(pipe, sig.token_id, state, owner, epoch, verdict.reason, cause)
        elif verdict.action == "dequeue":
            self.store.transition(pipe, sig.token_id, "done", owner="")
            await self.risk.release(pipe, sig.token_id)
            self.store.event(pipe, "token.dequeued", sig.token_id, verdict.reason, cause=cause)
        else:
            self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, side="SELL")

    async def _request_exit(self, pipe: Pipe, token_id: str, state: str, owner: str, epoch: int, reason: str,
                            cause: str) -> None:
        """Exit now if an exit slot is free (C5), else queue the exit; the session keeps running meanwhile."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as rp:
            rp.scard(k.tokens_in_state("exiting"))
            rp.zscore(k.exits_queued(), token_id)
            exiting, already = await rp.execute()
        if already is not None:
            self.store.event(pipe, "signal.ignored", token_id, "exit already queued", cause=cause)
            return
        if int(exiting) < self.settings.scheduler.max_concurrent_exit_jobs:
            self._exit(pipe, token_id, owner, epoch, reason, cause)
            return
        pipe.zadd(k.exits_queued(), {token_id: now_ms()}, nx=True)
        pipe.hset(k.token(token_id), mapping={"exit_reason": reason, "exit_pending": "1"})
        self.store.event(pipe, "token.exit_queued", token_id,
                         f"{reason}; {exiting} exit(s) running = scheduler.max_concurrent_exit_jobs", cause=cause)

    def _exit(self, pipe: Pipe, token_id: str, owner: str, epoch: int, reason: str, cause: str) -> None:
        self.store.transition(pipe, token_id, "exiting", exit_reason=reason, exit_pending="0")
        pipe.zrem(self.keys.exits_queued(), token_id)
        self.store.command(pipe, owner, "EXIT", token_id, epoch, reason=reason)
        self.store.event(pipe, "token.exiting", token_id, reason, cause=cause, owner=owner, epoch=epoch)

    # --- worker reports and fills ----------------------------------------------------------

    async def _on_session(self, pipe: Pipe, rep: SessionReport, cause: str) -> None:
        token, fields = await self.store.view(rep.token_id)
        if rep.epoch != token.epoch or rep.worker != token.owner:
            self.store.event(pipe, "session.stale_report", rep.token_id, f"{rep.status} from {rep.worker} "
                             f"epoch {rep.epoch}; owner is {token.owner or '-'} epoch {token.epoch}", cause=cause)
            return
        if rep.status == "started" and token.state == "starting":
            self.store.transition(pipe, rep.token_id, "running")
            self.store.event(pipe, "token.running", rep.token_id, f"on {rep.worker}", cause=cause)
        elif rep.status == "closed":
            await self._closed(pipe, rep, fields.get("exit_reason", ""), cause)
        elif rep.status == "handed_back":
            await self._reassign(pipe, rep.token_id, token.state, rep.worker, f"handed back: {rep.reason}", cause)
        elif rep.status == "failed":
            self.store.transition(pipe, rep.token_id, "error", owner="")
            await self.risk.release(pipe, rep.token_id)
            pipe.zrem(self.keys.exits_queued(), rep.token_id)
            self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
            self.store.ignore(pipe, rep.token_id, f"session failed: {rep.reason}", self.settings.cooldown.orphan_ignore_sec)
            self.store.event(pipe, "token.error", rep.token_id, rep.reason, level="error", cause=cause)

    async def _closed(self, pipe: Pipe, rep: SessionReport, exit_reason: str, cause: str) -> None:
        k, cd = self.keys, self.settings.cooldown
        self.store.transition(pipe, rep.token_id, "done", owner="", position=f"{rep.position:.6f}")
        pipe.sadd(k.handled(), rep.token_id)
        pipe.zrem(k.exits_queued(), rep.token_id)
        await self.risk.release(pipe, rep.token_id)
        # exit_ignore_cooldown false: a token the followed wallet sold may be re-bought at once.
        sold_out = exit_reason == SELL_EXIT_REASON
        if cd.cooldown_sec_per_token > 0 and (cd.exit_ignore_cooldown or not sold_out):
            pipe.set(k.cooldown(rep.token_id), "1", px=max(1, int(cd.cooldown_sec_per_token * 1000)))
        if rep.position >= DUST:
            self.store.ignore(pipe, rep.token_id, f"exit incomplete: {rep.position:.2f} shares left",
                              cd.orphan_ignore_sec)
        self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
        self.store.event(pipe, "token.closed", rep.token_id, rep.reason or "session ended", cause=cause,
                         position=rep.position, realized_pnl=rep.realized_pnl)

    async def _on_fill(self, pipe: Pipe, fill: Fill, cause: str) -> None:
        _, fields = await self.store.view(fill.token_id)
        updated, _ = apply_fill(fields, fill.side, fill.price, fill.size, fill.fee)
        pipe.hset(self.keys.token(fill.token_id), mapping=updated)
        await self.risk.set_exposure(pipe, fill.token_id, float(updated["exposure"]))
        realized_delta = float(updated["realized_pnl"]) - float(fields.get("realized_pnl", 0) or 0)
        risk = self.settings.risk
        if realized_delta:
            day = utc_day(fill.ts_event or now_ms())
            before = float(await self.redis.hget(self.keys.pnl_daily(), day) or 0.0)
            pipe.hincrbyfloat(self.keys.pnl_daily(), day, realized_delta)
            after = before + realized_delta
            if -after >= risk.max_daily_loss > -before:
                # Crossing the daily loss limit: no new sessions (decide_buy refuses them) and no new risk.
                pipe.set(self.keys.halt(), "reduce_only", nx=True)
                self.store.event(pipe, "risk.daily_loss_limit", fill.token_id,
                                 f"realised {after:.2f} today reached -{risk.max_daily_loss:.2f}: kill switch "
                                 "set to reduce_only (resume with `polyfleet resume`)", level="error", cause=cause)
        if float(updated["position"]) < -DUST and not risk.allow_short:
            self.store.event(pipe, "risk.short_position", fill.token_id,
                             f"position {updated['position']} after a {fill.side} fill while risk.allow_short is "
                             "false", level="error", cause=cause, worker=fill.worker)

    # --- operator control ------------------------------------------------------------------

    async def _on_control(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        k = self.keys
        target_token = ""
        if req.action == "stop_token":
            target_token = req.target
            await self._stop_token(pipe, req, cause)
        elif req.action == "halt":
            mode = "reduce_only" if req.target == "reduce_only" else "halt"
            pipe.set(k.halt(), mode)
            if mode == "halt":
                await self._halt_all(pipe, req.reason or "halted by operator", cause)
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
            await self._drain(pipe, req.target, cause)
        elif req.action == "undrain_worker":
            pipe.hset(k.worker(req.target), "draining", "0")
        elif req.action == "unignore":
            self.store.unignore(pipe, req.target)
        self.store.event(pipe, f"control.{req.action}", target_token, req.reason, cause=cause,
                         target=req.target, force=req.force, requested_by=req.producer)

    async def _stop_token(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        token, _ = await self.store.view(req.target)
        reason = req.reason or "stopped by operator"
        if token.state in ("starting", "running", "exiting") and req.force:
            # Force: cancel orders, keep the position. Clearing the owner fences the session at once.
            self.store.command(pipe, token.owner, "STOP", req.target, token.epoch, reason=reason)
            self.store.transition(pipe, req.target, "done", owner="", exit_reason=reason)
            pipe.zrem(self.keys.exits_queued(), req.target)
            pipe.sadd(self.keys.handled(), req.target)
            await self.risk.release(pipe, req.target)
            self.store.want(pipe, req.target, False, REQUESTER_ORCHESTRATOR)
            self.store.event(pipe, "token.stopped", req.target, f"{reason} (forced: orders cancelled, position kept)",
                             level="warning", cause=cause, owner=token.owner, epoch=token.epoch)
        elif token.state in ("starting", "running"):
            await self._request_exit(pipe, req.target, token.state, token.owner, token.epoch, reason, cause)
        elif token.state == "queued":
            self.store.transition(pipe, req.target, "done", owner="")
            await self.risk.release(pipe, req.target)
            self.store.event(pipe, "token.dequeued", req.target, reason, cause=cause)

    async def _halt_all(self, pipe: Pipe, reason: str, cause: str) -> None:
        """``halt``: stop every session now (orders cancelled, positions kept) and queue the tokens
        again, so ``resume`` restarts them where they were (an exiting token resumes its exit)."""
        _, active = await self.workers()
        for token_id, (state, owner, epoch) in active.items():
            if owner:
                self.store.command(pipe, owner, "STOP", token_id, epoch, reason=reason)
            self.store.transition(pipe, token_id, "queued", owner="",
                                  exit_pending="1" if state == "exiting" else "0")
            self.store.event(pipe, "token.halted", token_id, reason, level="warning", cause=cause,
                             owner=owner, epoch=epoch, was=state)

    async def _drain(self, pipe: Pipe, worker_id: str, cause: str) -> None:
        """Ask a worker to hand back each of its tokens; the handed_back reports move them (see
        maintain for the ones it does not hand back in time)."""
        _, active = await self.workers()
        for token_id, (_, owner, epoch) in active.items():
            if owner == worker_id:
                self.store.command(pipe, owner, "STOP", token_id, epoch, {"hand_back": True}, reason="worker draining")
                pipe.hset(self.keys.token(token_id), "handback_requested_at", now_ms())
                self.store.event(pipe, "token.handback_requested", token_id, f"worker {worker_id} draining",
                                 cause=cause, owner=owner, epoch=epoch)

    # --- maintenance: leases, reassignment, exits, scheduling -------------------------------

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
        draining = {w.worker_id for w in views if w.draining}
        for token_id, (state, owner, _) in active.items():
            if owner not in alive:
                reason = f"worker {owner or '?'} lease expired"
            elif owner in draining and await self._handback_overdue(token_id):
                reason = f"worker {owner} draining; no hand-back within the lease"
            else:
                continue
            pipe = self.redis.pipeline(transaction=True)
            taker = await self._reassign(pipe, token_id, state, owner, reason, "", views)
            await pipe.execute()
            views = _with_one_more(views, taker)
        await self._expire()
        await self._run_queued_exits(active)
        if await self.redis.get(self.keys.halt()):
            return  # halt and reduce_only: nothing new starts
        await self._start_queued(views, active)

    async def _handback_overdue(self, token_id: str) -> bool:
        asked = int(await self.redis.hget(self.keys.token(token_id), "handback_requested_at") or 0)
        return asked > 0 and now_ms() - asked > self.settings.workers.lease_ms

    async def _expire(self) -> None:
        """Drop expired ignored entries and forget applied ids past their retention."""
        k, now = self.keys, now_ms()
        expired = await self.redis.zrangebyscore(k.ignored(), "-inf", now)
        async with self.redis.pipeline(transaction=True) as p:
            if expired:
                p.zrem(k.ignored(), *expired)
                p.hdel(k.ignored_why(), *expired)
            for kind in ("signals", "fills"):
                p.zremrangebyscore(k.seen(kind), "-inf", now - SEEN_RETENTION_MS)
            await p.execute()

    async def _run_queued_exits(self, active: dict[str, tuple[str, str, int]]) -> None:
        k = self.keys
        waiting = await self.redis.zrange(k.exits_queued(), 0, -1, withscores=True)
        if not waiting:
            return
        exiting = sum(1 for s, _, _ in active.values() if s == "exiting")
        runnable = [(t, int(ts)) for t, ts in waiting if active.get(t, ("", "", 0))[0] in ("starting", "running")]
        stale = [t for t, _ in waiting if t not in {r for r, _ in runnable}]
        pipe = self.redis.pipeline(transaction=True)
        if stale:  # the token ended or was re-queued meanwhile: its queued exit is moot
            pipe.zrem(k.exits_queued(), *stale)
        for token_id in exits_to_run(runnable, exiting, self.settings.scheduler.max_concurrent_exit_jobs):
            _, owner, epoch = active[token_id]
            reason = await self.redis.hget(k.token(token_id), "exit_reason") or SELL_EXIT_REASON
            self._exit(pipe, token_id, owner, epoch, reason, "")
        await pipe.execute()

    async def _start_queued(self, views: list[WorkerView], active: dict[str, tuple[str, str, int]]) -> None:
        k = self.keys
        queued_ids = sorted(await self.redis.smembers(k.tokens_in_state("queued")))
        if not queued_ids:
            return
        async with self.redis.pipeline(transaction=False) as p:
            for token_id in queued_ids:
                p.hget(k.token(token_id), "signal_ts")
            times = await p.execute()
        queued = [(t, int(ts or 0)) for t, ts in zip(queued_ids, times, strict=True)]
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
        params = json.loads(fields["params"]) if fields.get("params") else \
            merge_strategy_params(self.settings, token_id, fields.get("slug", ""))
        epoch = int(await self.redis.hincrby(self.keys.token(token_id), "epoch", 1))  # type: ignore[misc]
        resume_exit = fields.get("exit_pending") == "1"
        pipe = self.redis.pipeline(transaction=True)
        self.store.transition(pipe, token_id, "exiting" if resume_exit else "starting", owner=worker, epoch=epoch,
                              started_at=now_ms(), params=json.dumps(params, sort_keys=True), exit_pending="0",
                              handback_requested_at=0)
        self.store.want(pipe, token_id, True, REQUESTER_ORCHESTRATOR)
        self.store.command(pipe, worker, "START", token_id, epoch, params)
        if resume_exit:
            self.store.command(pipe, worker, "EXIT", token_id, epoch, reason=fields.get("exit_reason") or "resumed exit")
        self.store.event(pipe, "token.starting", token_id, f"assigned to {worker}", owner=worker, epoch=epoch,
                         resumes_exit=resume_exit or None)
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
        self.store.transition(pipe, token_id, new_state, owner=worker, epoch=epoch, handback_requested_at=0)
        self.store.command(pipe, worker, "START", token_id, epoch, params, reason=reason)
        if new_state == "exiting":
            self.store.command(pipe, worker, "EXIT", token_id, epoch, reason=fields.get("exit_reason", reason))
        self.store.event(pipe, "token.reassigned", token_id, reason, level="warning", cause=cause,
                         old_owner=old_owner, owner=worker, epoch=epoch)
        return worker


def _runtime_blacklist(raw: dict[str, str] | None) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for key, value in (raw or {}).items():
        try:
            spec = json.loads(value)
            out[key] = (str(spec.get("reason", "")), int(spec.get("expires_at", 0) or 0))
        except (ValueError, AttributeError, TypeError):
            out[key] = (value, 0)
    return out


def _with_one_more(views: list[WorkerView], worker_id: str | None) -> list[WorkerView]:
    """The views after ``worker_id`` took one more token (no rescan of Redis needed)."""
    return [replace(w, load=w.load + 1) if w.worker_id == worker_id else w for w in views]
