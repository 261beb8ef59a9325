"""Upkeep: what the leader does every poll interval, and the starts it schedules.

``maintain`` moves the tokens of dead workers (and of drained workers that did not hand back in
time), applies parked closes whose fills never came, expires ignored entries and forgets old
applied ids, then ``schedule`` runs queued exits into free exit slots and starts queued tokens
into free job slots.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import WatchError

from services.orchestrator import metrics
from services.orchestrator.assignment import pick_worker
from services.orchestrator.decisions import SELL_EXIT_REASON
from services.orchestrator.intake import Intake
from services.orchestrator.moves import Moves
from services.orchestrator.reports import Reports
from services.orchestrator.scheduling import exits_to_run, tokens_to_start
from services.orchestrator.store import IndexBatch, Pipe, TokenStore, last_event
from services.orchestrator.views import FleetViews
from shared.clock import now_ms
from shared.config import Settings, merge_strategy_params
from shared.fleet import ACTIVE_STATES, EXITABLE_STATES, WorkerView
from shared.keys import REQUESTER_ORCHESTRATOR, Keys

SEEN_RETENTION_MS = 24 * 3600 * 1000  # how long applied signal/fill ids are remembered


class Upkeep:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: TokenStore, settings: Callable[[], Settings],
                 views: FleetViews, moves: Moves, intake: Intake, reports: Reports) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.settings = settings  # read at each use: a reload takes effect at once
        self.views = views
        self.moves = moves
        self.intake = intake
        self.reports = reports
        self.schedule_due = False  # a slot or a queued token appeared: schedule before the next poll
        self._last_start_ms = 0
        self._dead_reported: set[str] = set()  # workers whose death was announced (worker.dead), until alive again

    async def maintain(self) -> None:
        """Every poll interval: move the tokens of dead workers (and of drained workers that did
        not hand back in time), apply overdue closes, expire ignored entries, then schedule."""
        views = await self.views.workers()
        dead_holding = set()
        for w in views:
            if w.alive and not w.draining:
                continue
            held = await self.views.tokens_of(w.worker_id)
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
                elif _overdue(fields, self.settings().workers.lease_ms):
                    reason = f"worker {w.worker_id} draining; no hand-back within the lease"
                else:
                    continue
                async with self.redis.pipeline(transaction=True) as pipe:
                    if not w.alive and not await self.still_dead(pipe, w.worker_id):
                        break  # it renewed since the views were read: its sessions may be sending
                    try:
                        taker = await self.moves.reassign(pipe, token_id, state, w.worker_id, reason, "", views,
                                                          fields)
                        await pipe.execute()
                    except WatchError:
                        logger.warning("worker {} renewed its lease while {} was being moved; it keeps it",
                                       w.worker_id, token_id)
                        break
                views = _with_one_more(views, taker)
        await self.reports.apply_overdue_closes()
        self._dead_reported = (self._dead_reported | dead_holding) & {w.worker_id for w in views if not w.alive}
        metrics.DEAD_WORKERS.set(len(dead_holding))
        await self.expire()
        await self.schedule(views)

    async def still_dead(self, pipe: Pipe, worker_id: str) -> bool:
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

    async def expire(self) -> None:
        """Drop expired ignored entries and forget applied ids past their retention."""
        k, now = self.keys, now_ms()
        expired = await self.redis.zrangebyscore(k.ignored(), "-inf", now)
        async with self.redis.pipeline(transaction=True) as p:
            if expired:
                p.zrem(k.ignored(), *expired)
                p.hdel(k.ignored_why(), *expired)
            for kind in ("signals", "fills", "resolutions", "redemptions"):
                p.zremrangebyscore(k.applied(kind), "-inf", now - SEEN_RETENTION_MS)
            await p.execute()

    async def schedule(self, views: list[WorkerView] | None = None) -> None:
        """Run queued exits into free exit slots, then start queued tokens into free job slots."""
        self.schedule_due = False
        k, sched = self.keys, self.settings().scheduler
        async with self.redis.pipeline(transaction=False) as p:
            p.get(k.halt())
            for state in ACTIVE_STATES:
                p.scard(k.tokens_in_state(state))
            p.zcard(k.exits_queued())
            halt, starting, running, exiting, exits_waiting = await p.execute()
        if exits_waiting:
            await self.run_queued_exits(int(exiting))
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
        views = views if views is not None else await self.views.workers()
        assignments: list[tuple[str, str]] = []
        for token_id in chosen:
            worker = pick_worker(views)
            if worker is None:
                logger.debug("no live worker with room; {} token(s) stay queued", len(chosen) - len(assignments))
                break
            assignments.append((token_id, worker))
            views = _with_one_more(views, worker)
        await self.start_many(assignments)

    async def run_queued_exits(self, exiting: int) -> None:
        k = self.keys
        waiting = [(t, int(ts)) for t, ts in await self.redis.zrange(k.exits_queued(), 0, -1, withscores=True)]
        views = await self.views.views_of([t for t, _ in waiting])
        runnable = [(t, ts) for t, ts in waiting if views[t][0] in EXITABLE_STATES]
        stale = [t for t, _ in waiting if views[t][0] not in EXITABLE_STATES]
        pipe = self.redis.pipeline(transaction=True)
        if stale:  # the token ended or was re-queued meanwhile: its queued exit is moot
            pipe.zrem(k.exits_queued(), *stale)
        for token_id in exits_to_run(runnable, exiting, self.settings().scheduler.max_concurrent_exit_jobs):
            _, owner, epoch, fields = views[token_id]
            self.intake.exit(pipe, token_id, owner, epoch, fields.get("exit_reason") or SELL_EXIT_REASON, "")
        await pipe.execute()

    async def start_many(self, assignments: list[tuple[str, str]]) -> None:
        """START each (token, worker): one read of the tokens, one MULTI for every start."""
        if not assignments:
            return
        views = await self.views.views_of([t for t, _ in assignments])
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
                merge_strategy_params(self.settings(), token_id, fields.get("slug", ""))
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


def _overdue(fields: dict[str, str], lease_ms: int) -> bool:
    asked = int(fields.get("handback_requested_at") or 0)
    return asked > 0 and now_ms() - asked > lease_ms


def _with_one_more(views: list[WorkerView], worker_id: str | None) -> list[WorkerView]:
    """The views after ``worker_id`` took one more token (no rescan of Redis needed)."""
    return [replace(w, assigned=w.assigned + 1) if w.worker_id == worker_id else w for w in views]
