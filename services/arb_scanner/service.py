"""ArbScannerService: the arb_scanner's I/O (E1-E4). The decisions live in detect.py,
catalogue.py, tracker.py and risk.py; this class feeds them and writes what they decide.

* Catalogue: Gamma ``/events`` pages -> :mod:`catalogue` -> ``pf:arb:catalogue`` (replaced in one
  MULTI) every ``arbitrage.catalogue_refresh_sec``; the tokens go into ``pf:gw:want:arb_scanner``
  (+ ``pf:gw:notify``) so the gateway streams them.
* Ticks: one PSUBSCRIBE on ``pf:tick:*``; each tick re-evaluates the sets its token belongs to on
  top of book (a few float operations when nothing is near). After a pub/sub reconnect every
  token's ``pf:book:{token}`` hash is re-read.
* Depth: the gateway keeps top of book only. When a set crosses its threshold, the legs' full
  books come from the venue's ``POST /books`` (one request for every leg, at most once per
  ``depth_min_interval_sec`` per set); the size then comes from walking them (docs/arbitrage.md
  "Why depth comes from REST").
* Opportunities and near misses go to ``pf:opportunities`` (:class:`shared.messages.Opportunity`)
  when they open, change materially or close (:mod:`tracker`); a rescan every
  ``rescan_interval_sec`` closes what a stale or silent feed left open.
* Execution (``arbitrage.execute``): one at a time, after a fresh REST book and the risk check;
  results are audited on ``pf:events`` (``arb.executed``) and booked in ``pf:arb:*``.
* Resolution (with execution on): sets held to resolution (``pf:arb:held``) are checked every
  ``arbitrage.resolution_check_sec`` against the CLOB ``/markets/{condition_id}`` winner flags;
  a resolved set is redeemed through the Ctf and booked (:mod:`resolve` decides, ``arb.redeemed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.arb_scanner import catalogue, risk
from services.arb_scanner.budget import FleetBudget
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.ctf import Ctf, CtfError, CtfHalt, check_execution_mode, make_ctf
from services.arb_scanner.detect import (
    EPS,
    Evaluation,
    Kind,
    Leg,
    Level,
    Params,
    ScoreInputs,
    Verdict,
    evaluate,
    quick_edge,
    score,
)
from services.arb_scanner.execute import ExecReport, Executor
from services.arb_scanner.resolve import HeldSet, MarketState, Resolution, decide, market_state, settled_exposure
from services.arb_scanner.tracker import Emit, Tracker
from shared.clock import now_ms
from shared.config import Settings, load_secrets
from shared.keys import REQUESTER_ARB_SCANNER, STREAM_MAXLEN
from shared.messages import AuditEvent, Opportunity, stable_id
from shared.redisio.health import beat
from shared.redisio.streams import add_message
from shared.service import RedisService
from shared.ticks import Tick

SERVICE = "arb_scanner"
GAMMA_PAGE = 500
LATENCY_WINDOW = 4096


def _levels(raw: Any, best_high: bool) -> tuple[Level, ...]:
    out = []
    for lv in raw or []:
        try:
            p, s = float(lv["price"]), float(lv["size"])
        except (KeyError, TypeError, ValueError):
            continue
        if s > 0:
            out.append((p, s))
    return tuple(sorted(out, reverse=best_high))


def _pct(values: deque[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


class ArbScannerService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.cfg = settings.arbitrage
        self.kinds = {Kind(k) for k in self.cfg.kinds}
        self.params = Params(self.cfg.min_edge, self.cfg.haircut, self.cfg.near_miss_band, self.cfg.min_notional)
        self.tracker = Tracker(self.cfg.material_edge_change, self.cfg.material_size_change)
        self.sets: dict[str, ArbSet] = {}
        self.by_token: dict[str, list[tuple[ArbSet, int]]] = {}
        self.tops: dict[str, Tick] = {}
        self.tick_at: dict[str, float] = {}  # monotonic arrival of each token's latest tick
        self.books: dict[str, tuple[tuple[Level, ...], tuple[Level, ...], float]] = {}  # bids, asks, fetched at
        self.depth_asked: dict[str, float] = {}
        self.depth_wanted: set[str] = set()
        self.depth_wake = asyncio.Event()
        self.exec_queue: asyncio.Queue[tuple[str, Kind]] = asyncio.Queue()
        self.exec_pending: set[tuple[str, Kind]] = set()
        self.http: httpx.AsyncClient | None = None
        self.executor: Executor | None = None
        self.ctf: Ctf | None = None
        self.budget: FleetBudget | None = None
        self.gateway_alive = True
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.stats = {"ticks": 0, "bad_ticks": 0, "evaluations": 0, "published": 0, "opportunities_open": 0,
                      "depth_fetches": 0, "depth_errors": 0, "executions": 0, "execution_refusals": 0,
                      "catalogue_sets": 0, "catalogue_skipped": 0, "catalogue_errors": 0, "reconnects": 0,
                      "held_sets": 0, "redeemed": 0, "redeem_errors": 0}

    # ---- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.connect_redis()
        try:
            if not self.cfg.enabled:
                logger.info("arbitrage.enabled is false: arb_scanner idles (heartbeat only)")
                while not await self.sleep_unless_stopped(self.settings.monitoring.heartbeat_interval_sec):
                    await self._heartbeat("disabled")
                return
            self.http = httpx.AsyncClient(timeout=10.0)
            if self.cfg.execute:
                await self._setup_execution()
            while not self.stopping and not await self.refresh_catalogue():
                await self.sleep_unless_stopped(5.0)
            tasks = [asyncio.create_task(c) for c in (
                self._catalogue_loop(), self._listen(), self._rescan_loop(), self._depth_loop(),
                self._heartbeat_loop(), self._exec_loop(), self._resolution_loop())]
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self.http is not None:
                await self.http.aclose()
            if self.ctf is not None:
                await self.ctf.aclose()
            await self.close_redis()

    async def _setup_execution(self) -> None:
        from shared.polymarket.clob import make_clob_client  # the SDK only when trading
        from shared.polymarket.taker import TakerOrders

        check_execution_mode(self.settings)  # before the SDK client: paper mode must never reach the venue
        secrets = load_secrets()
        client = await asyncio.to_thread(make_clob_client, self.settings, secrets)
        orders = TakerOrders(client)
        self.ctf = make_ctf(self.settings, orders.address, secrets)
        await self._approve()
        self.executor = Executor(orders, self.ctf, self.cfg.order_type, self.cfg.unwind_slippage)
        self.budget = FleetBudget(self.redis, self.keys, self.settings.risk.max_notional_total)
        logger.warning("arbitrage execution is ON ({} mode, account {})", self.settings.mode, orders.address)

    async def _approve(self) -> None:
        """On chain, the allowances the position calls need (docs/arbitrage.md "Approvals"): read
        first, send only what is missing. A failure is reported and execution goes on: a merge
        without them reverts, which the executor already handles (the sets are held)."""
        from services.arb_scanner.chain_ctf import ChainCtf

        if not isinstance(self.ctf, ChainCtf) or not self.cfg.chain.approve:
            return
        try:
            sent = await self.ctf.ensure_approvals()
        except CtfError as exc:  # rejected or unknown alike: reported, and execution goes on
            logger.error("approvals not in place: {}", exc)
            await self._audit("arb.approvals", "error", "", str(exc), {})
            return
        if sent:
            logger.warning("approvals sent: {}", sent)
            await self._audit("arb.approvals", "warning", "", f"{len(sent)} sent", {"sent": sent})

    # ---- catalogue ------------------------------------------------------------------------------
    async def fetch_events(self) -> list[Any]:
        assert self.http is not None
        rows: list[Any] = []
        base = self.settings.polymarket.gamma_url.rstrip("/")
        while len(rows) < self.cfg.catalogue_max_events:
            resp = await self.http.get(f"{base}/events", params={"closed": "false", "active": "true",
                                                                  "limit": GAMMA_PAGE, "offset": len(rows)})
            resp.raise_for_status()
            page = resp.json()
            if not isinstance(page, list):
                raise ValueError(f"Gamma /events answered a {type(page).__name__}, not an array")
            rows += page
            if len(page) < GAMMA_PAGE:
                break
        return rows[:self.cfg.catalogue_max_events]

    async def refresh_catalogue(self) -> bool:
        try:
            rows = await self.fetch_events()
        except (httpx.HTTPError, ValueError) as exc:
            self.stats["catalogue_errors"] += 1
            logger.warning("catalogue refresh failed: {}", exc)
            return False
        sets, skipped = catalogue.build(rows, self.kinds, self.cfg.min_liquidity)
        await self.install_catalogue(sets)
        self.stats["catalogue_skipped"] = len(skipped)
        for why in skipped[:5]:
            logger.info("catalogue skipped: {}", why)
        return True

    async def install_catalogue(self, sets: list[ArbSet]) -> None:
        r, k = self.redis, self.keys
        wanted = {t for s in sets for t in s.tokens}
        fresh = {s.id for s in sets}
        for set_id, kind in self.tracker.episodes():  # a set that left the catalogue closes its episodes
            old = self.sets.get(set_id)
            if set_id not in fresh and old is not None:
                none = Evaluation(Kind(kind), Verdict.NONE, old.tokens, (), 0.0, 0.0, 0.0,
                                  reason="market left the catalogue (closed or no longer accepting orders)")
                if (emit := self.tracker.observe(set_id, none, now_ms())) is not None:
                    await self.publish(old, emit, False, None)
        async with r.pipeline(transaction=True) as p:
            p.delete(k.arb_catalogue())
            for i in range(0, len(sets), 1000):
                p.hset(k.arb_catalogue(), mapping={s.id: s.to_json() for s in sets[i:i + 1000]})
            await p.execute()
        have = set(await r.smembers(k.gw_want(REQUESTER_ARB_SCANNER)))
        new, gone = wanted - have, have - wanted
        if new or gone:
            async with r.pipeline(transaction=True) as p:
                if new:
                    p.sadd(k.gw_want(REQUESTER_ARB_SCANNER), *new)
                if gone:
                    p.srem(k.gw_want(REQUESTER_ARB_SCANNER), *gone)
                p.publish(k.gw_notify(), "arb_scanner")
                await p.execute()
        self.sets = {s.id: s for s in sets}
        self.by_token = catalogue.index(sets)
        for t in gone:
            self.tops.pop(t, None)
        self.stats["catalogue_sets"] = len(sets)
        await self.reread_books(sorted(new))
        logger.info("catalogue: {} sets over {} tokens ({} new, {} gone)", len(sets), len(wanted), len(new), len(gone))

    async def reread_books(self, tokens: list[str]) -> None:
        for i in range(0, len(tokens), 500):
            chunk = tokens[i:i + 500]
            async with self.redis.pipeline(transaction=False) as p:
                for t in chunk:
                    p.hgetall(self.keys.book(t))
                hashes = await p.execute()
            for h in hashes:
                tick = Tick.from_hash(h)
                if tick is not None:
                    await self.on_tick(tick, time.perf_counter())

    async def _catalogue_loop(self) -> None:
        while not await self.sleep_unless_stopped(self.cfg.catalogue_refresh_sec):
            await self.refresh_catalogue()

    # ---- ticks ----------------------------------------------------------------------------------
    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(self.keys.tick_pattern())
        await self.reread_books(sorted(self.by_token))  # anything published before we subscribed
        try:
            while not self.stopping:
                try:
                    msg = await pubsub.get_message(timeout=0.5)
                except (RedisError, ConnectionError, OSError) as exc:
                    self.stats["reconnects"] += 1
                    logger.warning("tick subscription lost ({}); re-reading every book", exc)
                    await asyncio.sleep(0.5)
                    with contextlib.suppress(RedisError, OSError):
                        await self.reread_books(sorted(self.by_token))
                    continue
                if msg is None or msg.get("type") != "pmessage":
                    continue
                arrived = time.perf_counter()
                try:
                    tick = Tick.from_json(msg["data"])
                except (ValueError, KeyError, TypeError):
                    self.stats["bad_ticks"] += 1
                    continue
                await self.on_tick(tick, arrived)
        finally:
            await pubsub.aclose()

    async def on_tick(self, tick: Tick, arrived: float) -> None:
        t = tick.token_id
        if t not in self.by_token:
            return
        old = self.tops.get(t)
        if old is not None and tick.seq <= old.seq and tick.ts_recv <= old.ts_recv:
            return
        self.stats["ticks"] += 1
        self.tops[t] = tick
        self.tick_at[t] = arrived
        for s, _ in self.by_token[t]:
            await self.evaluate_set(s, arrived)

    # ---- evaluation -----------------------------------------------------------------------------
    def _legs(self, s: ArbSet, kind: Kind) -> tuple[tuple[Leg, ...], bool] | None:
        """Legs from the venue's books when they are newer than every leg's latest tick, else from
        the ticks' top levels; None when a leg has no usable price."""
        buys = kind.buys
        from_books = all(t in self.books and self.books[t][2] >= self.tick_at.get(t, math.inf) for t in s.tokens)
        legs = []
        for i, t in enumerate(s.tokens):
            if from_books:
                bids, asks, _ = self.books[t]
                levels = asks if buys else bids
            else:
                tick = self.tops.get(t)
                if tick is None or tick.stale:
                    return None
                price, size = (tick.ask, tick.ask_size) if buys else (tick.bid, tick.bid_size)
                levels = ((price, size),) if price is not None and size > 0 else ()
            legs.append(Leg(t, levels, s.fees[i], s.min_order_size))
        return tuple(legs), from_books

    def _quick(self, s: ArbSet, kind: Kind) -> float | None:
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
            edge = self._quick(s, kind)
            near = edge is not None and edge - self.params.min_edge > -self.params.near_miss_band - EPS
            if not near and key not in self.tracker.open:
                continue  # the common case: nothing near, nothing open
            self.stats["evaluations"] += 1
            got = self._legs(s, kind) if near else None
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
                    self._want_depth(s)
                elif self.executor is not None and self._may_execute(s, kind):
                    self._queue_execution(s, kind)

    def _may_execute(self, s: ArbSet, kind: Kind) -> bool:
        if kind is Kind.NEGRISK_BUY_ALL and not self.cfg.hold_to_resolution:
            return False
        return s.end_ts is None or s.end_ts - time.time() >= self.cfg.min_seconds_to_end

    def _want_depth(self, s: ArbSet) -> None:
        if time.monotonic() - self.depth_asked.get(s.id, -math.inf) < self.cfg.depth_min_interval_sec:
            return
        self.depth_asked[s.id] = time.monotonic()
        self.depth_wanted.add(s.id)
        self.depth_wake.set()

    async def fetch_books(self, tokens: tuple[str, ...]) -> bool:
        assert self.http is not None
        asked = time.perf_counter()
        try:
            resp = await self.http.post(self.settings.polymarket.clob_url.rstrip("/") + "/books",
                                        json=[{"token_id": t} for t in tokens])
            resp.raise_for_status()
            rows = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.stats["depth_errors"] += 1
            logger.warning("depth fetch failed: {}", exc)
            return False
        self.stats["depth_fetches"] += 1
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("asset_id") in tokens:
                # stamped with when we asked: a tick that arrives during the request is newer
                self.books[str(row["asset_id"])] = (_levels(row.get("bids"), True), _levels(row.get("asks"), False),
                                                    asked)
        return all(t in self.books and self.books[t][2] == asked for t in tokens)

    async def _depth_loop(self) -> None:
        while not self.stopping:
            await self.depth_wake.wait()
            self.depth_wake.clear()
            todo, self.depth_wanted = self.depth_wanted, set()
            for set_id in todo:
                s = self.sets.get(set_id)
                if s is not None and await self.fetch_books(s.tokens):
                    await self.evaluate_set(s)

    async def _rescan_loop(self) -> None:
        while not await self.sleep_unless_stopped(self.cfg.rescan_interval_sec):
            try:
                self.gateway_alive = bool(await self.redis.exists(self.keys.gw_alive()))
            except (RedisError, OSError):
                continue
            for set_id in dict.fromkeys(sid for sid, _ in self.tracker.episodes()):
                s = self.sets.get(set_id)
                if s is not None:
                    await self.evaluate_set(s)

    # ---- publishing -----------------------------------------------------------------------------
    async def publish(self, s: ArbSet, emit: Emit, from_books: bool, arrived: float | None) -> None:
        ev = emit.evaluation
        top_size = 0.0
        if ev.top_prices:
            sizes = [(self.tops[t].ask_size if ev.kind.buys else self.tops[t].bid_size)
                     for t in s.tokens if t in self.tops]
            top_size = min(sizes) if sizes else 0.0
        to_end = None if s.end_ts is None else s.end_ts - time.time()
        sc = score(ScoreInputs(ev.profit, ev.edge, ev.size, top_size, to_end, ev.kind is Kind.NEGRISK_BUY_ALL))
        ts_event = max((self.tops[t].ts_event for t in s.tokens if t in self.tops), default=now_ms())
        msg = Opportunity(
            id=stable_id(emit.opp_id, emit.status, now_ms(), self.stats["published"]), ts_event=ts_event,
            ts_init=now_ms(), producer=f"{SERVICE}:{self.instance}", opp_id=emit.opp_id, status=emit.status,
            verdict=ev.verdict.value, kind=ev.kind.value, market=s.id, title=s.title[:200], tokens=list(s.tokens),
            prices=list(ev.top_prices), limits=list(ev.limits), top_sum=round(ev.top_sum, 6),
            fees=round(ev.top_fees, 6), edge=round(ev.top_edge, 6), min_edge=self.params.min_edge, size=ev.size,
            depth=round(ev.depth, 4), depth_source="book" if from_books else "top", profit=round(ev.profit, 6),
            score=sc, levels_used=ev.levels_used, end_date=s.end_date, reason=ev.reason)
        await add_message(self.redis, self.keys.opportunities(), msg, STREAM_MAXLEN["opportunities"])
        self.stats["published"] += 1
        self.stats["opportunities_open"] = len(self.tracker.open)
        if arrived is not None:
            self.latency_ms.append((time.perf_counter() - arrived) * 1000)
        logger.info("opportunity {} {} {} {}: edge {:.4f} size {:g} profit {:.4f} ({})", emit.status, ev.kind,
                    ev.verdict, s.id[:12], ev.top_edge, ev.size, ev.profit, "book" if from_books else "top")

    # ---- execution ------------------------------------------------------------------------------
    def _queue_execution(self, s: ArbSet, kind: Kind) -> None:
        if (s.id, kind) not in self.exec_pending:
            self.exec_pending.add((s.id, kind))
            self.exec_queue.put_nowait((s.id, kind))

    async def _risk_state(self, s: ArbSet) -> risk.RiskState:
        r, k = self.redis, self.keys
        now = now_ms()
        async with r.pipeline(transaction=False) as p:
            p.hget(k.arb_exposure(), s.id)
            p.hget(k.arb_exposure(), "_total")
            p.zcount(k.arb_trades(), now - 60_000, "+inf")
            p.hget(k.arb_pnl_daily(), datetime.now(UTC).strftime("%Y-%m-%d"))
            p.get(k.halt())
            held, total, trades, pnl, halt = await p.execute()
        return risk.RiskState(float(held or 0), float(total or 0), int(trades or 0), float(pnl or 0), halt or "")

    async def _exec_loop(self) -> None:
        while not self.stopping:
            set_id, kind = await self.exec_queue.get()
            try:
                await self.execute_one(set_id, kind)
            except Exception:
                logger.exception("arbitrage execution of {} {} failed", kind, set_id[:12])
            finally:
                self.exec_pending.discard((set_id, kind))

    async def execute_one(self, set_id: str, kind: Kind) -> None:
        s = self.sets.get(set_id)
        if s is None or self.executor is None:
            return
        limits = risk.Limits(self.cfg.max_notional_per_market, self.cfg.max_notional_total,
                             self.cfg.max_trades_per_minute, self.cfg.max_daily_loss)
        state = await self._risk_state(s)
        decision = risk.check(limits, state)
        if decision.allowed and self.budget is not None:  # the fleet's total, shared with the maker workers
            fleet_room = await self.budget.room(s.id) - state.held_market
            decision = risk.Decision(fleet_room > EPS, min(decision.room, fleet_room),
                                     "" if fleet_room > EPS else "fleet risk budget (risk.max_notional_total) in use")
        if not decision.allowed:
            self.stats["execution_refusals"] += 1
            logger.info("arbitrage {} {} not executed: {}", kind, set_id[:12], decision.reason)
            return
        if not await self.fetch_books(s.tokens):  # trade on the venue's book of this moment
            return
        got = self._legs(s, kind)
        if got is None:
            return
        legs, _ = got
        probe = evaluate(kind, legs, self.params)
        cost_per_set = 1.0 if not kind.buys else max(probe.cost / probe.size if probe.size else 1.0, EPS)
        params = Params(self.params.min_edge, self.params.haircut, self.params.near_miss_band,
                        self.params.min_notional, risk.max_sets(decision.room, cost_per_set))
        ev = evaluate(kind, legs, params)
        if ev.verdict is not Verdict.OPPORTUNITY:
            logger.info("arbitrage {} {} gone before execution: {}", kind, set_id[:12], ev.reason or ev.verdict)
            return
        if self.budget is not None:
            # the most the legs can pay (every leg at its limit, plus fees); a split costs $1 a set
            spend = sum(ev.limits) * ev.size + ev.fees if kind.buys else ev.size
            claim = await self.budget.claim(s.id, state.held_market + spend)
            if not claim.ok:
                self.stats["execution_refusals"] += 1
                logger.info("arbitrage {} {} not executed: fleet risk budget ({:.2f} committed)", kind,
                            set_id[:12], claim.committed)
                return
        exec_id = stable_id(SERVICE, set_id, kind, now_ms())
        await self.redis.zadd(self.keys.arb_trades(), {exec_id: now_ms()})
        self.stats["executions"] += 1
        logger.warning("executing {} on {}: {:g} sets, expected profit {:.4f}", kind, set_id[:12], ev.size, ev.profit)
        try:
            rep = await self.executor.run(s, ev)
        except CtfError as exc:  # an order or a chain call with an unknown outcome (CtfHalt: the executor
            # handles every CtfRejected itself, so one reaching here is as unknown): stop until a person looks
            logger.error("arbitrage stopped: {}", exc)
            self.executor = None
            report = exc.report if isinstance(exc, CtfHalt) else None
            await self._audit("arb.halted", "error", set_id, str(exc),
                              {"kind": str(kind), **({"execution": report} if report else {})})
            return
        await self.record(exec_id, s, rep.detail(), rep.pnl, rep.held_cost)
        if rep.held_sets > EPS:
            await self._hold(s, rep)
        if self.budget is not None:  # the claim comes down to what is still held (an unknown outcome keeps it)
            await self.budget.settle(s.id, state.held_market + rep.held_cost)

    async def record(self, exec_id: str, s: ArbSet, detail: dict[str, Any], pnl: float, held: float) -> None:
        r, k = self.redis, self.keys
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        async with r.pipeline(transaction=True) as p:
            if held:
                p.hincrbyfloat(k.arb_exposure(), s.id, held)
                p.hincrbyfloat(k.arb_exposure(), "_total", held)
            p.hincrbyfloat(k.arb_pnl_daily(), day, pnl)
            p.zremrangebyscore(k.arb_trades(), "-inf", now_ms() - 3_600_000)
            await p.execute()
        level = "info" if detail.get("status") == "done" else "warning"
        await self._audit("arb.executed", level, s.id, str(detail.get("status")), {"exec_id": exec_id, **detail})

    # ---- sets held to resolution ---------------------------------------------------------------
    async def _hold(self, s: ArbSet, rep: ExecReport) -> None:
        """Remember the complete sets kept, so their resolution can be redeemed and booked."""
        raw = await self.redis.hget(self.keys.arb_held(), s.id)
        held = (HeldSet.from_json(raw).add(rep.held_sets, rep.held_sets_cost) if raw
                else HeldSet.of(s, str(rep.kind), rep.held_sets, rep.held_sets_cost))
        await self.redis.hset(self.keys.arb_held(), s.id, held.to_json())

    async def _resolution_loop(self) -> None:
        while not await self.sleep_unless_stopped(self.cfg.resolution_check_sec):
            if self.ctf is None:  # execution halted: a person looks before anything moves
                continue
            try:
                await self.check_resolutions()
            except Exception:  # the loop outlives one bad check; the next retries
                logger.exception("resolution check failed")

    async def _market_states(self, condition_ids: tuple[str, ...]) -> dict[str, MarketState]:
        assert self.http is not None
        out: dict[str, MarketState] = {}
        base = self.settings.polymarket.clob_url.rstrip("/")
        for cid in dict.fromkeys(condition_ids):
            try:
                resp = await self.http.get(f"{base}/markets/{cid}")
                resp.raise_for_status()
                state = market_state(resp.json())
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("market {} unreadable for resolution: {}", cid[:12], exc)
                continue
            if state is not None:
                out[cid] = state
        return out

    async def check_resolutions(self) -> None:
        held = {sid: HeldSet.from_json(raw) for sid, raw in (await self.redis.hgetall(self.keys.arb_held())).items()}
        self.stats["held_sets"] = len(held)
        for h in held.values():
            res = decide(h, await self._market_states(h.condition_ids))
            if res is not None:
                await self._redeem(h, res)

    async def _redeem(self, h: HeldSet, res: Resolution) -> None:
        assert self.ctf is not None
        for rd in res.redeems:
            try:
                tx = await self.ctf.redeem(rd.condition_id, rd.amounts, h.neg_risk)
            except CtfError as exc:  # rejected or halt alike: the claim stays, the next check retries
                self.stats["redeem_errors"] += 1
                logger.warning("redeem of {} ({}) not done: {}; retrying later", h.set_id[:12], rd.condition_id[:12],
                               exc)
                return
            logger.info("redeemed {} of set {}: tx {}", rd.condition_id[:12], h.set_id[:12], tx)
            h = h.with_redeemed(rd.condition_id)  # a retry after a later failure skips it
            await self.redis.hset(self.keys.arb_held(), h.set_id, h.to_json())
        r, k = self.redis, self.keys
        exposure = float(await r.hget(k.arb_exposure(), h.set_id) or 0)
        left = settled_exposure(exposure, h.cost)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        async with r.pipeline(transaction=True) as p:  # booked once: the held record goes in the same step
            p.hdel(k.arb_held(), h.set_id)
            if left > 0:
                p.hset(k.arb_exposure(), h.set_id, repr(left))
            else:
                p.hdel(k.arb_exposure(), h.set_id)
            p.hincrbyfloat(k.arb_exposure(), "_total", -(exposure - left))
            p.hincrbyfloat(k.arb_pnl_daily(), day, res.pnl)
            await p.execute()
        if self.budget is not None:
            await self.budget.settle(h.set_id, left)
        self.stats["redeemed"] += 1
        logger.warning("set {} resolved: {:g} sets paid {:.4f}, PnL {:.4f}", h.set_id[:12], h.sets, res.payout, res.pnl)
        await self._audit("arb.redeemed", "info", h.set_id, "resolved", {
            "kind": h.kind, "sets": h.sets, "cost": h.cost, "payout": res.payout, "pnl": res.pnl,
            "winners": list(res.winners), "conditions": list(h.condition_ids), "exposure_left": left})

    async def _audit(self, kind: str, level: str, market: str, reason: str, detail: dict[str, Any]) -> None:
        msg = AuditEvent(id=stable_id(SERVICE, kind, market, now_ms()), ts_event=now_ms(), ts_init=now_ms(),
                         producer=f"{SERVICE}:{self.instance}", kind=kind, level=level,  # type: ignore[arg-type]
                         reason=reason, detail={"market": market, **detail})
        await add_message(self.redis, self.keys.events(), msg, STREAM_MAXLEN["events"])

    # ---- health ---------------------------------------------------------------------------------
    async def _heartbeat(self, state: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await beat(self.redis, self.keys, SERVICE, self.instance, self.settings.monitoring.heartbeat_interval_sec,
                       {"state": state, **self.stats, "tokens": len(self.by_token), "execute": self.executor is not None,
                        "detect_p50_ms": _pct(self.latency_ms, 0.5), "detect_p99_ms": _pct(self.latency_ms, 0.99)})

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._heartbeat("running")
            if await self.sleep_unless_stopped(self.settings.monitoring.heartbeat_interval_sec):
                return
