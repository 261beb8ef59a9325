"""A token session's start: from the last owner's snapshot, then the venue's word (docs/strategy.md
section 10).

The snapshot (``pf:session:{token}``) gives the strategy's whole state and the trades its fills came
from that had not settled yet; the new owner follows those on (one may have FAILED meanwhile: it is
voided before anything is compared). Then the venue wins: orphan orders are cancelled and its
position (settled, plus what the pending trades bring or take) replaces the snapshot's; a
difference is a fill nobody recorded and is booked as one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from loguru import logger

from services.maker_worker.trades import PendingTrades
from services.maker_worker.volatility import VolatilityStrategy
from shared.clock import now_ms
from shared.messages import Fill, stable_id

if TYPE_CHECKING:
    from services.maker_worker.session import TokenSession


async def resume(s: TokenSession) -> None:
    """Start from the last owner's snapshot, then trust the venue: cancel orphans, read the position."""
    snap: dict[str, str] = await s.r.hgetall(s.keys.session(s.token_id))
    if snap.get("strategy"):
        try:
            s.strategy = VolatilityStrategy.restore(json.loads(snap["strategy"]), s.params, s.run_params, s.execution)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("{}: strategy snapshot unusable ({}); starting the strategy afresh", s.token_id, exc)
    elif snap.get("avg_cost"):  # a snapshot without strategy state: keep its cost basis and PnL
        s.strategy.avg_cost = float(snap.get("avg_cost", 0) or 0)
        s.strategy.realized_pnl = float(snap.get("realized_pnl", 0) or 0)
        s.strategy.position = float(snap.get("position", 0) or 0)
    try:
        s.desk.trades.pending = PendingTrades.load(snap.get("trades"))
    except (ValueError, KeyError, TypeError) as exc:  # the venue's balance still tells the position
        logger.warning("{}: pending trades in the snapshot unusable ({}); not followed", s.token_id, exc)
    try:
        s.trims.restore(snap.get("trims"))  # done by the last owner: not again; asked of it: still to do
    except (ValueError, TypeError, AttributeError) as exc:
        logger.warning("{}: partial exits in the snapshot unusable ({}); the START's stand", s.token_id, exc)
    await s.feed.add(s.token_id)
    await s.desk.cancel_orders()
    if s.ex.venue_is_truth:
        await s.desk.trades.refresh()  # settled or FAILED since the last owner's snapshot: voided first
        recorded = s.strategy.position  # what the snapshot, and so the fills, account for
        held = await s.desk.venue_position()
    else:  # a paper account does not survive the worker: the snapshot is the record
        recorded = held = s.strategy.position
        await s.ex.adopt_position(s.token_id, held)
    s.strategy.reconcile(held, now_ms())
    missing = round(held - recorded, 6)
    if abs(missing) >= s.strategy.dust:
        await book_unrecorded(s, missing)
    else:
        await s.snapshot()
    logger.info("{} epoch {}: session up, position {:.2f}, state {}{}", s.token_id, s.epoch, s.position,
                s.strategy.state.value, f", {len(s.desk.trades.pending.trades)} trade(s) pending"
                if s.desk.trades.pending else "")


async def book_unrecorded(s: TokenSession, missing: float, seq: int = 0) -> None:
    """The venue holds ``missing`` shares more (or fewer) than the recorded fills say: the last
    owner died between a fill at the venue and its record, or its resting order filled after it
    died. Book the difference as one fill (at the snapshot's cost basis, else the mid) so the
    orchestrator's position, risk and the next close agree with the venue (hour-soak finding:
    a SELL of what the venue held took pf:token short). ``seq``: the session's later reconciles
    (:meth:`TokenSession.reconcile_with_venue`), each its own fill; 0 is the resume's."""
    _, bid, ask = s.desk.top()
    price = s.avg_cost or ((bid + ask) / 2 if bid and ask else 0.5)
    side = "BUY" if missing > 0 else "SELL"
    if s.strategy.avg_cost <= 0 and s.position >= s.strategy.dust:
        # the strategy's cost basis is the price the books get: with none (no tick yet at resume)
        # any bid would look like profit_pct over it and the position would be sold at once
        s.strategy.avg_cost = price
    logger.warning("{} epoch {}: the venue holds {:+.2f} shares the fills do not record; booked as a {} fill",
                   s.token_id, s.epoch, missing, side)
    await s.snapshot(Fill(
        id=stable_id("reconcile", s.token_id, s.epoch, *([str(seq)] if seq else [])), ts_event=now_ms(), ts_init=now_ms(),
        producer=s.worker_id, token_id=s.token_id, epoch=s.epoch, worker=s.worker_id,
        order_id="", side=side, price=price, size=abs(missing),  # type: ignore[arg-type]
    ))
