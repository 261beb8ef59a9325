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
from redis.exceptions import WatchError

from services.orchestrator import metrics
from services.orchestrator.assignment import WorkerView, pick_taker, pick_worker
from services.orchestrator.decisions import (
    BuyContext,
    TokenView,
    blacklist_reason,
    decide_buy,
    decide_sell,
    market_end_ms,
    reservation_refused,
)
from services.orchestrator.leader import LeaderLease
from services.orchestrator.positions import apply_fill
from services.orchestrator.risk import planned_notional
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.scheduling import exits_to_run, tokens_to_start
from services.orchestrator.store import IndexBatch, Pipe, TokenStore, last_event
from shared.clock import now_ms
from shared.config import ConfigError, Settings, merge_strategy_params
from shared.config_reload import ConfigReloader
from shared.keys import GROUP_ORCHESTRATOR, REQUESTER_ORCHESTRATOR
from shared.messages import ControlRequest, Fill, SessionReport, Signal, decode
from shared.redisio import StreamConsumer, StreamEntry
from shared.redisio.client import TRANSIENT_REDIS_ERRORS
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
        self._dead_reported: set[str] = set()  # workers whose death was announced (worker.dead), until alive again
        self._ready = False
        self._schedule_due = False

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
                except (ConnectionError, *TRANSIENT_REDIS_ERRORS) as exc:
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
        metrics.LEADER.set(1 if leading else 0)
        if became:
            logger.info("orchestrator {} is the leader", self.instance)
        if not leading:
            await self.sleep_unless_stopped(self.settings.scheduler.poll_interval_seconds)
            return
        entries = await self.consumer.read(count=500, block_ms=block_ms)
        if entries:
            await self.handle_batch(entries)
        if loop_now - self._last_maintain >= self.settings.scheduler.poll_interval_seconds:
            self._last_maintain = loop_now
            await self.maintain()
        elif self._schedule_due:
            await self.schedule()  # a slot or a queued token appeared: start now, not at the next poll
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

    async def handle_batch(self, entries: list[StreamEntry]) -> None:
        """Decide a read's entries in order. Runs of BUY signals for distinct tokens are decided
        together (one read of their context, one reservation call, one MULTI with their acks); any
        other entry, or a second BUY for a token already in the run, closes the run first."""
        run: list[StreamEntry] = []
        for entry in entries:
            msg = entry.message
            is_buy = isinstance(msg, Signal) and msg.side == "BUY"
            if run and (not is_buy or msg.token_id in {e.message.token_id for e in run}):  # type: ignore[attr-defined]
                await self._decide_buys(run)
                run = []
            if is_buy:
                run.append(entry)
            else:
                await self.handle(entry)
        if run:
            await self._decide_buys(run)

    async def handle(self, entry: StreamEntry) -> None:
        msg = entry.message
        if isinstance(msg, Signal) and msg.side == "BUY":
            await self._decide_buys([entry])
            return
        pipe = self.redis.pipeline(transaction=True)
        applied_kind = "signals" if isinstance(msg, Signal) else "fills" if isinstance(msg, Fill) else ""
        if applied_kind and await self.redis.zscore(self.keys.applied(applied_kind), msg.id) is not None:
            # The same signal or fill twice (a producer retried its XADD): applied once already.
            self.duplicates += 1
            metrics.DUPLICATES.inc()
            logger.debug("{} {} already applied; acked", applied_kind, msg.id)
        else:
            if isinstance(msg, Signal):
                await self._on_sell(pipe, msg, entry.entry_id)
            elif isinstance(msg, SessionReport):
                await self._on_session(pipe, msg, entry.entry_id)
            elif isinstance(msg, Fill):
                await self._on_fill(pipe, msg, entry.entry_id)
            elif isinstance(msg, ControlRequest):
                await self._on_control(pipe, msg, entry.entry_id)
            else:
                logger.warning("{} on {} is not for the orchestrator; skipped", msg.TYPE, entry.stream)
            if applied_kind:
                pipe.zadd(self.keys.applied(applied_kind), {msg.id: now_ms()})
        pipe.xack(entry.stream, GROUP_ORCHESTRATOR, entry.entry_id)
        await pipe.execute()
        self.decisions += 1
        metrics.DECISIONS.inc()
        if not isinstance(msg, Fill):
            self._schedule_due = True

    # --- signals (C1-C6, C10) --------------------------------------------------------------

    async def _decide_buys(self, entries: list[StreamEntry]) -> None:
        """BUY signals for distinct tokens: read every check's input in one round trip, decide each
        (pure), reserve the admitted ones' notional atomically, then commit effects + acks in one MULTI."""
        k, now = self.keys, now_ms()
        sigs: list[Signal] = [e.message for e in entries]  # type: ignore[misc]
        async with self.redis.pipeline(transaction=False) as rp:
            rp.get(k.halt())
            rp.hgetall(k.blacklist())
            rp.hget(k.pnl_daily(), utc_day(now))
            halt, raw_blacklist, raw_daily = await rp.execute()
        runtime_bl, daily = _runtime_blacklist(raw_blacklist), float(raw_daily or 0.0)
        inputs = await self.store.buy_inputs([s.token_id for s in sigs], [s.id for s in sigs])
        ignored_ids = [sig.token_id for sig, inp in zip(sigs, inputs, strict=True)
                       if inp.ignored_until is not None and inp.ignored_until > now]
        why = dict(zip(ignored_ids, await self.redis.hmget(k.ignored_why(), ignored_ids), strict=True)) \
            if ignored_ids else {}
        risk = self.settings.risk
        pipe = self.redis.pipeline(transaction=True)
        admitted: list[tuple[Signal, str, dict[str, str], dict[str, Any], float]] = []
        applied: dict[str, int] = {}
        for entry, sig, inp in zip(entries, sigs, inputs, strict=True):
            if inp.applied or sig.id in applied:
                self.duplicates += 1  # the collector retried its XADD: decided once already
                metrics.DUPLICATES.inc()
                continue
            applied[sig.id] = now
            fields, handled, cooling = inp.fields, inp.handled, inp.cooling_down
            token = TokenView(sig.token_id, fields.get("state", ""), fields.get("owner", ""),
                              int(fields.get("epoch", "0") or 0))
            ignored = (why[sig.token_id] or "on the ignored list") if sig.token_id in why else None
            reason = blacklist_reason([sig.token_id, sig.condition_id, sig.slug, sig.account], [sig.title, sig.slug],
                                      risk.blacklist_token_keys, runtime_bl, now)
            ctx = BuyContext(reason, bool(handled), bool(cooling), halt or "", ignored, daily)
            verdict = decide_buy(token, ctx, risk)
            if verdict.action == "queue":
                try:
                    params = merge_strategy_params(self.settings, sig.token_id, sig.slug)
                except ConfigError as exc:
                    self._reject(pipe, sig, bool(fields), f"bad strategy parameters: {exc}", entry.entry_id)
                    continue
                end_ms = market_end_ms(sig.end_date)
                if end_ms is not None:
                    params["market_end_ts"] = end_ms  # the session's countdown / deadline (D4)
                admitted.append((sig, entry.entry_id, fields, params, planned_notional(params)))
            elif verdict.action == "reject":
                self._reject(pipe, sig, bool(fields), verdict.reason, entry.entry_id)
            else:
                self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=entry.entry_id,
                                 **_detail(sig))
        reservations = await self.risk.reserve_many([(a[0].token_id, a[4]) for a in admitted],
                                                     risk.max_notional_per_token, risk.max_notional_total)
        batch = IndexBatch()
        for (sig, cause, fields, params, amount), res in zip(admitted, reservations, strict=True):
            if not res.ok:
                self._reject(pipe, sig, bool(fields), reservation_refused(res.refused_by, amount, res.committed, risk),
                             cause)
                continue
            self.store.transition(pipe, sig.token_id, "queued", prev_state=fields.get("state", ""),
                                  queue_score=sig.ts_event or now, batch=batch,
                                  last_event=last_event("token.queued", "admitted"), source=sig.source,
                                  account=sig.account, slug=sig.slug, condition_id=sig.condition_id,
                                  title=sig.title, outcome=sig.outcome, signal_id=sig.id,
                                  signal_ts=sig.ts_event or now, queued_at=now, epoch=fields.get("epoch", 0),
                                  reserved=f"{amount:.6f}", params=json.dumps(params, sort_keys=True),
                                  exit_pending="0", exit_reason="")
            self.store.event(pipe, "token.queued", sig.token_id, "admitted", cause=cause, touch_token=False,
                             reserved=amount, committed=res.committed, **_detail(sig))
        batch.flush(pipe)
        if applied:
            pipe.zadd(k.applied("signals"), applied)
        pipe.xack(entries[0].stream, GROUP_ORCHESTRATOR, *(e.entry_id for e in entries))  # one stream: signals
        await pipe.execute()
        self.decisions += len(entries)
        metrics.DECISIONS.inc(len(entries))
        if admitted:
            self._schedule_due = True

    def _reject(self, pipe: Pipe, sig: Signal, known: bool, reason: str, cause: str) -> None:
        if not known:
            self.store.transition(pipe, sig.token_id, "rejected", prev_state="", source=sig.source, slug=sig.slug,
                                  title=sig.title)
        self.store.event(pipe, "token.rejected", sig.token_id, reason, level="warning", cause=cause, **_detail(sig))

    async def _on_sell(self, pipe: Pipe, sig: Signal, cause: str) -> None:
        token, _ = await self.store.view(sig.token_id)
        verdict = decide_sell(token)
        if verdict.action == "exit":
            await self._request_exit(pipe, sig.token_id, token.owner, token.epoch, verdict.reason, cause)
        elif verdict.action == "dequeue":
            self.store.transition(pipe, sig.token_id, "done")
            await self.risk.release(pipe, sig.token_id)
            self.store.event(pipe, "token.dequeued", sig.token_id, verdict.reason, cause=cause)
        else:
            self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, side="SELL")

    async def _request_exit(self, pipe: Pipe, token_id: str, owner: str, epoch: int, reason: str,
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
            applied = int(fields.get(f"fills@{rep.epoch}") or 0)
            if rep.fills > applied:
                # Read before some of its session's fills (the streams are read apart, e.g. catching
                # up after a restart): closing now would set the position, then the late fills would
                # move it again. Park the report; the last fill applies it (or maintain, late).
                pipe.hset(self.keys.closing(), rep.token_id, json.dumps(
                    {"report": rep.encode(), "exit_reason": fields.get("exit_reason", ""), "cause": cause,
                     "since": now_ms()}))
                self.store.event(pipe, "session.close_waiting", rep.token_id, f"closed report of epoch {rep.epoch} "
                                 f"read after {applied} of its {rep.fills} fill(s); waiting for the rest", cause=cause)
            else:
                await self._closed(pipe, rep, fields.get("exit_reason", ""), cause)
        elif rep.status == "handed_back":
            await self._reassign(pipe, rep.token_id, token.state, rep.worker, f"handed back: {rep.reason}", cause,
                                 may_keep=True)
        elif rep.status == "failed":
            self.store.transition(pipe, rep.token_id, "error", owner="", prev_owner=rep.worker)
            await self.risk.release(pipe, rep.token_id)
            pipe.zrem(self.keys.exits_queued(), rep.token_id)
            self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
            self.store.ignore(pipe, rep.token_id, f"session failed: {rep.reason}", self.settings.cooldown.orphan_ignore_sec)
            self.store.event(pipe, "token.error", rep.token_id, rep.reason, level="error", cause=cause)

    async def _apply_parked_close(self, pipe: Pipe, rep: SessionReport, waiting: dict[str, Any], why: str) -> None:
        pipe.hdel(self.keys.closing(), rep.token_id)
        token, _ = await self.store.view(rep.token_id)
        if rep.epoch != token.epoch or rep.worker != token.owner:  # moved on meanwhile: nothing to close
            return
        logger.info("{}: applying the closed report of epoch {} ({})", rep.token_id, rep.epoch, why)
        await self._closed(pipe, rep, str(waiting.get("exit_reason", "")), str(waiting.get("cause", "")))

    async def _apply_overdue_closes(self) -> None:
        """A parked closed report whose fills did not all arrive within a lease (a fill trimmed or
        never written): close from the report anyway, the session's last word on its position."""
        for token_id, raw in (await self.redis.hgetall(self.keys.closing())).items():
            waiting = json.loads(raw)
            if now_ms() - int(waiting.get("since", 0)) < self.settings.workers.lease_ms:
                continue
            rep = decode(waiting["report"])
            if not isinstance(rep, SessionReport):
                await self.redis.hdel(self.keys.closing(), token_id)
                continue
            pipe = self.redis.pipeline(transaction=True)
            self.store.event(pipe, "session.close_overdue", token_id, f"closed report of epoch {rep.epoch} applied "
                             f"without all of its {rep.fills} fill(s)", level="warning")
            await self._apply_parked_close(pipe, rep, waiting, "overdue")
            await pipe.execute()

    async def _closed(self, pipe: Pipe, rep: SessionReport, exit_reason: str, cause: str) -> None:
        k, cd = self.keys, self.settings.cooldown
        self.store.transition(pipe, rep.token_id, "done", owner="", prev_owner=rep.worker,
                              position=f"{rep.position:.6f}")
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
        async with self.redis.pipeline(transaction=False) as reads:  # one round trip per fill
            reads.hgetall(self.keys.token(fill.token_id))
            reads.hget(self.keys.closing(), fill.token_id)
            fields, parked = await reads.execute()
        updated, _ = apply_fill(fields, fill.side, fill.price, fill.size, fill.fee)
        counted = f"fills@{fill.epoch}"
        applied = int(fields.get(counted) or 0) + 1
        updated[counted] = str(applied)
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
        # after the fill's own writes: the close releases the risk the fill just set
        if parked:
            waiting = json.loads(parked)
            rep = decode(waiting["report"])
            if isinstance(rep, SessionReport) and rep.epoch == fill.epoch and applied >= rep.fills:
                await self._apply_parked_close(pipe, rep, waiting, "its last fill arrived")

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
            self.store.transition(pipe, req.target, "done", owner="", prev_owner=token.owner, exit_reason=reason)
            pipe.zrem(self.keys.exits_queued(), req.target)
            pipe.sadd(self.keys.handled(), req.target)
            await self.risk.release(pipe, req.target)
            self.store.want(pipe, req.target, False, REQUESTER_ORCHESTRATOR)
            self.store.event(pipe, "token.stopped", req.target, f"{reason} (forced: orders cancelled, position kept)",
                             level="warning", cause=cause, owner=token.owner, epoch=token.epoch)
        elif token.state in ("starting", "running"):
            await self._request_exit(pipe, req.target, token.owner, token.epoch, reason, cause)
        elif token.state == "queued":
            self.store.transition(pipe, req.target, "done")
            await self.risk.release(pipe, req.target)
            self.store.event(pipe, "token.dequeued", req.target, reason, cause=cause)

    async def _halt_all(self, pipe: Pipe, reason: str, cause: str) -> None:
        """``halt``: stop every session now (orders cancelled, positions kept) and queue the tokens
        again, so ``resume`` restarts them where they were (an exiting token resumes its exit)."""
        for token_id, (state, owner, epoch, fields) in (await self.active_tokens()).items():
            if owner:
                self.store.command(pipe, owner, "STOP", token_id, epoch, reason=reason)
            self.store.transition(pipe, token_id, "queued", owner="", prev_owner=owner,
                                  queue_score=int(fields.get("signal_ts") or 0),
                                  exit_pending="1" if state == "exiting" else "0")
            self.store.event(pipe, "token.halted", token_id, reason, level="warning", cause=cause,
                             owner=owner, epoch=epoch, was=state)

    async def _drain(self, pipe: Pipe, worker_id: str, cause: str) -> None:
        """Ask a worker to hand back each of its tokens; the handed_back reports move them (see
        maintain for the ones it does not hand back in time)."""
        for token_id, (_, owner, epoch, _) in (await self.tokens_of(worker_id)).items():
            self.store.command(pipe, owner, "STOP", token_id, epoch, {"hand_back": True}, reason="worker draining")
            pipe.hset(self.keys.token(token_id), "handback_requested_at", now_ms())
            self.store.event(pipe, "token.handback_requested", token_id, f"worker {worker_id} draining",
                             cause=cause, owner=owner, epoch=epoch)

    # --- fleet and token views -------------------------------------------------------------

    async def workers(self) -> list[WorkerView]:
        """Every registered worker with liveness, capacity and load (its assigned-token count):
        two round trips whatever the number of tokens."""
        k = self.keys
        wids = sorted(await self.redis.smembers(k.workers()))
        async with self.redis.pipeline(transaction=False) as p:
            for wid in wids:
                p.hgetall(k.worker(wid))
                p.exists(k.worker_lease(wid))
                p.scard(k.worker_tokens(wid))
            replies = await p.execute()
        views = []
        for i, wid in enumerate(wids):
            h: dict[str, Any] = replies[3 * i]
            views.append(WorkerView(wid, bool(replies[3 * i + 1]), int(h.get("capacity", 0) or 0),
                                    int(replies[3 * i + 2]), h.get("draining") == "1"))
        return views

    async def _views_of(self, token_ids: list[str]) -> dict[str, tuple[str, str, int, dict[str, str]]]:
        async with self.redis.pipeline(transaction=False) as p:
            for token_id in token_ids:
                p.hgetall(self.keys.token(token_id))
            rows = await p.execute()
        return {t: (h.get("state", ""), h.get("owner", ""), int(h.get("epoch", 0) or 0), h)
                for t, h in zip(token_ids, rows, strict=True)}

    async def tokens_of(self, worker_id: str) -> dict[str, tuple[str, str, int, dict[str, str]]]:
        """The active tokens this worker owns: token -> (state, owner, epoch, fields). Entries of
        the worker's set that the token hash no longer confirms are dropped (self-healing index)."""
        ids = sorted(await self.redis.smembers(self.keys.worker_tokens(worker_id)))
        views = await self._views_of(ids)
        stale = [t for t, (state, owner, _, _) in views.items() if owner != worker_id or state not in ACTIVE]
        if stale:
            await self.redis.srem(self.keys.worker_tokens(worker_id), *stale)
        return {t: v for t, v in views.items() if t not in stale}

    async def active_tokens(self) -> dict[str, tuple[str, str, int, dict[str, str]]]:
        async with self.redis.pipeline(transaction=False) as p:
            for state in ACTIVE:
                p.smembers(self.keys.tokens_in_state(state))
            members = await p.execute()
        return await self._views_of(sorted(set().union(*members)))

    # --- maintenance: leases, reassignment, exits, scheduling -------------------------------

    async def maintain(self) -> None:
        """Every poll interval: move the tokens of dead workers (and of drained workers that did
        not hand back in time), expire ignored entries, then schedule."""
        views = await self.workers()
        dead_holding = set()
        for w in views:
            if w.alive and not w.draining:
                continue
            held = await self.tokens_of(w.worker_id)
            if not w.alive and held:
                dead_holding.add(w.worker_id)
                if w.worker_id not in self._dead_reported:  # once per death, not once per poll
                    pipe = self.redis.pipeline(transaction=True)
                    self.store.event(pipe, "worker.dead", "", f"worker {w.worker_id} lost its lease holding "
                                     f"{len(held)} token(s); moving them", level="error", worker=w.worker_id,
                                     tokens=len(held))
                    await pipe.execute()
            for token_id, (state, _, _, fields) in held.items():
                if not w.alive:
                    reason = f"worker {w.worker_id} lease expired"
                elif _overdue(fields, self.settings.workers.lease_ms):
                    reason = f"worker {w.worker_id} draining; no hand-back within the lease"
                else:
                    continue
                async with self.redis.pipeline(transaction=True) as pipe:
                    if not w.alive and not await self._still_dead(pipe, w.worker_id):
                        break  # it renewed since the views were read: its sessions may be sending
                    try:
                        taker = await self._reassign(pipe, token_id, state, w.worker_id, reason, "", views, fields)
                        await pipe.execute()
                    except WatchError:
                        logger.warning("worker {} renewed its lease while {} was being moved; it keeps it",
                                       w.worker_id, token_id)
                        break
                views = _with_one_more(views, taker)
        await self._apply_overdue_closes()
        self._dead_reported = (self._dead_reported | dead_holding) & {w.worker_id for w in views if not w.alive}
        metrics.DEAD_WORKERS.set(len(dead_holding))
        await self._expire()
        await self.schedule(views)

    async def _expire(self) -> None:
        """Drop expired ignored entries and forget applied ids past their retention."""
        k, now = self.keys, now_ms()
        expired = await self.redis.zrangebyscore(k.ignored(), "-inf", now)
        async with self.redis.pipeline(transaction=True) as p:
            if expired:
                p.zrem(k.ignored(), *expired)
                p.hdel(k.ignored_why(), *expired)
            for kind in ("signals", "fills"):
                p.zremrangebyscore(k.applied(kind), "-inf", now - SEEN_RETENTION_MS)
            await p.execute()

    async def schedule(self, views: list[WorkerView] | None = None) -> None:
        """Run queued exits into free exit slots, then start queued tokens into free job slots."""
        self._schedule_due = False
        k, sched = self.keys, self.settings.scheduler
        async with self.redis.pipeline(transaction=False) as p:
            p.get(k.halt())
            for state in ACTIVE:
                p.scard(k.tokens_in_state(state))
            p.zcard(k.exits_queued())
            halt, starting, running, exiting, exits_waiting = await p.execute()
        if exits_waiting:
            await self._run_queued_exits(int(exiting))
        if halt:
            return  # halt and reduce_only: nothing new starts
        active = int(starting) + int(running)
        room = min(sched.max_concurrent_jobs - active, 500)  # at most 500 starts per call
        if room <= 0:
            return
        queued = [(t, int(ts)) for t, ts in await self.redis.zrange(k.queue(), 0, room - 1, withscores=True)]
        chosen = tokens_to_start(queued, active, sched.max_concurrent_jobs, self._last_start_ms, now_ms(),
                                 sched.topic_start_cooldown_sec)
        if not chosen:
            return
        views = views if views is not None else await self.workers()
        assignments: list[tuple[str, str]] = []
        for token_id in chosen:
            worker = pick_worker(views)
            if worker is None:
                logger.debug("no live worker with room; {} token(s) stay queued", len(chosen) - len(assignments))
                break
            assignments.append((token_id, worker))
            views = _with_one_more(views, worker)
        await self._start_many(assignments)

    async def _run_queued_exits(self, exiting: int) -> None:
        k = self.keys
        waiting = [(t, int(ts)) for t, ts in await self.redis.zrange(k.exits_queued(), 0, -1, withscores=True)]
        views = await self._views_of([t for t, _ in waiting])
        runnable = [(t, ts) for t, ts in waiting if views[t][0] in ("starting", "running")]
        stale = [t for t, _ in waiting if views[t][0] not in ("starting", "running")]
        pipe = self.redis.pipeline(transaction=True)
        if stale:  # the token ended or was re-queued meanwhile: its queued exit is moot
            pipe.zrem(k.exits_queued(), *stale)
        for token_id in exits_to_run(runnable, exiting, self.settings.scheduler.max_concurrent_exit_jobs):
            _, owner, epoch, fields = views[token_id]
            self._exit(pipe, token_id, owner, epoch, fields.get("exit_reason") or SELL_EXIT_REASON, "")
        await pipe.execute()

    async def _start_many(self, assignments: list[tuple[str, str]]) -> None:
        """START each (token, worker): one read of the tokens, one MULTI for every start."""
        if not assignments:
            return
        views = await self._views_of([t for t, _ in assignments])
        pipe = self.redis.pipeline(transaction=True)
        batch = IndexBatch()
        wanted: list[str] = []
        for token_id, worker in assignments:
            state, _, epoch, fields = views[token_id]
            if state != "queued":  # a stale queue entry (should not happen): drop it, start nothing
                logger.warning("{} is in the queue but {}; dropped from the queue", token_id, state or "unknown")
                pipe.zrem(self.keys.queue(), token_id)
                continue
            epoch += 1  # the leader is the only writer of epochs: no read-modify-write race
            params = json.loads(fields["params"]) if fields.get("params") else \
                merge_strategy_params(self.settings, token_id, fields.get("slug", ""))
            resume_exit = fields.get("exit_pending") == "1"
            reason = f"assigned to {worker}"
            self.store.transition(pipe, token_id, "exiting" if resume_exit else "starting", prev_state="queued",
                                  batch=batch, last_event=last_event("token.starting", reason),
                                  owner=worker, epoch=epoch, started_at=now_ms(),
                                  params=fields.get("params") or json.dumps(params, sort_keys=True),
                                  exit_pending="0", handback_requested_at=0)
            wanted.append(token_id)
            self.store.command(pipe, worker, "START", token_id, epoch, params)
            if resume_exit:
                self.store.command(pipe, worker, "EXIT", token_id, epoch,
                                   reason=fields.get("exit_reason") or "resumed exit")
            self.store.event(pipe, "token.starting", token_id, reason, touch_token=False, owner=worker, epoch=epoch,
                             resumes_exit=resume_exit or None)
        batch.flush(pipe)
        if wanted:
            pipe.sadd(self.keys.gw_want(REQUESTER_ORCHESTRATOR), *wanted)
            self.store.notify_gateway(pipe)
        await pipe.execute()
        self._last_start_ms = now_ms()

    async def _still_dead(self, pipe: Pipe, worker_id: str) -> bool:
        """WATCH the worker's lease and confirm it is still gone: the move then commits only if no
        renewal lands before it. A worker that was only slow (Redis restarted, a long pause) renews
        and checks its ownership again before it sends; were the move to commit after that check,
        its order and the new owner's could both reach the venue (H3)."""
        lease = self.keys.worker_lease(worker_id)
        await pipe.watch(lease)
        if await pipe.exists(lease):
            await pipe.reset()
            logger.info("worker {} renewed its lease after all; its tokens stay", worker_id)
            return False
        pipe.multi()
        return True

    async def _reassign(self, pipe: Pipe, token_id: str, state: str, old_owner: str, reason: str, cause: str,
                        views: list[WorkerView] | None = None, fields: dict[str, str] | None = None,
                        may_keep: bool = False) -> str | None:
        """Move an active token to another live worker under a new epoch (the old one is fenced);
        ``may_keep``: a hand-back may go to its own (live, not draining) sender when no other worker
        can take it. Returns the worker that takes it, or None when no live worker can."""
        if views is None:
            views = await self.workers()
        worker = pick_taker(views, old_owner, may_keep)
        if worker is None:
            self.store.event(pipe, "token.orphaned", token_id, f"{reason}; no live worker to take it",
                             level="warning", cause=cause)
            return None
        if fields is None:
            _, fields = await self.store.view(token_id)
        epoch = int(fields.get("epoch", "0") or 0) + 1
        params = json.loads(fields.get("params") or "{}")
        new_state = "exiting" if state == "exiting" else "starting"
        self.store.transition(pipe, token_id, new_state, owner=worker, prev_owner=old_owner, epoch=epoch,
                              handback_requested_at=0)
        self.store.command(pipe, worker, "START", token_id, epoch, params, reason=reason)
        if new_state == "exiting":
            self.store.command(pipe, worker, "EXIT", token_id, epoch, reason=fields.get("exit_reason") or reason)
        self.store.event(pipe, "token.reassigned", token_id, reason, level="warning", cause=cause,
                         old_owner=old_owner, owner=worker, epoch=epoch)
        return worker


def _overdue(fields: dict[str, str], lease_ms: int) -> bool:
    asked = int(fields.get("handback_requested_at") or 0)
    return asked > 0 and now_ms() - asked > lease_ms


def _detail(sig: Signal) -> dict[str, Any]:
    return {"account": sig.account, "source": sig.source, "signal": sig.id}


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
