"""Tick evaluation (E2, E3): each tick of a catalogue token re-evaluates the sets it belongs to.

* Ticks come through the shared :class:`shared.tickfeed.TickFeed`, one channel per catalogue
  token: a new subscription starts from the token's ``pf:book`` hash, and a ``seq`` gap or a lost
  pub/sub connection makes the feed re-read the hash, so a quiet market cannot leave a set
  evaluated on a top of book that has since moved.
* Top of book first (a few float operations when nothing is near: :func:`detect.quick_edge`);
  only a set near its threshold is walked, on the venue's books (:mod:`depth`) when they are
  newer than every leg's latest tick, else on the ticks' top levels.
* Opportunities and near misses go to ``pf:opportunities`` when they open, change materially or
  close (:mod:`tracker`); a rescan every ``rescan_interval_sec`` closes what a stale or silent
  feed left open.
* An opportunity on the top levels asks for depth; one on the full books is offered to execution
  (:attr:`TickEvaluation.on_opportunity`, which the service wires).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from loguru import logger
from redis.exceptions import RedisError

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.context import ScanContext, sleep_unless
from services.arb_scanner.depth import Depth
from services.arb_scanner.detect import (
    EPS,
    Evaluation,
    Kind,
    Leg,
    Params,
    ScoreInputs,
    Verdict,
    evaluate,
    quick_edge,
    score,
)
from services.arb_scanner.tracker import Emit, Tracker
from shared.clock import now_ms
from shared.keys import STREAM_MAXLEN
from shared.messages import Opportunity, stable_id
from shared.redisio.streams import add_message
from shared.tickfeed import TickFeed
from shared.ticks import Tick

LATENCY_WINDOW = 4096


class TickEvaluation:
    def __init__(self, ctx: ScanContext, depth: Depth) -> None:
        cfg = ctx.cfg
        self.ctx = ctx
        self.depth = depth
        self.params = Params(cfg.min_edge, cfg.haircut, cfg.near_miss_band, cfg.min_notional)
        self.tracker = Tracker(cfg.material_edge_change, cfg.material_size_change)
        self.tick_at: dict[str, float] = {}  # perf_counter arrival of each token's latest tick
        self.gateway_alive = True
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)  # tick in hand -> XADD acknowledged
        self.on_opportunity: Callable[[ArbSet, Kind], None] | None = None  # an opportunity on the full books
        self._feed: TickFeed | None = None

    # ---- the feed -------------------------------------------------------------------------------
    @property
    def feed(self) -> TickFeed:
        """Built on first use: the service's Redis client exists only once it is connected."""
        if self._feed is None:
            self._feed = TickFeed(self.ctx.redis, self.ctx.keys, listener=self.on_tick)
        return self._feed

    @property
    def tops(self) -> dict[str, Tick]:
        """Each followed token's latest tick."""
        return self.feed.latest

    def counters(self) -> dict[str, int]:
        feed = self._feed
        if feed is None:
            return {"bad_ticks": 0, "reconnects": 0, "tick_gaps": 0, "book_rereads": 0}
        return {"bad_ticks": feed.bad, "reconnects": feed.reconnects, "tick_gaps": feed.gaps,
                "book_rereads": feed.rereads}

    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.close()

    async def on_tick(self, tick: Tick, arrived: float) -> None:
        """The feed's listener: every tick it takes (newer than the one held) of a followed token."""
        t = tick.token_id
        if t not in self.ctx.by_token:
            return
        self.ctx.stats["ticks"] += 1
        self.tick_at[t] = arrived
        for s, _ in self.ctx.by_token[t]:
            await self.evaluate_set(s, arrived)

    # ---- evaluation -----------------------------------------------------------------------------
    def legs(self, s: ArbSet, kind: Kind) -> tuple[tuple[Leg, ...], bool] | None:
        """Legs from the venue's books when they are newer than every leg's latest tick, else from
        the ticks' top levels; None when a leg has no usable price."""
        buys = kind.buys
        books = self.depth.books
        from_books = all(t in books and books[t][2] >= self.tick_at.get(t, math.inf) for t in s.tokens)
        legs = []
        for i, t in enumerate(s.tokens):
            if from_books:
                bids, asks, _ = books[t]
                levels = asks if buys else bids
            else:
                tick = self.tops.get(t)
                if tick is None or tick.stale:
                    return None
                price, size = (tick.ask, tick.ask_size) if buys else (tick.bid, tick.bid_size)
                levels = ((price, size),) if price is not None and size > 0 else ()
            legs.append(Leg(t, levels, s.fees[i], s.min_order_size))
        return tuple(legs), from_books

    def quick(self, s: ArbSet, kind: Kind) -> float | None:
        top: list[float | None] = []
        for t in s.tokens:
            tick = self.tops.get(t)
            if tick is None or tick.stale or not self.gateway_alive:
                return None
            top.append(tick.ask if kind.buys else tick.bid)
        return quick_edge(kind, top, s.fees)

    async def evaluate_set(self, s: ArbSet, arrived: float | None = None) -> None:
        for kind in s.kinds:
            key = (s.id, str(kind))
            edge = self.quick(s, kind)
            near = edge is not None and edge - self.params.min_edge > -self.params.near_miss_band - EPS
            if not near and key not in self.tracker.open:
                continue  # the common case: nothing near, nothing open
            self.ctx.stats["evaluations"] += 1
            got = self.legs(s, kind) if near else None
            if got is None:
                ev = Evaluation(kind, Verdict.NONE, s.tokens, (), 0.0, 0.0, edge or 0.0, reason="no price")
                from_books = False
            else:
                legs, from_books = got
                ev = evaluate(kind, legs, self.params, depth_known=from_books)
            emit = self.tracker.observe(s.id, ev, now_ms())
            if emit is not None:
                await self.publish(s, emit, from_books, arrived)
            if ev.verdict is Verdict.OPPORTUNITY:
                if not from_books:
                    self.depth.want(s)
                elif self.on_opportunity is not None:
                    self.on_opportunity(s, kind)

    async def close_left(self, fresh: set[str]) -> None:
        """Close the open episodes of sets that are not in the new catalogue (``fresh`` set ids)."""
        for set_id, kind in self.tracker.episodes():
            old = self.ctx.sets.get(set_id)
            if set_id not in fresh and old is not None:
                none = Evaluation(Kind(kind), Verdict.NONE, old.tokens, (), 0.0, 0.0, 0.0,
                                  reason="market left the catalogue (closed or no longer accepting orders)")
                if (emit := self.tracker.observe(set_id, none, now_ms())) is not None:
                    await self.publish(old, emit, False, None)

    async def rescan(self, stop: asyncio.Event) -> None:
        """Re-evaluate every open episode each ``rescan_interval_sec``, with the gateway's liveness."""
        r, k = self.ctx.redis, self.ctx.keys
        while not await sleep_unless(stop, self.ctx.cfg.rescan_interval_sec):
            try:
                self.gateway_alive = bool(await r.exists(k.gw_alive()))
            except (RedisError, OSError):
                continue
            for set_id in dict.fromkeys(sid for sid, _ in self.tracker.episodes()):
                s = self.ctx.sets.get(set_id)
                if s is not None:
                    await self.evaluate_set(s)
            self.ctx.stats["rescans"] += 1

    # ---- publishing -----------------------------------------------------------------------------
    async def publish(self, s: ArbSet, emit: Emit, from_books: bool, arrived: float | None) -> None:
        ev, tops, stats = emit.evaluation, self.tops, self.ctx.stats
        top_size = 0.0
        if ev.top_prices:
            sizes = [(tops[t].ask_size if ev.kind.buys else tops[t].bid_size) for t in s.tokens if t in tops]
            top_size = min(sizes) if sizes else 0.0
        to_end = None if s.end_ts is None else s.end_ts - time.time()
        sc = score(ScoreInputs(ev.profit, ev.edge, ev.size, top_size, to_end, ev.kind is Kind.NEGRISK_BUY_ALL))
        ts_event = max((tops[t].ts_event for t in s.tokens if t in tops), default=now_ms())
        msg = Opportunity(
            id=stable_id(emit.opp_id, emit.status, now_ms(), stats["published"]), ts_event=ts_event,
            ts_init=now_ms(), producer=self.ctx.producer, opp_id=emit.opp_id, status=emit.status,
            verdict=ev.verdict.value, kind=ev.kind.value, market=s.id, title=s.title[:200], tokens=list(s.tokens),
            prices=list(ev.top_prices), limits=list(ev.limits), top_sum=round(ev.top_sum, 6),
            fees=round(ev.top_fees, 6), edge=round(ev.top_edge, 6), min_edge=self.params.min_edge, size=ev.size,
            depth=round(ev.depth, 4), depth_source="book" if from_books else "top", profit=round(ev.profit, 6),
            score=sc, levels_used=ev.levels_used, end_date=s.end_date, reason=ev.reason)
        await add_message(self.ctx.redis, self.ctx.keys.opportunities(), msg, STREAM_MAXLEN["opportunities"])
        stats["published"] += 1
        stats["opportunities_open"] = len(self.tracker.open)
        if arrived is not None:
            self.latency_ms.append((time.perf_counter() - arrived) * 1000)
        logger.info("opportunity {} {} {} {}: edge {:.4f} size {:g} profit {:.4f} ({})", emit.status, ev.kind,
                    ev.verdict, s.id[:12], ev.top_edge, ev.size, ev.profit, "book" if from_books else "top")
