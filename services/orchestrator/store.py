"""The orchestrator's writes to token lifecycle, queued on a transaction pipeline.

The orchestrator is the ONLY writer of ``pf:token:{id}`` and the ``pf:tokens:{state}`` index.
Every change goes onto a MULTI pipeline together with the XACK of the stream entry that caused
it, so an entry's effects and its acknowledgement commit together: a crash before EXEC leaves
the entry pending (redelivered, nothing applied), a crash after leaves it acked (applied once).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.orchestrator.decisions import TokenView
from shared.clock import now_ms
from shared.keys import STREAM_MAXLEN, TOKEN_STATES, Keys
from shared.messages import AuditEvent, Command, stable_id

Pipe = Any  # redis.asyncio.client.Pipeline (redis is untyped for mypy here)


class TokenStore:
    def __init__(self, r: aioredis.Redis, keys: Keys, producer: str) -> None:
        self.r = r
        self.keys = keys
        self.producer = producer

    async def view(self, token_id: str) -> tuple[TokenView, dict[str, str]]:
        h: dict[str, str] = await self.r.hgetall(self.keys.token(token_id))  # type: ignore[misc]
        view = TokenView(token_id, h.get("state", ""), h.get("owner", ""), int(h.get("epoch", "0") or 0))
        return view, h

    def transition(self, pipe: Pipe, token_id: str, new: str, *, prev_state: str | None = None,
                   prev_owner: str = "", queue_score: int | None = None, **fields: Any) -> None:
        """Move a token to ``new`` state and set fields, keeping every index in step.

        The state index sets (every other state's set drops it), the FIFO queue (a token is in it
        exactly while queued, scored by ``queue_score``, its signal time) and the per-worker token
        sets (when ``owner`` is among the fields, ``prev_owner``'s set drops it). A caller that
        read the token's state passes it as ``prev_state`` ("" = new token) to spare the removal
        from every other state's set.
        """
        ts = now_ms()
        mapping = {"state": new, "updated_at": ts, f"{new}_at": ts, **fields}
        pipe.hset(self.keys.token(token_id), mapping={k: str(v) for k, v in mapping.items()})
        for state in TOKEN_STATES if prev_state is None else (prev_state,) if prev_state else ():
            if state != new:
                pipe.srem(self.keys.tokens_in_state(state), token_id)
        pipe.sadd(self.keys.tokens_in_state(new), token_id)
        if new == "queued":
            pipe.zadd(self.keys.queue(), {token_id: queue_score if queue_score is not None else ts})
        elif prev_state is None or prev_state == "queued":
            pipe.zrem(self.keys.queue(), token_id)
        if "owner" in fields:
            owner = str(fields["owner"])
            if prev_owner and prev_owner != owner:
                pipe.srem(self.keys.worker_tokens(prev_owner), token_id)
            if owner:
                pipe.sadd(self.keys.worker_tokens(owner), token_id)

    def event(self, pipe: Pipe, kind: str, token_id: str = "", reason: str = "",
              level: str = "info", cause: str = "", **detail: Any) -> None:
        """An audit event; ``cause`` (the stream entry id) makes its id deterministic."""
        ts = now_ms()
        msg = AuditEvent(
            id=stable_id(kind, token_id, cause or ts), ts_event=ts, ts_init=ts, producer=self.producer,
            kind=kind, level=level, token_id=token_id, reason=reason,  # type: ignore[arg-type]
            detail={k: v for k, v in detail.items() if v is not None},
        )
        pipe.xadd(self.keys.events(), msg.encode(), maxlen=STREAM_MAXLEN["events"], approximate=True)  # type: ignore[arg-type]
        if kind.startswith("token."):
            pipe.hset(self.keys.token(token_id), "last_event", f"{kind}: {reason}" if reason else kind)

    def command(self, pipe: Pipe, worker_id: str, action: str, token_id: str, epoch: int,
                params: dict[str, Any] | None = None, reason: str = "") -> None:
        ts = now_ms()
        cmd = Command(
            id=stable_id("cmd", action, token_id, epoch), ts_event=ts, ts_init=ts, producer=self.producer,
            action=action, token_id=token_id, epoch=epoch, params=params or {}, reason=reason,  # type: ignore[arg-type]
        )
        pipe.xadd(self.keys.cmd(worker_id), cmd.encode(), maxlen=STREAM_MAXLEN["cmd"], approximate=True)  # type: ignore[arg-type]

    def want(self, pipe: Pipe, token_id: str, wanted: bool, requester: str, notify: bool = True) -> None:
        """Tell the gateway whether this token needs streaming (``notify=False``: the caller
        publishes one notification for a whole batch)."""
        if wanted:
            pipe.sadd(self.keys.gw_want(requester), token_id)
        else:
            pipe.srem(self.keys.gw_want(requester), token_id)
        if notify:
            self.notify_gateway(pipe)

    def notify_gateway(self, pipe: Pipe) -> None:
        pipe.publish(self.keys.gw_notify(), "changed")

    def ignore(self, pipe: Pipe, token_id: str, reason: str, seconds: float) -> None:
        """Put a token on the ignored list (C4) with its reason; it expires after ``seconds``."""
        if seconds <= 0:
            return
        pipe.zadd(self.keys.ignored(), {token_id: now_ms() + int(seconds * 1000)})
        pipe.hset(self.keys.ignored_why(), token_id, reason)

    def unignore(self, pipe: Pipe, token_id: str) -> None:
        pipe.zrem(self.keys.ignored(), token_id)
        pipe.hdel(self.keys.ignored_why(), token_id)
