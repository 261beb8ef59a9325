"""The venue's order lifecycle around the matcher, and what it publishes.

The matcher decides (rules, matching, settlement timetable); this puts it on the clock and on the
wire: trades settle as their time comes (each status to the user channel, a trade into the Data
API once it is mined), delayed orders are matched when their delay is over, order heartbeats
cancel an account's orders when they stop, the engine restart and the per-signer rate limits
gate the CLOB. :class:`SimState` owns one; :meth:`Lifecycle.housekeep` runs on every CLOB call
and on a short timer (``service.py``), so nothing waits for a request to happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from loguru import logger

from services.sim_exchange.faults import POST_ONLY_CODE, POST_ONLY_TEXT, RESTART_TEXT, Faults
from services.sim_exchange.heartbeats import Beat, Heartbeats
from services.sim_exchange.limits import ORDERS, SignerLimits
from services.sim_exchange.matching import Fill, Order
from services.sim_exchange.settlement import FAILED, MATCHED, MINED, ON_CHAIN
from services.sim_exchange.userws import UserHub, order_event, trade_event

if TYPE_CHECKING:
    from services.sim_exchange.state import SimState

HOUSEKEEP_INTERVAL_S = 0.05


class Lifecycle:
    def __init__(self, state: SimState, clock: Callable[[], float] = time.time) -> None:
        cfg = state.cfg
        self.state = state
        self.clock = clock
        self.heartbeats = Heartbeats(cfg.heartbeat_timeout_ms / 1000)
        self.limits = SignerLimits(cfg.rate_limit, cfg.rate_limit_tier, cfg.order_rate_per_sec, cfg.order_burst,
                                   cfg.cancel_rate_per_sec, cfg.cancel_burst)
        self.users = UserHub(state.auth)
        state.matcher.halted = lambda: state.faults.restarting(self.clock())

    # ---- what happened, out to the user channel and the Data API --------------------------------
    def placed(self, order: Order) -> None:
        self.users.emit(order.owner, order.condition_id, order_event(order, "PLACEMENT", self.clock()))

    def filled(self, fills: list[tuple[Order, Fill]]) -> None:
        now = self.clock()
        for order, fill in fills:
            self.users.emit(order.owner, order.condition_id, trade_event(order, fill, MATCHED, now))
        for order in {o.id: o for o, _ in fills}.values():
            self.users.emit(order.owner, order.condition_id, order_event(order, "UPDATE", now))

    def flush(self) -> set[str]:
        """Publish the matcher's status changes and cancellations; returns the tokens whose book changed."""
        m, now = self.state.matcher, self.clock()
        settled, m.settled = m.settled, []
        for t in settled:
            order, fill = t.trade
            self.users.emit(order.owner, order.condition_id, trade_event(order, fill, t.status, now))
            if t.status == MINED:  # the Data API indexes the chain: a trade shows once it is mined
                self._index(order, fill)
        cancelled, m.cancelled = m.cancelled, []
        for order in cancelled:
            self.users.emit(order.owner, order.condition_id, order_event(order, "CANCELLATION", now))
        return {o.token_id for o in cancelled}

    def _index(self, order: Order, fill: Fill) -> None:
        feed = self.state.feed
        row = feed.add(feed.make_row({
            "proxyWallet": order.maker_address, "side": order.side, "asset": order.token_id,
            "size": fill.size, "price": fill.price, "timestamp": int(fill.updated or fill.ts),  # the block's time
            "transactionHash": fill.tx_hash,
        }), maker=fill.role == "MAKER")
        self.state.settled_on_chain(row, fill.role == "MAKER")
        self.state.live.push(row)

    # ---- the clock ------------------------------------------------------------------------------
    def housekeep(self) -> None:
        """Everything due by now: settlement, delayed orders, heartbeat deadlines; then publish."""
        m, now = self.state.matcher, self.clock()
        m.settle()
        released = m.release_delayed()
        if released:
            self.state.record_fills([(o, f) for o in released for f in o.fills])
        for key in self.heartbeats.expired(now):
            gone = m.cancel_owned(key, "heartbeat_expired")
            logger.warning("heartbeat expired for key {}: {} open orders cancelled", key[:8], len(gone))
        touched = self.flush() | {o.token_id for o in released}
        self.state.chain.seal()  # subscribers get a block's logs at most one tick after its last fill
        if touched:
            self.state.publish(touched)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEP_INTERVAL_S)
            try:
                self.housekeep()
            except Exception:
                logger.exception("housekeeping failed")

    # ---- the CLOB gate --------------------------------------------------------------------------
    def gate(self, path: str) -> JSONResponse | None:
        """Before a CLOB call: 425 while the engine restarts; else bring everything up to now."""
        if self.state.faults.restarting(self.clock()):
            return JSONResponse({"error": RESTART_TEXT}, status_code=425)
        try:
            self.housekeep()
        except Exception:  # a bug here must not take every CLOB call down with it
            logger.exception("housekeeping failed")
        return None

    def post_only_refusal(self, payload: Any) -> tuple[dict[str, str], int] | None:
        """In the post-only window after a restart, an order without ``postOnly`` is refused 503."""
        if not self.state.faults.post_only(self.clock()):
            return None
        if isinstance(payload, dict) and payload.get("postOnly"):
            return None
        return {"error": POST_ONLY_TEXT, "code": POST_ONLY_CODE}, 503

    def charge(self, request: Request, signer: str, kind: str, cost: float) -> JSONResponse | None:
        """Take ``cost`` from the signer's ``kind`` bucket; a 429 when it cannot pay."""
        verdict = self.limits.charge(signer, kind, cost, self.clock())
        request.state.rate_headers = verdict.headers
        if verdict.allowed:
            return None
        return JSONResponse({"error": "Too Many Requests"}, status_code=429,
                            headers={"Retry-After": str(verdict.retry_after), **verdict.headers})

    def rate_headers(self, request: Request) -> dict[str, str]:
        headers: dict[str, str] | None = getattr(request.state, "rate_headers", None)
        if headers is not None:
            return headers
        signer: str | None = getattr(request.state, "signer", None)
        return self.limits.peek(signer, ORDERS, self.clock()) if signer else {}

    # ---- heartbeats and faults ------------------------------------------------------------------
    def heartbeat(self, key: str, sent: str) -> Beat | None:
        """One heartbeat of ``key``; None while a heartbeat outage refuses them all (no refresh)."""
        if self.state.faults.heartbeats_down(self.clock()):
            return None
        return self.heartbeats.beat(key, sent, self.clock())

    def restart(self, seconds: float, post_only_seconds: float, cancel_resting: bool) -> dict[str, Any]:
        window = self.state.faults.restart(self.clock(), seconds, post_only_seconds)
        self.heartbeats.hold(window.down_until)
        cancelled = self.state.matcher.cancel_owned(None, "restart") if cancel_resting else []
        self.state.publish(self.flush())
        return {"kind": "restart", "down_until": window.down_until, "post_only_until": window.post_only_until,
                "cancelled": len(cancelled)}

    def fault(self, kind: str, body: dict[str, Any]) -> dict[str, Any] | JSONResponse | None:
        """The strict venue's faults (``POST /_sim/fault``); None for a kind that is not one of them."""
        if kind == "restart":
            return self.restart(float(body.get("seconds", 90)), float(body.get("post_only_seconds", 120)),
                                bool(body.get("cancel_resting", False)))
        if kind == "heartbeat_outage":
            until = self.state.faults.heartbeat_outage(self.clock(), float(body.get("seconds", 15)))
            return {"kind": kind, "until": until}
        if kind == "delayed":
            market = self.state.sim.by_condition.get(str(body.get("condition_id", "")))
            if market is None:
                return JSONResponse({"error": f"unknown market {body.get('condition_id')!r}"}, status_code=404)
            market.seconds_delay = float(body.get("delay_ms", self.state.cfg.delay_ms)) / 1000
            return {"kind": kind, "condition_id": market.condition_id, "delay_ms": market.seconds_delay * 1000}
        if kind == "rate_limit":
            if body.get("mode", self.limits.mode) not in ("enforce", "warn", "off"):
                return JSONResponse({"error": "mode must be enforce, warn or off"}, status_code=400)
            self.limits.mode = str(body.get("mode", self.limits.mode))
            burst, rate = self.limits.shape["orders"]
            self.limits.shape["orders"] = (float(body.get("order_burst", burst)), float(body.get("order_rate", rate)))
            burst, rate = self.limits.shape["cancels"]
            self.limits.shape["cancels"] = (float(body.get("cancel_burst", burst)),
                                            float(body.get("cancel_rate", rate)))
            self.limits.clear()
            return {"kind": kind, "mode": self.limits.mode, "orders": self.limits.shape["orders"],
                    "cancels": self.limits.shape["cancels"]}
        return None


def hashes(fills: list[Fill]) -> list[str]:
    """The settlement transactions known so far (venue.md T3: none before a trade is sent)."""
    return [f.tx_hash for f in fills if f.status in ON_CHAIN and f.status != FAILED]


def last_trade_hash(fill: Fill) -> str:
    return fill.tx_hash if fill.status in ON_CHAIN else ""


def install(app: FastAPI, state: SimState) -> None:
    """The CLOB gate (restart, housekeeping, rate-limit headers) and the user channel on the app."""
    life = state.life

    @app.middleware("http")
    async def venue_gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if Faults.is_clob(request.url.path):
            refused = life.gate(request.url.path)
            if refused is not None:
                return refused
        response = await call_next(request)
        response.headers.update(life.rate_headers(request))
        return response

    @app.websocket("/ws/user")
    async def ws_user(ws: WebSocket) -> None:
        await life.users.serve(ws)
