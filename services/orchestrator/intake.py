"""Intake: what a signal does (C1-C6, C10).

A paused leader's BUYs are ignored (docs/copytrading.md "Auto-demotion"). BUYs are decided in runs (``decide_buys``): one read of every check's input, the pure decision
per signal, one atomic reservation of the admitted ones' notional, one MULTI with their effects
and acks. A SELL exits a running token now or queues the exit (``on_sell``); a queued token
leaves the queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from services.orchestrator.copydesk import CopyDesk, is_copy
from services.orchestrator.decisions import (
    BuyContext,
    TokenView,
    blacklist_reason,
    decide_buy,
    decide_sell,
    market_end_ms,
    market_facts,
    reservation_refused,
)
from services.orchestrator.metrics import Tally
from services.orchestrator.positions import utc_day
from services.orchestrator.risk import planned_notional
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.store import IndexBatch, Pipe, TokenStore, last_event
from shared.clock import now_ms
from shared.config import ConfigError, Settings, merge_strategy_params
from shared.copy_rules import with_trim
from shared.demotion import paused_leaders
from shared.keys import GROUP_ORCHESTRATOR, Keys
from shared.messages import Signal
from shared.redisio import StreamEntry
from shared.venue.errors import UnknownMarketVersion


class Intake:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: TokenStore, risk: RiskBook,
                 settings: Callable[[], Settings], tally: Tally) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.risk = risk
        self.settings = settings  # read at each use: a reload takes effect at once
        self.tally = tally
        self.copies = CopyDesk(redis, keys, risk)  # sizing, guard and exits per leader (docs/copytrading.md)

    async def decide_buys(self, entries: list[StreamEntry]) -> bool:
        """BUY signals for distinct tokens: read every check's input in one round trip, decide each
        (pure), reserve the admitted ones' notional atomically, then commit effects + acks in one
        MULTI. True when a token was admitted (a start may be due)."""
        k, now = self.keys, now_ms()
        sigs: list[Signal] = [e.message for e in entries]  # type: ignore[misc]
        async with self.redis.pipeline(transaction=False) as rp:
            rp.get(k.halt())
            rp.hgetall(k.blacklist())
            rp.hget(k.pnl_daily(), utc_day(now))
            rp.hgetall(k.leaders_paused())
            halt, raw_blacklist, raw_daily, raw_paused = await rp.execute()
        paused = paused_leaders(raw_paused)
        runtime_bl, daily = _runtime_blacklist(raw_blacklist), float(raw_daily or 0.0)
        inputs = await self.store.buy_inputs([s.token_id for s in sigs], [s.id for s in sigs])
        ignored_ids = [sig.token_id for sig, inp in zip(sigs, inputs, strict=True)
                       if inp.ignored_until is not None and inp.ignored_until > now]
        why = dict(zip(ignored_ids, await self.redis.hmget(k.ignored_why(), ignored_ids), strict=True)) \
            if ignored_ids else {}
        settings = self.settings()
        risk = settings.risk
        copy_inputs = await self.copies.read(sigs)
        pipe = self.redis.pipeline(transaction=True)
        admitted: list[tuple[Signal, str, dict[str, str], dict[str, Any], float]] = []
        applied: dict[str, int] = {}
        for entry, sig, inp in zip(entries, sigs, inputs, strict=True):
            if inp.applied or sig.id in applied:
                self.tally.duplicate()  # the collector retried its XADD: decided once already
                continue
            applied[sig.id] = now
            self.copies.saw_buy(pipe, sig)
            fields, handled, cooling = inp.fields, inp.handled, inp.cooling_down
            token = TokenView(sig.token_id, fields.get("state", ""), fields.get("owner", ""),
                              int(fields.get("epoch", "0") or 0))
            ignored = (why[sig.token_id] or "on the ignored list") if sig.token_id in why else None
            reason = blacklist_reason([sig.token_id, sig.condition_id, sig.slug, sig.account], [sig.title, sig.slug],
                                      risk.blacklist_token_keys, runtime_bl, now)
            ctx = BuyContext(reason, bool(handled), bool(cooling), halt or "", ignored, daily)
            verdict = decide_buy(token, ctx, risk)
            if verdict.action == "queue" and is_copy(sig) and sig.account.lower() in paused:
                # Auto-demotion or an operator paused this leader: no new copies (its SELLs still exit).
                self.store.event(pipe, "signal.ignored", sig.token_id,
                                 f"leader paused: {paused[sig.account.lower()]['reason']}", cause=entry.entry_id,
                                 **_detail(sig))
            elif verdict.action == "queue":
                try:
                    params = merge_strategy_params(settings, sig.token_id, sig.slug)
                except ConfigError as exc:
                    self.reject(pipe, sig, bool(fields), f"bad strategy parameters: {exc}", entry.entry_id)
                    continue
                try:
                    params.update(market_facts(sig))  # what the session needs of its market (START params)
                except UnknownMarketVersion as exc:
                    self.reject(pipe, sig, bool(fields), str(exc), entry.entry_id)
                    continue
                if is_copy(sig):
                    size, skip = self.copies.plan(sig, params, copy_inputs, settings, now)
                    if skip is not None:  # the copy is skipped: ignored with the rule's reason
                        self.store.event(pipe, "signal.ignored", sig.token_id, skip, cause=entry.entry_id,
                                         **_detail(sig), leader_price=sig.price, leader_size=sig.size,
                                         copy_shares=size.shares or None)
                        continue
                end_ms = market_end_ms(sig.end_date)
                if end_ms is not None:
                    params["market_end_ts"] = end_ms  # the session's countdown / deadline (D4)
                admitted.append((sig, entry.entry_id, fields, params, planned_notional(params)))
            elif verdict.action == "reject":
                self.reject(pipe, sig, bool(fields), verdict.reason, entry.entry_id)
            else:
                self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=entry.entry_id,
                                 **_detail(sig))
        reservations = await self.risk.reserve_many([(a[0].token_id, a[4]) for a in admitted],
                                                     risk.max_notional_per_token, risk.max_notional_total)
        batch = IndexBatch()
        for (sig, cause, fields, params, amount), res in zip(admitted, reservations, strict=True):
            if not res.ok:
                self.reject(pipe, sig, bool(fields), reservation_refused(res.refused_by, amount, res.committed, risk),
                            cause)
                continue
            self.store.transition(pipe, sig.token_id, "queued", prev_state=fields.get("state", ""),
                                  queue_score=sig.ts_event or now, batch=batch,
                                  last_event=last_event("token.queued", "admitted"), source=sig.source,
                                  account=sig.account, leader_price=sig.price, slug=sig.slug, condition_id=sig.condition_id,
                                  title=sig.title, outcome=sig.outcome, signal_id=sig.id,
                                  market_version=params["market_version"],
                                  signal_ts=sig.ts_event or now, queued_at=now, epoch=fields.get("epoch", 0),
                                  reserved=f"{amount:.6f}", params=json.dumps(params, sort_keys=True),
                                  exit_pending="0", exit_reason="")
            copy = params.get("copy")
            if copy:
                await self.risk.copy(pipe, sig.token_id, copy["account"], copy["notional"])
            self.store.event(pipe, "token.queued", sig.token_id, "admitted", cause=cause, touch_token=False,
                             reserved=amount, committed=res.committed, **_detail(sig),
                             copy_shares=params["maker_strategy"]["order_size"] if copy else None,
                             copy_sizing=copy["sizing"] if copy else None, guard=copy["guard"] if copy else None)
        batch.flush(pipe)
        if applied:
            pipe.zadd(k.applied("signals"), applied)
        pipe.xack(entries[0].stream, GROUP_ORCHESTRATOR, *(e.entry_id for e in entries))  # one stream: signals
        await pipe.execute()
        self.tally.decided(len(entries))
        return bool(admitted)

    def reject(self, pipe: Pipe, sig: Signal, known: bool, reason: str, cause: str) -> None:
        if not known:
            self.store.transition(pipe, sig.token_id, "rejected", prev_state="", source=sig.source, slug=sig.slug,
                                  title=sig.title)
        self.store.event(pipe, "token.rejected", sig.token_id, reason, level="warning", cause=cause, **_detail(sig))

    async def on_sell(self, pipe: Pipe, sig: Signal, cause: str) -> None:
        token, fields = await self.store.view(sig.token_id)
        verdict = decide_sell(token)
        fraction = await self.copies.saw_sell(pipe, sig, self.settings())
        if fraction is not None and verdict.action in ("exit", "dequeue"):
            await self.partial_exit(pipe, sig, token.owner, token.epoch, fraction, verdict.action, cause,
                                    fields.get("params"))
        elif verdict.action == "exit":
            await self.request_exit(pipe, sig.token_id, token.owner, token.epoch, verdict.reason, cause)
        elif verdict.action == "dequeue":
            await self.dequeue(pipe, sig.token_id, verdict.reason, cause)
        else:
            self.store.event(pipe, "signal.ignored", sig.token_id, verdict.reason, cause=cause, side="SELL")

    async def partial_exit(self, pipe: Pipe, sig: Signal, owner: str, epoch: int, fraction: float, action: str,
                           cause: str, params: str | None = None) -> None:
        """The leader sold ``fraction`` of its position: the session sells that share of ours and
        runs on (EXIT with a fraction, named by the signal); a queued copy holds nothing yet and
        stays queued. The trim also goes into the token's START params, so a worker that dies
        before doing it leaves it to the next owner (services/maker_worker/trims.py)."""
        if action == "dequeue":
            self.store.event(pipe, "signal.ignored", sig.token_id, f"followed wallet sold {fraction:.0%} of its "
                             "position before the session started: the copy stays queued", cause=cause, side="SELL")
            return
        reason = f"followed wallet sold {fraction:.0%} of its position: selling {fraction:.0%} of ours"
        self.store.command(pipe, owner, "EXIT", sig.token_id, epoch, params={"fraction": fraction, "trim_id": sig.id},
                           reason=reason, key=sig.id)
        pipe.hset(self.keys.token(sig.token_id), "params", with_trim(params, sig.id, fraction))
        await self.risk.copy_keep(pipe, sig.token_id, 1 - fraction)
        self.store.event(pipe, "token.partial_exit", sig.token_id, reason, cause=cause, owner=owner, epoch=epoch,
                         fraction=fraction, leader_size=sig.size, signal=sig.id)

    async def dequeue(self, pipe: Pipe, token_id: str, reason: str, cause: str) -> None:
        """A queued token leaves the queue before it started: done, its reservation released."""
        self.store.transition(pipe, token_id, "done")
        await self.risk.release(pipe, token_id)
        self.store.event(pipe, "token.dequeued", token_id, reason, cause=cause)

    async def request_exit(self, pipe: Pipe, token_id: str, owner: str, epoch: int, reason: str,
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
        if int(exiting) < self.settings().scheduler.max_concurrent_exit_jobs:
            self.exit(pipe, token_id, owner, epoch, reason, cause)
            return
        pipe.zadd(k.exits_queued(), {token_id: now_ms()}, nx=True)
        pipe.hset(k.token(token_id), mapping={"exit_reason": reason, "exit_pending": "1"})
        self.store.event(pipe, "token.exit_queued", token_id,
                         f"{reason}; {exiting} exit(s) running = scheduler.max_concurrent_exit_jobs", cause=cause)

    def exit(self, pipe: Pipe, token_id: str, owner: str, epoch: int, reason: str, cause: str) -> None:
        self.store.transition(pipe, token_id, "exiting", exit_reason=reason, exit_pending="0")
        pipe.zrem(self.keys.exits_queued(), token_id)
        self.store.command(pipe, owner, "EXIT", token_id, epoch, reason=reason)
        self.store.event(pipe, "token.exiting", token_id, reason, cause=cause, owner=owner, epoch=epoch)


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
