"""The whole venue in one object: markets, matcher, trade feed, auth, socket hub, faults.

Every mutation goes through here so that the websocket sees exactly what changed: after each one
:meth:`SimState.publish` diffs the public book of the touched tokens against what was last sent.
Everything runs on the event loop thread (routes are ``async def``), so no locks are needed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger

from services.sim_exchange import wire
from services.sim_exchange.accounts import WalletBook
from services.sim_exchange.auth import Authenticator
from services.sim_exchange.balances import Balances
from services.sim_exchange.chainlog import ChainLog, fill_logs
from services.sim_exchange.contracts import Contracts
from services.sim_exchange.ctf import Ctf
from services.sim_exchange.environment import SimEnvironment
from services.sim_exchange.faults import Faults
from services.sim_exchange.feed import TradeFeed
from services.sim_exchange.gamma import GammaOverrides
from services.sim_exchange.lifecycle import Lifecycle, last_trade_hash
from services.sim_exchange.livedata import LiveHub
from services.sim_exchange.market import MarketSim, fill_ladder, set_levels, snap
from services.sim_exchange.market_rules import apply_rules, draw_rules
from services.sim_exchange.matching import Fill, Matcher, Order, OrderRequest
from services.sim_exchange.negrisk import SimEvent, make_events, step_event
from services.sim_exchange.signatures import OrderSigners, exchange_for
from services.sim_exchange.ws import Hub
from services.sim_exchange.wsload import WsLoad
from shared.config import SimExchangeSection

Levels = tuple[dict[float, float], dict[float, float]]


class SimState:
    def __init__(self, cfg: SimExchangeSection, chain_id: int = 137) -> None:
        self.cfg = cfg
        self.events: list[SimEvent] = make_events(cfg.seed, cfg.negrisk_events, cfg.negrisk_outcomes,
                                                  500_000 + cfg.markets, cfg.fee_rate, cfg.fee_exponent)
        self.sim = MarketSim(cfg.seed, cfg.markets, cfg.volatility, cfg.fee_rate, cfg.fee_exponent, cfg.arb_drift,
                             cfg.arb_drift_max, extra=[m for e in self.events for m in e.markets], v2_share=cfg.v2_share)
        apply_rules(self.sim.markets[:cfg.markets], draw_rules(cfg.seed, cfg.markets, cfg.fine_tick_share,
                                                               cfg.large_min_share, cfg.delayed_share,
                                                               cfg.delay_ms / 1000), cfg.seed)
        self.matcher = Matcher(self.sim, cfg.starting_cash, settle_lag_s=cfg.settle_lag_ms / 1000,
                               settle_fail_share=cfg.settle_fail_share, seed=cfg.seed)
        self.ctf = Ctf(self.matcher)
        self.feed = TradeFeed(self.sim)
        self.auth = Authenticator(chain_id)
        self.env = SimEnvironment(chain_id, cfg.own_addresses)  # every address the sim checks or reports
        self.wallets = WalletBook(self.env.derivation)
        self.signers = OrderSigners(self.env, self.wallets, cfg.legacy_eoa_makers, self.sim.market_of.get)
        self.contracts = Contracts(self.env, self.ctf, self.sim, self.event)  # the chain's contracts
        self.balances = Balances(self.matcher, self.wallets, self.contracts, self.sim.market_of.get,
                                 cfg.legacy_eoa_makers)
        self.hub = Hub(cfg.ws_price_change_form, cfg.ws_batch, cfg.ws_garbage_every, cfg.ws_book_tick_size)
        self.load = WsLoad(self, cfg.ws_rate_per_sec, cfg.seed)
        self.live = LiveHub()
        self.chain = ChainLog()  # Polygon: a block per settlement transaction, OrderFilled logs in it
        self.gamma = GammaOverrides()
        self.faults = Faults()
        self.paths: dict[str, asyncio.Task[None]] = {}
        self.published: dict[str, Levels] = {t: self.matcher.displayed(t) for t in self.sim.by_token}
        self.life = Lifecycle(self)  # settlement, delayed orders, heartbeats, restart, rate limits, user channel

    # ---- reads ----------------------------------------------------------------------------------
    def book(self, token_id: str) -> dict[str, Any]:
        bids, asks = self.matcher.displayed(token_id)
        return wire.book_json(self.sim.by_token[token_id], bids, asks, time.time())

    def ws_books(self, token_ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for t in token_ids:
            if t in self.sim.by_token:
                bids, asks = self.matcher.displayed(t)
                out.append(wire.ws_book(self.sim.by_token[t], bids, asks, time.time()))
        return out

    def top(self, token_id: str) -> tuple[float | None, float | None]:
        bids, asks = self.matcher.displayed(token_id)
        live_b = [p for p, s in bids.items() if s > 0]
        live_a = [p for p, s in asks.items() if s > 0]
        return (max(live_b) if live_b else None, min(live_a) if live_a else None)

    def tops(self) -> dict[str, tuple[float | None, float | None]]:
        return {t: self.top(t) for t in self.sim.by_token}

    # ---- publishing -----------------------------------------------------------------------------
    def publish(self, token_ids: list[str] | set[str]) -> None:
        ts = wire.ms(time.time())
        events = []
        for t in dict.fromkeys(token_ids):
            new = self.matcher.displayed(t)
            entries = wire.price_change_entries(t, self.published.get(t, ({}, {})), new)
            self.published[t] = new
            if entries:
                events.extend(self.hub.price_changes(self.sim.by_token[t].condition_id, entries, ts))
        self.hub.emit_many(events)

    def record_fills(self, fills: list[tuple[Order, Fill]]) -> None:
        """Our fills: out as last_trade_price and on the user channel (the Data API has them once mined)."""
        for order, fill in fills:
            book = self.sim.by_token[order.token_id]
            side = order.side if fill.role == "TAKER" else ("SELL" if order.side == "BUY" else "BUY")
            self.hub.emit(order.token_id, wire.last_trade(book, fill.price, fill.size, side, fill.ts,
                                                          last_trade_hash(fill)))
            logger.info("fill {} {} {} @ {} ({}) order {}", order.side, fill.size, order.token_id[:10], fill.price,
                        fill.role, order.id[:12])
        self.life.filled(fills)

    # ---- mutations ------------------------------------------------------------------------------
    def place(self, req: OrderRequest) -> tuple[Order, list[Fill]]:
        order, fills = self.matcher.place(req)
        self.life.placed(order)
        self.record_fills([(order, f) for f in fills])
        self.publish({req.token_id} | self.life.flush())
        return order, fills

    def cancel(self, order_ids: list[str], maker: str | None) -> dict[str, Any]:
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        touched: set[str] = set()
        for oid in dict.fromkeys(order_ids):
            reason = self.matcher.cancel(oid, maker)
            if reason is None:
                canceled.append(oid)
                touched.add(self.matcher.orders[oid].token_id)
            else:
                not_canceled[oid] = reason
        self.publish(touched | self.life.flush())
        return {"canceled": canceled, "not_canceled": not_canceled}

    def after_book_change(self, token_ids: list[str]) -> None:
        fills: list[tuple[Order, Fill]] = []
        for t in token_ids:
            fills.extend(self.matcher.sweep(t))
        self.record_fills(fills)
        self.publish(set(token_ids) | self.life.flush())

    def tick(self) -> None:
        """One walk step: move mids, fill crossed resting orders, expire GTD orders, publish."""
        changed = self.sim.step()
        for event in self.events:
            changed += step_event(event, self.sim.rng, self.sim.volatility, self.sim.arb_drift, self.sim.arb_drift_max)
        expired = self.matcher.expire()
        self.after_book_change(changed + [o.token_id for o in expired])

    def set_book(self, token_id: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
                 freeze: bool = True) -> None:
        book = self.sim.by_token[token_id]
        set_levels(book, bids, asks)
        book.frozen = freeze
        self.after_book_change([token_id])

    def set_mid(self, token_id: str, mid: float) -> None:
        book = self.sim.by_token[token_id]
        book.frozen = True
        self.after_book_change(self.sim.set_mid(token_id, mid))

    def unfreeze(self, token_id: str) -> None:
        self.sim.by_token[token_id].frozen = False
        task = self.paths.pop(token_id, None)
        if task:
            task.cancel()

    def change_tick(self, token_id: str, new_tick: float) -> None:
        market = self.sim.market_of[token_id]
        now = time.time()
        for book in market.tokens:
            old = book.tick
            book.tick = new_tick
            if not book.frozen:
                book.mid = snap(book.mid, new_tick)
                fill_ladder(book, self.sim.rng)
            self.hub.emit(book.token_id, wire.tick_size_change(book, old, new_tick, now))
        self.after_book_change([t.token_id for t in market.tokens])

    def start_path(self, token_id: str, path: list[float], interval_ms: float) -> None:
        old = self.paths.pop(token_id, None)
        if old:
            old.cancel()
        self.sim.by_token[token_id].frozen = True
        self.paths[token_id] = asyncio.create_task(self._run_path(token_id, path, interval_ms / 1000))

    async def _run_path(self, token_id: str, path: list[float], interval: float) -> None:
        for i, point in enumerate(path):
            if i:
                await asyncio.sleep(interval)
            self.set_mid(token_id, point)
        self.paths.pop(token_id, None)

    def settled_on_chain(self, row: dict[str, Any], maker: bool) -> None:
        """The settlement transaction of a Data-API trade row: its OrderFilled logs, on the
        exchange of the row's market (the chain seals the block before anyone reads it)."""
        market = self.sim.market_of.get(str(row["asset"]))
        exchange = exchange_for(self.env, market.version if market else "v1", bool(market and market.neg_risk))
        self.chain.add(row["transactionHash"], fill_logs(row, maker, exchange.address), row["timestamp"])

    def external_trade(self, row: dict[str, Any], maker: bool = False) -> dict[str, Any]:
        """A followed wallet's trade (posted or scripted): into the feed, on the chain and out as
        last_trade_price. ``maker``: the wallet's side of the fill was a resting order (``/trades``
        hides it by default)."""
        stored = self.feed.add(row, maker=maker)
        self.settled_on_chain(stored, maker)
        self.live.push(stored)
        book = self.sim.by_token.get(row["asset"])
        if book is not None:
            book.last_trade_price, book.last_trade_side = row["price"], row["side"]
            self.hub.emit(book.token_id, wire.last_trade(book, row["price"], row["size"], row["side"],
                                                         row["timestamp"], row["transactionHash"]))
        return stored

    def neg_risk(self, token_id: str) -> bool:
        book = self.sim.by_token.get(token_id)
        return book is not None and book.neg_risk

    def event(self, key: str) -> SimEvent | None:
        """A neg-risk event by Gamma id, slug or neg-risk market id."""
        return next((e for e in self.events if key in (e.gamma_id, e.slug, e.neg_risk_market_id)), None)
