"""Reports: what the workers say happened (their session reports and their fills), and what the
redeemer says it redeemed.

A ``closed`` report ends the token's session; it waits (parked in ``pf:closing``) until every
fill of its session has been applied, so the position it leaves is the fills' last word. Fills
are booked in one place, ``on_fill``, into the token's settlement ledger (``pf:ledger:{token}``,
folded by services/orchestrator/ledger.py); ``on_trade_status`` moves a trade's fills from
pending to confirmed, or voids them. Either way ``_book`` writes what the ledger now adds up to:
the token's position and PnL (matched, confirmed, pending), the risk book's exposure, the day's
realised PnL (and the daily-loss kill switch), a ``trade.failed`` event per trade voided.
``on_redemption`` books a resolved market's position redeemed on the venue the same way: sold at
its payout ($1 a share of the winner, 0 of a loser), settled at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.orchestrator.decisions import SELL_EXIT_REASON
from services.orchestrator.ledger import EPS, Totals, compact, daily_changes, newly_failed, settle
from services.orchestrator.moves import Moves
from services.orchestrator.riskbook import RiskBook
from services.orchestrator.store import Pipe, TokenStore
from shared.clock import now_ms
from shared.config import Settings
from shared.fleet import DUST
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.ledger import Adjustment, Ledger, LedgerFill, hash_changes
from shared.messages import Fill, Redemption, SessionReport, TradeStatus, decode


@dataclass
class StoredLedger:
    """A token's ledger and the hash it was read as (or last queued as), so a write sends only
    what changed and a second write on the same pipeline starts from the first."""

    stored: dict[str, str]
    ledger: Ledger

    def write(self, pipe: Pipe, key: str, ledger: Ledger) -> None:
        new = ledger.to_hash()
        sets, gone = hash_changes(self.stored, new)
        if sets:
            pipe.hset(key, mapping=sets)
        if gone:
            pipe.hdel(key, *gone)
        self.stored, self.ledger = new, ledger


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

    async def apply_parked_close(self, pipe: Pipe, rep: SessionReport, waiting: dict[str, Any], why: str,
                                 ledger: StoredLedger | None = None, overdue: bool = False) -> None:
        pipe.hdel(self.keys.closing(), rep.token_id)
        token, _ = await self.store.view(rep.token_id)
        if rep.epoch != token.epoch or rep.worker != token.owner:  # moved on meanwhile: nothing to close
            return
        logger.info("{}: applying the closed report of epoch {} ({})", rep.token_id, rep.epoch, why)
        await self.closed(pipe, rep, str(waiting.get("exit_reason", "")), str(waiting.get("cause", "")),
                          ledger=ledger, overdue=overdue)

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
            await self.apply_parked_close(pipe, rep, waiting, "overdue", overdue=True)
            await pipe.execute()

    async def closed(self, pipe: Pipe, rep: SessionReport, exit_reason: str, cause: str,
                     ledger: StoredLedger | None = None, overdue: bool = False) -> None:
        """End the session. ``ledger``: the token's ledger as the caller just queued it (a parked
        close completed by a fill); ``overdue``: applied without all of its session's fills."""
        k, cd = self.keys, self.settings().cooldown
        self.store.transition(pipe, rep.token_id, "done", owner="", prev_owner=rep.worker)
        await self._settle_close(pipe, rep, ledger, overdue, cause)
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
        fields, view, parked = await self._load(fill.token_id, with_parked=True)
        before = view.ledger
        after = before.with_fill(LedgerFill(fill.id, fill.trade_id, fill.side, fill.price, fill.size, fill.fee,
                                            fill.ts_event or now_ms(), fill.epoch, fill.status, cause))
        counted = f"fills@{fill.epoch}"
        applied = int(fields.get(counted) or 0) + 1
        view.write(pipe, self.keys.ledger(fill.token_id), after)
        _, new = await self._book(pipe, fill.token_id, before, after, cause, {counted: str(applied)})
        if new.matched.position < -DUST and not self.settings().risk.allow_short:
            self.store.event(pipe, "risk.short_position", fill.token_id,
                             f"position {new.matched.position:.6f} after a {fill.side} fill while risk.allow_short is "
                             "false", level="error", cause=cause, worker=fill.worker)
        # after the fill's own writes: the close releases the risk the fill just set
        if parked:
            waiting = json.loads(parked)
            rep = decode(waiting["report"])
            if isinstance(rep, SessionReport) and rep.epoch == fill.epoch and applied >= rep.fills:
                await self.apply_parked_close(pipe, rep, waiting, "its last fill arrived", ledger=view)

    async def on_trade_status(self, pipe: Pipe, msg: TradeStatus, cause: str) -> None:
        """A trade settled (or moved on, or failed): its fills move from pending to confirmed, or
        are voided. Applied once: a status already known changes nothing, and one that comes
        before its fill waits in the ledger for it."""
        _, view, _ = await self._load(msg.token_id)
        before = view.ledger
        after = before.with_status(msg.trade_id, msg.status)
        if after.statuses == before.statuses:
            logger.debug("{}: trade {} {} already known", msg.token_id, msg.trade_id, msg.status)
            return
        view.write(pipe, self.keys.ledger(msg.token_id), after)
        if not after.fills_of(msg.trade_id):  # its fill has not come yet: it takes the status when it does
            return
        old, new = await self._book(pipe, msg.token_id, before, after, cause, {})
        if new.matched.position < -DUST <= old.matched.position and not self.settings().risk.allow_short:
            self.store.event(pipe, "risk.short_position", msg.token_id,
                             f"position {new.matched.position:.6f} after trade {msg.trade_id} {msg.status} while "
                             "risk.allow_short is false", level="error", cause=cause, worker=msg.worker)

    async def on_redemption(self, pipe: Pipe, msg: Redemption, cause: str) -> None:
        """The redeemer redeemed the token's position in a resolved market (its ``pf:redeemable``
        entry). Booked from the token's own ledger: its matched position leaves as one entry at the
        payout price, CONFIRMED (the redeem paid the wallet's settled balance, and the redeemer waited
        for the token's trades to settle), so the position goes to 0 and payout - cost into realised
        PnL (and the day's). The entry goes, the token says so (``redeemed_*``), and
        ``position.redeemed`` names what was booked beside what the venue held and paid."""
        fields, view, _ = await self._load(msg.token_id)
        pipe.hdel(self.keys.redeemable(), msg.token_id)
        if not fields or fields.get("redeemed_at"):  # unknown, or booked already (a market resolves once)
            logger.info("redemption of token {} not booked: {}", msg.token_id, "booked already" if fields else "unknown")
            return
        before = view.ledger
        old = settle(before)
        shares, price = old.matched.position, (1.0 if msg.won else 0.0)
        after = before
        if abs(shares) > EPS:
            after = before.with_fill(LedgerFill(msg.id, "", "SELL" if shares > 0 else "BUY", price, abs(shares), 0.0,
                                                msg.ts_event or now_ms(), int(fields.get("epoch") or 0), "CONFIRMED",
                                                cause))
            view.write(pipe, self.keys.ledger(msg.token_id), after)
        payout = round(shares * price, 6)
        _, new = await self._book(pipe, msg.token_id, before, after, cause, {
            "redeemed_at": str(now_ms()), "redeemed_shares": f"{shares:.6f}", "redeemed_payout": f"{payout:.6f}",
            "redeem_tx": msg.tx_hash})
        differs = abs(msg.shares - shares) >= DUST
        self.store.event(pipe, "position.redeemed", msg.token_id,
                         f"{shares:g} shares redeemed for ${payout:g} ({'won' if msg.won else 'lost'})"
                         + (f"; the wallet held {msg.shares:g} and was paid ${msg.payout:g}" if differs else ""),
                         level="warning" if differs else "info", cause=cause, condition_id=msg.condition_id,
                         won=msg.won, shares=shares, payout=payout,
                         pnl=round(new.matched.realized - old.matched.realized, 6), venue_shares=msg.shares,
                         venue_payout=msg.payout, tx_hash=msg.tx_hash)

    async def _load(self, token_id: str, with_parked: bool = False) -> tuple[dict[str, str], StoredLedger, str | None]:
        """The token hash, its ledger and (``with_parked``) its parked close: one round trip."""
        async with self.redis.pipeline(transaction=False) as reads:
            reads.hgetall(self.keys.token(token_id))
            reads.hgetall(self.keys.ledger(token_id))
            if with_parked:
                reads.hget(self.keys.closing(), token_id)
            fields, stored, *parked = await reads.execute()
        return fields, StoredLedger(stored, Ledger.from_hash(stored, fields)), parked[0] if parked else None

    async def _book(self, pipe: Pipe, token_id: str, before: Ledger, after: Ledger, cause: str,
                    extra: dict[str, str]) -> tuple[Totals, Totals]:
        """Write what the ledger adds up to now: the token's figures, its exposure, the days whose
        realised PnL moved, and an event per trade it voids."""
        old, new = settle(before), settle(after)
        pipe.hset(self.keys.token(token_id), mapping={**new.fields(), **extra})
        await self.risk.set_exposure(pipe, token_id, new.exposure)
        for day, delta in daily_changes(old, new).items():
            await self._book_daily_pnl(pipe, token_id, day, delta, cause)
        for t in newly_failed(old, new, after):
            self.store.event(pipe, "trade.failed", token_id,
                             f"trade {t.trade_id} failed at settlement: {t.side} {t.size:g} @ {t.price:g} voided "
                             f"(position {new.matched.position:g}, {new.matched.position - old.matched.position:+g})",
                             level="warning", cause=f"{cause}:{t.trade_id}", trade_id=t.trade_id, side=t.side,
                             size=t.size, price=t.price, fills=list(t.fills))
        return old, new

    async def _settle_close(self, pipe: Pipe, rep: SessionReport, view: StoredLedger | None, overdue: bool,
                            cause: str) -> None:
        """At a session's close the ledger holds every fill of it. The report's own position is
        compared with the ledger's: applied overdue (fills missing), the difference is booked as
        shares that came without fills; otherwise the fills are the last word and a difference is
        a warning. The settled head of the ledger is then folded into its base."""
        if view is None:
            _, view, _ = await self._load(rep.token_id)
        before = view.ledger
        totals = settle(before)
        gap = round(rep.position - totals.matched.position, 6)
        after = before
        if overdue and abs(gap) > EPS:
            after = before.with_adjustment(Adjustment(rep.epoch, cause, gap))
        elif abs(gap) >= DUST:
            self.store.event(pipe, "session.position_differs", rep.token_id,
                             f"the closed report of epoch {rep.epoch} says {rep.position:g} shares, its fills "
                             f"{totals.matched.position:g} ({totals.pending:+g} pending): the fills stand",
                             level="warning", cause=cause, reported=rep.position, booked=totals.matched.position)
        await self._book(pipe, rep.token_id, before, after, cause, {})
        # compacting changes no figure, so it is written after booking (the day totals compare
        # ledgers that still hold the same entries)
        view.write(pipe, self.keys.ledger(rep.token_id), compact(after))

    async def _book_daily_pnl(self, pipe: Pipe, token_id: str, day: str, realized_delta: float, cause: str) -> None:
        """Add realised PnL to its UTC day; crossing the daily loss limit sets the kill switch."""
        max_daily_loss = self.settings().risk.max_daily_loss
        before = float(await self.redis.hget(self.keys.pnl_daily(), day) or 0.0)
        pipe.hincrbyfloat(self.keys.pnl_daily(), day, realized_delta)
        after = before + realized_delta
        if -after >= max_daily_loss > -before:
            # Crossing the daily loss limit: no new sessions (decide_buy refuses them) and no new risk.
            pipe.set(self.keys.halt(), "reduce_only", nx=True)
            self.store.event(pipe, "risk.daily_loss_limit", token_id,
                             f"realised {after:.2f} today reached -{max_daily_loss:.2f}: kill switch "
                             "set to reduce_only (resume with `polyfleet resume`)", level="error", cause=cause)
