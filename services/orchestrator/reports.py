"""Reports: what the workers say happened (their session reports and their fills).

A ``closed`` report ends the token's session; it waits (parked in ``pf:closing``) until every
fill of its session has been applied, so the position it leaves is the fills' last word. Fills
are booked in one place, ``on_fill``: the token's position and PnL, the risk book's exposure, the
day's realised PnL (and the daily-loss kill switch), then a parked close they complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator.decisions import SELL_EXIT_REASON
from services.orchestrator.moves import Moves
from services.orchestrator.positions import apply_fill, utc_day
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.states import DUST
from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.messages import Fill, SessionReport, decode


class Reports:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: TokenStore, risk: RiskBook,
                 settings: Callable[[], Settings], moves: Moves) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.risk = risk
        self.settings = settings  # read at each use: a reload takes effect at once
        self.moves = moves

    # --- session reports -------------------------------------------------------------------

    async def on_session(self, pipe: Pipe, rep: SessionReport, cause: str) -> None:
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
                # move it again. Park the report; the last fill applies it (or upkeep, late).
                pipe.hset(self.keys.closing(), rep.token_id, json.dumps(
                    {"report": rep.encode(), "exit_reason": fields.get("exit_reason", ""), "cause": cause,
                     "since": now_ms()}))
                self.store.event(pipe, "session.close_waiting", rep.token_id, f"closed report of epoch {rep.epoch} "
                                 f"read after {applied} of its {rep.fills} fill(s); waiting for the rest", cause=cause)
            else:
                await self.closed(pipe, rep, fields.get("exit_reason", ""), cause)
        elif rep.status == "handed_back":
            await self.moves.reassign(pipe, rep.token_id, token.state, rep.worker, f"handed back: {rep.reason}",
                                      cause, may_keep=True)
        elif rep.status == "failed":
            self.store.transition(pipe, rep.token_id, "error", owner="", prev_owner=rep.worker)
            await self.risk.release(pipe, rep.token_id)
            pipe.zrem(self.keys.exits_queued(), rep.token_id)
            self.store.want(pipe, rep.token_id, False, REQUESTER_ORCHESTRATOR)
            self.store.ignore(pipe, rep.token_id, f"session failed: {rep.reason}",
                              self.settings().cooldown.orphan_ignore_sec)
            self.store.event(pipe, "token.error", rep.token_id, rep.reason, level="error", cause=cause)

    async def apply_parked_close(self, pipe: Pipe, rep: SessionReport, waiting: dict[str, Any], why: str) -> None:
        pipe.hdel(self.keys.closing(), rep.token_id)
        token, _ = await self.store.view(rep.token_id)
        if rep.epoch != token.epoch or rep.worker != token.owner:  # moved on meanwhile: nothing to close
            return
        logger.info("{}: applying the closed report of epoch {} ({})", rep.token_id, rep.epoch, why)
        await self.closed(pipe, rep, str(waiting.get("exit_reason", "")), str(waiting.get("cause", "")))

    async def apply_overdue_closes(self) -> None:
        """A parked closed report whose fills did not all arrive within a lease (a fill trimmed or
        never written): close from the report anyway, the session's last word on its position."""
        for token_id, raw in (await self.redis.hgetall(self.keys.closing())).items():
            waiting = json.loads(raw)
            if now_ms() - int(waiting.get("since", 0)) < self.settings().workers.lease_ms:
                continue
            rep = decode(waiting["report"])
            if not isinstance(rep, SessionReport):
                await self.redis.hdel(self.keys.closing(), token_id)
                continue
            pipe = self.redis.pipeline(transaction=True)
            self.store.event(pipe, "session.close_overdue", token_id, f"closed report of epoch {rep.epoch} applied "
                             f"without all of its {rep.fills} fill(s)", level="warning")
            await self.apply_parked_close(pipe, rep, waiting, "overdue")
            await pipe.execute()

    async def closed(self, pipe: Pipe, rep: SessionReport, exit_reason: str, cause: str) -> None:
        k, cd = self.keys, self.settings().cooldown
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

    # --- fills ------------------------------------------------------------------------------

    async def on_fill(self, pipe: Pipe, fill: Fill, cause: str) -> None:
        """Book one fill; its writes go on ``pipe`` with the entry's ack."""
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
        risk = self.settings().risk
        if realized_delta:
            await self._book_daily_pnl(pipe, fill, realized_delta, cause)
        if float(updated["position"]) < -DUST and not risk.allow_short:
            self.store.event(pipe, "risk.short_position", fill.token_id,
                             f"position {updated['position']} after a {fill.side} fill while risk.allow_short is "
                             "false", level="error", cause=cause, worker=fill.worker)
        # after the fill's own writes: the close releases the risk the fill just set
        if parked:
            waiting = json.loads(parked)
            rep = decode(waiting["report"])
            if isinstance(rep, SessionReport) and rep.epoch == fill.epoch and applied >= rep.fills:
                await self.apply_parked_close(pipe, rep, waiting, "its last fill arrived")

    async def _book_daily_pnl(self, pipe: Pipe, fill: Fill, realized_delta: float, cause: str) -> None:
        """Add the fill's realised PnL to its UTC day; crossing the daily loss limit sets the kill switch."""
        max_daily_loss = self.settings().risk.max_daily_loss
        day = utc_day(fill.ts_event or now_ms())
        before = float(await self.redis.hget(self.keys.pnl_daily(), day) or 0.0)
        pipe.hincrbyfloat(self.keys.pnl_daily(), day, realized_delta)
        after = before + realized_delta
        if -after >= max_daily_loss > -before:
            # Crossing the daily loss limit: no new sessions (decide_buy refuses them) and no new risk.
            pipe.set(self.keys.halt(), "reduce_only", nx=True)
            self.store.event(pipe, "risk.daily_loss_limit", fill.token_id,
                             f"realised {after:.2f} today reached -{max_daily_loss:.2f}: kill switch "
                             "set to reduce_only (resume with `polyfleet resume`)", level="error", cause=cause)
