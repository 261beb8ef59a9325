"""Control: the operator's requests on ``pf:control`` (CLI, API), one handler per action.

Every request is answered by a ``control.{action}`` audit event after its handler's effects. The
message schema refuses unknown actions before they get here; one without a handler anyway (added
to the schema, not to the table) changes nothing: it is a ``control.unknown`` warning, and acked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from services.orchestrator.demotion import Demotion
from services.orchestrator.intake import Intake
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.store import Pipe, TokenStore
from services.orchestrator.views import FleetViews
from shared.clock import now_ms
from shared.fleet import ACTIVE_STATES, EXITABLE_STATES
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.messages import ControlRequest
from shared.redemptions import RETRYABLE, RedeemStatus

Handler = Callable[[Pipe, ControlRequest, str], Awaitable[None]]


class Control:
    def __init__(self, keys: Keys, store: TokenStore, risk: RiskBook, views: FleetViews, intake: Intake,
                 demotion: Demotion) -> None:
        self.keys = keys
        self.store = store
        self.risk = risk
        self.views = views
        self.intake = intake
        self.demotion = demotion
        self.handlers: dict[str, Handler] = {
            "stop_token": self.stop_token,
            "halt": self.halt,
            "resume": self.resume,
            "handled_reset": self.handled_reset,
            "blacklist_add": self.blacklist_add,
            "blacklist_remove": self.blacklist_remove,
            "drain_worker": self.drain_worker,
            "undrain_worker": self.undrain_worker,
            "unignore": self.unignore,
            "leader_pause": self.leader_pause,
            "leader_resume": self.leader_resume,
            "redeem_retry": self.redeem_retry,
        }

    async def on_control(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        handler = self.handlers.get(req.action)
        if handler is None:
            self.store.event(pipe, "control.unknown", "", f"no handler for action {req.action!r}; nothing done",
                             level="warning", cause=cause, action=req.action, target=req.target,
                             requested_by=req.producer)
            return
        await handler(pipe, req, cause)
        self.store.event(pipe, f"control.{req.action}", req.target if req.action == "stop_token" else "", req.reason,
                         cause=cause, target=req.target, force=req.force, requested_by=req.producer)

    # --- one handler per action ------------------------------------------------------------

    async def stop_token(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        token, _ = await self.store.view(req.target)
        reason = req.reason or "stopped by operator"
        if token.state in ACTIVE_STATES and req.force:
            # Force: cancel orders, keep the position. Clearing the owner fences the session at once.
            self.store.command(pipe, token.owner, "STOP", req.target, token.epoch, reason=reason)
            self.store.transition(pipe, req.target, "done", owner="", prev_owner=token.owner, exit_reason=reason)
            pipe.zrem(self.keys.exits_queued(), req.target)
            pipe.sadd(self.keys.handled(), req.target)
            await self.risk.release(pipe, req.target)
            self.store.want(pipe, req.target, False, REQUESTER_ORCHESTRATOR)
            self.store.event(pipe, "token.stopped", req.target, f"{reason} (forced: orders cancelled, position kept)",
                             level="warning", cause=cause, owner=token.owner, epoch=token.epoch)
        elif token.state in EXITABLE_STATES:
            await self.intake.request_exit(pipe, req.target, token.owner, token.epoch, reason, cause)
        elif token.state == "queued":
            self.store.transition(pipe, req.target, "done")
            await self.risk.release(pipe, req.target)
            self.store.event(pipe, "token.dequeued", req.target, reason, cause=cause)

    async def halt(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        """``halt reduce_only``: nothing new starts, exits run. ``halt``: also stop every session now
        (orders cancelled, positions kept) and queue the tokens again, so ``resume`` restarts them
        where they were (an exiting token resumes its exit)."""
        mode = "reduce_only" if req.target == "reduce_only" else "halt"
        pipe.set(self.keys.halt(), mode)
        if mode != "halt":
            return
        reason = req.reason or "halted by operator"
        for token_id, (state, owner, epoch, fields) in (await self.views.active_tokens()).items():
            if owner:
                self.store.command(pipe, owner, "STOP", token_id, epoch, reason=reason)
            self.store.transition(pipe, token_id, "queued", owner="", prev_owner=owner,
                                  queue_score=int(fields.get("signal_ts") or 0),
                                  exit_pending="1" if state == "exiting" else "0")
            self.store.event(pipe, "token.halted", token_id, reason, level="warning", cause=cause,
                             owner=owner, epoch=epoch, was=state)

    async def resume(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        pipe.delete(self.keys.halt())

    async def handled_reset(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        if req.target:
            pipe.srem(self.keys.handled(), req.target)
        else:
            pipe.delete(self.keys.handled())

    async def blacklist_add(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        pipe.hset(self.keys.blacklist(), req.target, json.dumps({"reason": req.reason, "expires_at": req.expires_at}))

    async def blacklist_remove(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        pipe.hdel(self.keys.blacklist(), req.target)

    async def drain_worker(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        """The worker takes nothing new and is asked to hand back each of its tokens; the
        handed_back reports move them (upkeep moves the ones not handed back in time)."""
        worker_id = req.target
        pipe.hset(self.keys.worker(worker_id), "draining", "1")
        for token_id, (_, owner, epoch, _) in (await self.views.tokens_of(worker_id)).items():
            self.store.command(pipe, owner, "STOP", token_id, epoch, {"hand_back": True}, reason="worker draining")
            pipe.hset(self.keys.token(token_id), "handback_requested_at", now_ms())
            self.store.event(pipe, "token.handback_requested", token_id, f"worker {worker_id} draining",
                             cause=cause, owner=owner, epoch=epoch)

    async def undrain_worker(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        pipe.hset(self.keys.worker(req.target), "draining", "0")

    async def unignore(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        self.store.unignore(pipe, req.target)

    async def leader_pause(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        """Its BUYs are no longer copied (its SELLs still exit our copies) until ``leader_resume``."""
        self.demotion.pause(pipe, req.target, req.reason or "paused by operator", req.producer or "operator", cause)

    async def leader_resume(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        await self.demotion.resume(pipe, req.target, req.reason, req.producer or "operator", cause)

    async def redeem_retry(self, pipe: Pipe, req: ControlRequest, cause: str) -> None:
        """An operator's retry of a market's redemption (``polyfleet redemptions --retry``): the
        redeemer tries it at its next check, whatever its backoff says (one of unknown outcome is
        checked on chain first, as always). Only a failed, unknown or stuck one: another is refused."""
        raw = await self.store.r.hget(self.keys.redeem_status(), req.target)
        st = RedeemStatus.parse(req.target, raw) if raw else None
        if st is None or st.state not in RETRYABLE:
            self.store.event(pipe, "redeem.retry_refused", "", f"redemption of {req.target} is "
                             f"{st.state if st else 'not known'}: nothing to retry", level="warning", cause=cause,
                             condition_id=req.target, requested_by=req.producer)
            return
        pipe.hset(self.keys.redeem_retry(), req.target, now_ms())
