"""The orchestrator's writes to token lifecycle, queued on a transaction pipeline.

The orchestrator is the ONLY writer of ``pf:token:{id}`` and the ``pf:tokens:{state}`` index.
Every change goes onto a MULTI pipeline together with the XACK of the stream entry that caused
it, so an entry's effects and its acknowledgement commit together: a crash before EXEC leaves
the entry pending (redelivered, nothing applied), a crash after leaves it acked (applied once).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.orchestrator import metrics
from services.orchestrator.decisions import TokenView
from shared.clock import now_ms
from shared.keys import STREAM_MAXLEN, TOKEN_STATES, Keys
from shared.messages import AuditEvent, Command, stable_id

Pipe = Any  # redis.asyncio.client.Pipeline (redis is untyped for mypy here)

# What admitting a BUY needs to know about each token, read in ONE command for a whole run of
# signals (a pipeline would cost one reply parse per key per signal, the orchestrator's main cost).
# KEYS: applied-signals zset, handled set, ignored zset, then per token: its hash, its cooldown key.
# ARGV: the signal ids, then the token ids, in the same order. Reply per token: applied score |
# false, the hash as a flat list, handled 0/1, cooldown 0/1, ignored-until score | false.
_BUY_INPUTS = """
local out = {}
local n = #ARGV / 2
for i = 1, n do
  local token_key, cooldown_key, token = KEYS[2 + 2 * i], KEYS[3 + 2 * i], ARGV[n + i]
  out[i] = {
    redis.call('ZSCORE', KEYS[1], ARGV[i]),
    redis.call('HGETALL', token_key),
    redis.call('SISMEMBER', KEYS[2], token),
    redis.call('EXISTS', cooldown_key),
    redis.call('ZSCORE', KEYS[3], token),
  }
end
return out
"""


@dataclass(frozen=True)
class BuyInputs:
    applied: bool  # this signal id was decided before
    fields: dict[str, str]  # the token hash ({} = never seen)
    handled: bool
    cooling_down: bool
    ignored_until: float | None


class IndexBatch:
    """Index moves of one or many tokens, written as one command per key by ``flush``."""

    def __init__(self) -> None:
        self.sadd: dict[str, list[str]] = defaultdict(list)
        self.srem: dict[str, list[str]] = defaultdict(list)
        self.zadd: dict[str, dict[str, int]] = defaultdict(dict)
        self.zrem: dict[str, list[str]] = defaultdict(list)

    def flush(self, pipe: Pipe) -> None:
        for key, members in self.srem.items():
            pipe.srem(key, *members)
        for key, members in self.zrem.items():
            pipe.zrem(key, *members)
        for key, members in self.sadd.items():
            pipe.sadd(key, *members)
        for key, scores in self.zadd.items():
            pipe.zadd(key, scores)
        for index in (self.sadd, self.srem, self.zadd, self.zrem):
            index.clear()


class TokenStore:
    def __init__(self, r: aioredis.Redis, keys: Keys, producer: str) -> None:
        self.r = r
        self.keys = keys
        self.producer = producer
        self._buy_inputs = r.register_script(_BUY_INPUTS)

    async def buy_inputs(self, token_ids: list[str], signal_ids: list[str]) -> list[BuyInputs]:
        """Everything admission reads per token, for a run of distinct tokens, in one command."""
        k = self.keys
        keys = [k.applied("signals"), k.handled(), k.ignored()]
        for token_id in token_ids:
            keys += [k.token(token_id), k.cooldown(token_id)]
        out = []
        reply = await self._buy_inputs(keys=keys, args=[*signal_ids, *token_ids])
        for applied, flat, handled, cooling, ignored in reply:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            out.append(BuyInputs(applied is not None, fields, bool(handled), bool(cooling),
                                 float(ignored) if ignored is not None else None))
        return out

    async def view(self, token_id: str) -> tuple[TokenView, dict[str, str]]:
        h: dict[str, str] = await self.r.hgetall(self.keys.token(token_id))  # type: ignore[misc]
        view = TokenView(token_id, h.get("state", ""), h.get("owner", ""), int(h.get("epoch", "0") or 0))
        return view, h

    def transition(self, pipe: Pipe, token_id: str, new: str, *, prev_state: str | None = None,
                   prev_owner: str = "", queue_score: int | None = None, batch: IndexBatch | None = None,
                   **fields: Any) -> None:
        """Move a token to ``new`` state and set fields, keeping every index in step.

        The state index sets (every other state's set drops it), the FIFO queue (a token is in it
        exactly while queued, scored by ``queue_score``, its signal time) and the per-worker token
        sets (when ``owner`` is among the fields, ``prev_owner``'s set drops it). A caller that
        read the token's state passes it as ``prev_state`` ("" = new token) to spare the removal
        from every other state's set. With ``batch``, the index moves are collected there and
        written by ``batch.flush(pipe)`` (one command per set for a whole run of tokens).
        """
        ts = now_ms()
        mapping = {"state": new, "updated_at": ts, f"{new}_at": ts, **fields}
        pipe.hset(self.keys.token(token_id), mapping={k: str(v) for k, v in mapping.items()})
        ix = batch if batch is not None else IndexBatch()
        for state in TOKEN_STATES if prev_state is None else (prev_state,) if prev_state else ():
            if state != new:
                ix.srem[self.keys.tokens_in_state(state)].append(token_id)
        ix.sadd[self.keys.tokens_in_state(new)].append(token_id)
        if new == "queued":
            ix.zadd[self.keys.queue()][token_id] = queue_score if queue_score is not None else ts
        elif prev_state is None or prev_state == "queued":
            ix.zrem[self.keys.queue()].append(token_id)
        if "owner" in fields:
            owner = str(fields["owner"])
            if prev_owner and prev_owner != owner:
                ix.srem[self.keys.worker_tokens(prev_owner)].append(token_id)
            if owner:
                ix.sadd[self.keys.worker_tokens(owner)].append(token_id)
        if batch is None:
            ix.flush(pipe)

    def event(self, pipe: Pipe, kind: str, token_id: str = "", reason: str = "",
              level: str = "info", cause: str = "", touch_token: bool = True, **detail: Any) -> None:
        """An audit event; ``cause`` (the stream entry id) makes its id deterministic. A token event
        also sets the token's ``last_event`` (``touch_token=False``: the caller's transition does)."""
        ts = now_ms()
        msg = AuditEvent(
            id=stable_id(kind, token_id, cause or ts), ts_event=ts, ts_init=ts, producer=self.producer,
            kind=kind, level=level, token_id=token_id, reason=reason,  # type: ignore[arg-type]
            detail={k: v for k, v in detail.items() if v is not None},
        )
        pipe.xadd(self.keys.events(), msg.encode(), maxlen=STREAM_MAXLEN["events"], approximate=True)  # type: ignore[arg-type]
        metrics.EVENTS.labels(kind, level).inc()  # counted when queued: a failed MULTI is rare and ends the process
        if touch_token and kind.startswith("token."):
            pipe.hset(self.keys.token(token_id), "last_event", last_event(kind, reason))

    def command(self, pipe: Pipe, worker_id: str, action: str, token_id: str, epoch: int,
                params: dict[str, Any] | None = None, reason: str = "", key: str = "") -> None:
        """``key`` tells apart commands of one action and epoch (each partial EXIT names its signal)."""
        ts = now_ms()
        cmd = Command(
            id=stable_id("cmd", action, token_id, epoch, *([key] if key else [])), ts_event=ts, ts_init=ts, producer=self.producer,
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


def last_event(kind: str, reason: str) -> str:
    """The token hash's one-line summary of its latest event."""
    return f"{kind}: {reason}" if reason else kind
