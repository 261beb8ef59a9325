"""The admin API under /_sim/ (tests, demos, people). Shapes are a contract: see docs/sim-exchange.md."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger

from services.sim_exchange.accounts import WalletError
from services.sim_exchange.faults import Http429
from services.sim_exchange.feed import FeedError
from services.sim_exchange.state import SimState


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _levels(raw: Any, name: str) -> list[tuple[float, float]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{name} must be a list of {{price, size}}")
    out = []
    for lv in raw:
        if isinstance(lv, dict):
            out.append((float(lv["price"]), float(lv["size"])))
        else:
            price, size = lv
            out.append((float(price), float(size)))
    return out


def router(state: SimState) -> APIRouter:
    r = APIRouter(prefix="/_sim")

    @r.post("/trades")
    async def post_trades(request: Request) -> Any:
        body = await request.json()
        raws = body if isinstance(body, list) else [body]
        try:
            rows = [state.feed.make_row(raw) for raw in raws if isinstance(raw, dict)]
        except FeedError as exc:
            return _err(400, str(exc))
        stored = [state.external_trade(row) for row in rows]
        state.chain.seal()
        return stored

    @r.put("/book/{token_id}")
    async def put_book(token_id: str, request: Request) -> Any:
        if token_id not in state.sim.by_token:
            return _err(404, f"unknown token {token_id}")
        body = await request.json()
        try:
            bids, asks = _levels(body.get("bids"), "bids"), _levels(body.get("asks"), "asks")
        except (ValueError, KeyError, TypeError) as exc:
            return _err(400, f"bad book: {exc}")
        state.set_book(token_id, bids, asks, freeze=bool(body.get("freeze", True)))
        return state.book(token_id)

    @r.post("/unfreeze/{token_id}")
    async def unfreeze(token_id: str) -> Any:
        if token_id not in state.sim.by_token:
            return _err(404, f"unknown token {token_id}")
        state.unfreeze(token_id)
        return {"token_id": token_id, "frozen": False}

    @r.put("/price/{token_id}")
    async def put_price(token_id: str, request: Request) -> Any:
        if token_id not in state.sim.by_token:
            return _err(404, f"unknown token {token_id}")
        body = await request.json()
        try:
            path = [float(p) for p in body["path"]]
            interval = float(body.get("interval_ms", 200))
        except (KeyError, TypeError, ValueError) as exc:
            return _err(400, f"bad price path: {exc}")
        if not path or not all(0 < p < 1 for p in path):
            return _err(400, "path must be a non-empty list of prices strictly between 0 and 1")
        state.start_path(token_id, path, interval)
        return {"token_id": token_id, "points": len(path), "interval_ms": interval}

    @r.get("/orders")
    async def orders(request: Request) -> Any:
        token = request.query_params.get("token_id")
        return [{
            "id": o.id, "token_id": o.token_id, "side": o.side, "price": o.price, "size": o.size,
            "size_matched": o.size_matched, "status": o.status, "owner": o.owner, "maker_address": o.maker_address,
            "order_type": o.order_type, "created_at": o.created_at, "cancel_reason": o.cancel_reason,
            "fills": [{"price": f.price, "size": f.size, "ts": f.ts, "trade_id": f.trade_id, "status": f.status}
                      for f in o.fills],
        } for o in state.matcher.orders.values() if not token or o.token_id == token]

    @r.get("/positions")
    async def positions(request: Request) -> Any:
        only = request.query_params.get("address", "").lower()
        if only:
            state.matcher.account(only)
        return {a.address: {"cash": a.cash, "positions": dict(a.positions)}
                for a in state.matcher.accounts.values() if not only or a.address == only}

    @r.put("/accounts/{address}")
    async def put_account(address: str, request: Request) -> Any:
        """Set an account's cash and/or positions (balance-reject and reconcile tests)."""
        body = await request.json()
        acct = state.matcher.account(address)
        try:
            if "cash" in body:
                acct.cash = float(body["cash"])
            for token, size in (body.get("positions") or {}).items():
                acct.positions[str(token)] = float(size)
            for kind, amount in (body.get("allowances") or {}).items():  # $ / shares; null = unlimited again
                if str(kind) not in ("COLLATERAL", "CONDITIONAL"):
                    raise ValueError(f"allowances are COLLATERAL or CONDITIONAL, not {kind!r}")
                if amount is None:
                    acct.allowances.pop(str(kind), None)
                else:
                    acct.allowances[str(kind)] = int(round(float(amount) * 1_000_000))
        except (TypeError, ValueError, AttributeError) as exc:
            return _err(400, f"bad account: {exc}")
        return {"address": acct.address, "cash": acct.cash, "positions": dict(acct.positions),
                "allowances": dict(acct.allowances)}

    @r.get("/markets")
    async def markets() -> Any:
        out = []
        for m in state.sim.markets:
            tokens = []
            for t in m.tokens:
                bid, ask = state.top(t.token_id)
                tokens.append({"token_id": t.token_id, "outcome": t.outcome, "best_bid": bid, "best_ask": ask,
                               "mid": t.mid, "tick_size": t.tick, "min_size": t.min_size, "frozen": t.frozen})
            out.append({"condition_id": m.condition_id, "question": m.question, "slug": m.slug,
                        "gamma_id": m.gamma_id, "version": m.version, "neg_risk": m.neg_risk, "tokens": tokens})
        return out

    @r.post("/wallets")
    async def deploy_wallet(request: Request) -> Any:
        """Deploy ``owner``'s proxy, Safe (or deposit) wallet: the venue's wallet factories, which the
        official SDK never calls for proxies and Safes (they predate it)."""
        body = await request.json()
        if not isinstance(body, dict):
            return _err(400, "body must be an object")
        owner, kind = str(body.get("owner", "")), str(body.get("kind", ""))
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", owner):
            return _err(400, "owner must be a 0x-prefixed 40-hex-digit address")
        if kind not in ("deposit", "proxy", "safe"):
            return _err(400, "kind must be deposit, proxy or safe")
        try:
            wallet = state.wallets.deploy(owner, kind)  # type: ignore[arg-type]
        except WalletError as exc:
            return _err(409, str(exc))
        return asdict(wallet)

    @r.get("/wallets")
    async def wallets(request: Request) -> Any:
        only = request.query_params.get("owner", "").lower()
        return [asdict(w) for w in state.wallets.wallets.values() if not only or w.owner == only]

    @r.post("/fault")
    async def fault(request: Request) -> Any:
        body = await request.json()
        kind = str(body.get("kind", ""))
        logger.warning("fault injected: {}", body)
        if (strict := state.life.fault(kind, body)) is not None:  # restart, delayed, rate_limit, heartbeat_outage
            return strict
        if kind == "ws_drop":
            return {"kind": kind, "closed": await state.hub.drop_all()}
        if kind == "ws_stall":
            pong = bool(body.get("pong", False))
            state.hub.stall(float(body.get("seconds", 10)), pong=pong)
            return {"kind": kind, "seconds": float(body.get("seconds", 10)), "pong": pong,
                    "withheld": state.hub.withheld}
        if kind == "ws_garbage":
            count = int(body.get("count", 1))
            return {"kind": kind, "count": count, "clients": state.hub.send_garbage(count)}
        if kind == "ws_load":
            try:
                if "rate_per_sec" in body:
                    state.load.rate = max(0.0, float(body["rate_per_sec"]))
                if "form" in body:
                    if body["form"] not in ("current", "legacy", "mixed"):
                        raise ValueError("form must be current, legacy or mixed")
                    state.hub.form = body["form"]
                if "batch" in body:
                    state.hub.batch = max(1, int(body["batch"]))
                if "garbage_every" in body:
                    state.hub.garbage_every = max(0, int(body["garbage_every"]))
            except (TypeError, ValueError) as exc:
                return _err(400, f"bad ws_load: {exc}")
            # the counters let a benchmark compare what was generated with what arrived downstream
            return {"kind": kind, "rate_per_sec": state.load.rate, "form": state.hub.form,
                    "batch": state.hub.batch, "garbage_every": state.hub.garbage_every,
                    "changes": state.load.changes, "frames_sent": state.hub.frames_sent,
                    "frames_dropped": sum(c.dropped for c in state.hub.clients)}
        if kind == "http_429":
            f = Http429(int(body.get("count", 1)), float(body.get("retry_after", 1)), str(body.get("path_prefix", "")),
                        int(body.get("status", 429)))
            state.faults.http_429.append(f)
            return {"kind": kind, "count": f.remaining, "retry_after": f.retry_after, "path_prefix": f.path_prefix}
        if kind == "order_timeout_after_place":
            state.faults.order_timeouts += int(body.get("count", 1))
            if "delay_sec" in body:
                state.faults.order_timeout_delay = float(body["delay_sec"])
            return {"kind": kind, "count": state.faults.order_timeouts, "delay_sec": state.faults.order_timeout_delay,
                    "answered": state.faults.order_timeouts_answered}
        if kind == "relayer_stall":  # the next relayed transactions apply and stop at STATE_MINED
            state.faults.relayer_stalls = max(0, int(body.get("count", 1)))
            return {"kind": kind, "count": state.faults.relayer_stalls}
        if kind == "tick_size_change":
            token = str(body.get("token_id", ""))
            if token not in state.sim.by_token:
                return _err(404, f"unknown token {token}")
            new = float(body.get("new_tick_size", 0.001))
            state.change_tick(token, new)
            return {"kind": kind, "token_id": token, "new_tick_size": new}
        if kind == "rtds_lapse":  # the live-data feed lapses silently (mode silent) or per type (mute)
            mode = str(body.get("mode", "silent"))
            try:
                n = state.live.lapse(mode, float(body.get("seconds", 30)), body.get("types"))
            except ValueError as exc:
                return _err(400, str(exc))
            return {"kind": kind, "mode": mode, "affected": n}
        if kind == "rtds_drop":
            return {"kind": kind, "closed": await state.live.drop_all()}
        return _err(400, f"unknown fault kind {kind!r}: expected ws_drop, ws_stall, ws_garbage, ws_load, "
                         "http_429, order_timeout_after_place, relayer_stall, tick_size_change, rtds_lapse, rtds_drop, "
                         "restart, delayed, rate_limit or heartbeat_outage")

    return r
