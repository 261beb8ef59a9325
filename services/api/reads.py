"""What the API reads from Redis. Each function does its reads in as few round trips as it can
(pipelines, not one command per token) and returns plain JSON-ready values."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import redis.asyncio as aioredis

from services.api.pnl import series_from_fills
from shared.clock import now_ms
from shared.fleet import read_workers
from shared.keys import REQUESTER_ORCHESTRATOR, TOKEN_STATES, Keys
from shared.ledger import Ledger, LedgerFill
from shared.marks import as_float, mark_price, unrealized

PNL_SERIES_FILLS = 20_000  # the PnL chart is rebuilt from at most this many latest fills
TOKEN_TRADES = 100  # a token's detail lists at most this many of the fills its ledger still holds


def entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry as JSON: its fields plus ``entry_id``; JSON-text fields (detail, params) decoded."""
    out: dict[str, Any] = {"entry_id": entry_id, **fields}
    for name in ("detail", "params"):
        raw = fields.get(name)
        if raw and raw[:1] in "{[":
            with contextlib.suppress(ValueError):
                out[name] = json.loads(raw)
    return out


async def stream_page(r: aioredis.Redis, stream: str, count: int, before: str = "",
                      match: dict[str, str] | None = None, scan_limit: int = 5000) -> list[dict[str, Any]]:
    """Newest first. ``before`` (an entry id) pages backwards; ``match`` keeps entries whose field
    equals (or, for ``kind``, starts with) the value, looking at no more than ``scan_limit`` entries."""
    top = f"({before}" if before else "+"
    if not match:
        rows = await r.xrevrange(stream, max=top, min="-", count=count)
        return [entry(i, f) for i, f in rows]
    out: list[dict[str, Any]] = []
    seen = 0
    while len(out) < count and seen < scan_limit:
        rows = await r.xrevrange(stream, max=top, min="-", count=min(500, scan_limit - seen))
        if not rows:
            break
        for i, f in rows:
            if all((f.get(k, "").startswith(v) if k == "kind" else f.get(k, "") == v) for k, v in match.items()):
                out.append(entry(i, f))
                if len(out) >= count:
                    break
        seen += len(rows)
        top = f"({rows[-1][0]}"
    return out


def settlement_view(h: dict[str, str]) -> dict[str, Any]:
    """A token's matched vs confirmed figures (docs/redis-schema.md): a token from before the
    ledger has no confirmed fields, and everything it holds counts as confirmed."""
    position, avg, realized = as_float(h.get("position")), as_float(h.get("avg_cost")), as_float(h.get("realized_pnl"))
    pending_trades = int(as_float(h.get("pending_trades")))
    return {
        "position_confirmed": as_float(h.get("position_confirmed"), position),
        "avg_cost_confirmed": as_float(h.get("avg_cost_confirmed"), avg),
        "realized_pnl_confirmed": as_float(h.get("realized_pnl_confirmed"), realized),
        "pending": as_float(h.get("pending")), "pending_buy": as_float(h.get("pending_buy")),
        "pending_sell": as_float(h.get("pending_sell")), "pending_notional": as_float(h.get("pending_notional")),
        "pending_trades": pending_trades, "failed_trades": int(as_float(h.get("failed_trades"))),
        "settled": pending_trades == 0,
    }


def redemption_view(h: dict[str, str]) -> dict[str, Any]:
    """Whether the token's position in its resolved market was redeemed (the orchestrator books the
    redeemer's report: docs/orchestrator.md "Resolved markets"), and for what."""
    at = int(as_float(h.get("redeemed_at")))
    return {"redeemed": bool(at), "redeemed_at": at or None, "redeemed_shares": as_float(h.get("redeemed_shares")),
            "redeemed_payout": as_float(h.get("redeemed_payout")), "redeem_tx": h.get("redeem_tx", "")}


def token_view(token_id: str, h: dict[str, str], book: dict[str, str]) -> dict[str, Any]:
    position, avg = as_float(h.get("position")), as_float(h.get("avg_cost"))
    realized = as_float(h.get("realized_pnl"))
    mark = mark_price(book)
    upnl = unrealized(position, avg, mark)
    view: dict[str, Any] = {k: v for k, v in h.items() if k != "params"}
    view.update({
        "token_id": token_id, "state": h.get("state", ""), "position": position, "avg_cost": avg,
        "realized_pnl": realized, "bid": as_float(book.get("bid"), 0.0) or None,
        "ask": as_float(book.get("ask"), 0.0) or None, "mark": mark, "unrealized_pnl": round(upnl, 6),
        "pnl": round(realized + upnl, 6), "book_ts": int(as_float(book.get("ts_recv"))) or None,
        "market_version": h.get("market_version") or "v1",  # the market system; tokens queued before it: v1
        **settlement_view(h), **redemption_view(h),
    })
    return view


def ledger_trades(ledger_hash: dict[str, str], token_fields: dict[str, str]) -> list[dict[str, Any]]:
    """The fills a token's ledger still holds (those of trades not settled at the last close, and
    the current session's), newest first, each with its trade's status now."""
    ledger = Ledger.from_hash(ledger_hash, token_fields)
    fills = sorted(ledger.fills.values(), key=LedgerFill.sort_key, reverse=True)[:TOKEN_TRADES]
    return [{"fill_id": f.fill_id, "trade_id": f.trade_id, "side": f.side, "price": f.price, "size": f.size,
             "fee": f.fee, "ts": f.ts, "epoch": f.epoch, "status": ledger.status_of(f)} for f in fills]


async def tokens(r: aioredis.Redis, k: Keys, states: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
    """Tokens in ``states`` (live ones first), at most ``limit``: three round trips in all."""
    pipe = r.pipeline(transaction=False)
    for state in states:
        pipe.smembers(k.tokens_in_state(state))
    members = await pipe.execute()
    ids: list[str] = []
    for found in members:
        ids.extend(sorted(found))
    ids = ids[:limit]
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    for tid in ids:
        pipe.hgetall(k.token(tid))
        pipe.hgetall(k.book(tid))
    rows = await pipe.execute()
    return [token_view(tid, rows[2 * i], rows[2 * i + 1]) for i, tid in enumerate(ids) if rows[2 * i]]


async def token_detail(r: aioredis.Redis, k: Keys, token_id: str) -> dict[str, Any] | None:
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(k.token(token_id))
    pipe.hgetall(k.book(token_id))
    pipe.hgetall(k.session(token_id))
    pipe.hgetall(k.meta(token_id))
    pipe.sismember(k.handled(), token_id)
    pipe.zscore(k.ignored(), token_id)
    pipe.pttl(k.cooldown(token_id))
    pipe.hgetall(k.ledger(token_id))
    h, book, session, meta, handled, ignored_until, cooldown_ms, ledger = await pipe.execute()
    if not h and not book and not meta:
        return None
    view = token_view(token_id, h, book)
    view["trades"] = ledger_trades(ledger, h)
    params = h.get("params")
    view["params"] = json.loads(params) if params else None
    view.update({"session": session, "meta": meta, "book": book, "handled": bool(handled),
                 "ignored_until": int(ignored_until) if ignored_until else None,
                 "cooldown_ms": cooldown_ms if cooldown_ms and cooldown_ms > 0 else 0})
    view["events"] = await stream_page(r, k.events(), 20, match={"token_id": token_id})
    return view


async def workers(r: aioredis.Redis, k: Keys) -> list[dict[str, Any]]:
    return [{
        "worker_id": w.worker_id, "alive": w.alive, "lease_ms": w.lease_ms, "assigned": w.assigned,
        "load": w.reported_load, "capacity": w.capacity, "draining": w.draining, "host": w.fields.get("host", ""),
        "pid": w.fields.get("pid", ""), "started": w.stamp("started"), "last_beat": w.stamp("last_beat"),
    } for w in await read_workers(r, k)]


async def heartbeats(r: aioredis.Redis, k: Keys) -> list[dict[str, Any]]:
    keys = [key async for key in r.scan_iter(match=k.health_pattern(), count=1000)]
    if not keys:
        return []
    out = []
    for raw in await r.mget(keys):
        if raw:
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return sorted(out, key=lambda h: (str(h.get("service")), str(h.get("instance"))))


async def health(r: aioredis.Redis, k: Keys) -> dict[str, Any]:
    pipe = r.pipeline(transaction=False)
    pipe.get(k.orchestrator_leader())
    pipe.get(k.halt())
    pipe.get(k.gw_alive())
    leader, halt, gw_alive = await pipe.execute()
    beats = await heartbeats(r, k)
    services: dict[str, int] = {}
    for b in beats:
        services[str(b.get("service"))] = services.get(str(b.get("service")), 0) + 1
    return {"redis": "ok", "now_ms": now_ms(), "orchestrator_leader": leader, "halt": halt or "off",
            "gateway_alive": gw_alive, "services": services, "heartbeats": beats}


async def stats(r: aioredis.Redis, k: Keys) -> dict[str, Any]:
    """Counters the fleet view shows: stream lengths, tokens per state, ticks/s from the gateway."""
    pipe = r.pipeline(transaction=False)
    streams = ("signals", "orders", "fills", "events", "control", "opportunities")
    for name in streams:
        pipe.xlen(getattr(k, name)())
    for state in TOKEN_STATES:
        pipe.scard(k.tokens_in_state(state))
    pipe.scard(k.gw_want(REQUESTER_ORCHESTRATOR))
    pipe.get(k.halt())
    rows = await pipe.execute()
    beats = [b for b in await heartbeats(r, k) if b.get("service") == "ws_gateway"]
    return {
        "now_ms": now_ms(),
        "streams": dict(zip(streams, rows[:len(streams)], strict=True)),
        "tokens": dict(zip(TOKEN_STATES, rows[len(streams):len(streams) + len(TOKEN_STATES)], strict=True)),
        "streamed_tokens": rows[-2], "halt": rows[-1] or "off",
        "ticks_per_sec": round(sum(as_float(b.get("ticks_per_sec")) for b in beats), 1),
        "frames_per_sec": round(sum(as_float(b.get("frames_per_sec")) for b in beats), 1),
    }


async def pnl(r: aioredis.Redis, k: Keys, series_points: int = 500) -> dict[str, Any]:
    live = await tokens(r, k, tuple(TOKEN_STATES), 100_000)
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(k.pnl_daily())
    pipe.hget(k.exposure(), "_total")
    pipe.hget(k.reserved(), "_committed")
    pipe.xrevrange(k.fills(), count=PNL_SERIES_FILLS)
    daily, exposure, committed, fills = await pipe.execute()
    series = series_from_fills([f for _, f in reversed(fills)], series_points)
    realized = sum(t["realized_pnl"] for t in live)
    upnl = sum(t["unrealized_pnl"] for t in live)
    return {
        "realized_pnl": round(realized, 6), "unrealized_pnl": round(upnl, 6), "total_pnl": round(realized + upnl, 6),
        "realized_pnl_confirmed": round(sum(t["realized_pnl_confirmed"] for t in live), 6),
        "pending_notional": round(sum(t["pending_notional"] for t in live), 6),
        "pending_trades": sum(t["pending_trades"] for t in live),
        "daily": {day: as_float(v) for day, v in sorted(daily.items())},
        "exposure": as_float(exposure), "committed": as_float(committed),
        "series": [{"ts": ts, "realized_pnl": v} for ts, v in series],
        "series_from_fills": len(fills),
        "tokens": [{"token_id": t["token_id"], "state": t["state"], "realized_pnl": t["realized_pnl"],
                    "realized_pnl_confirmed": t["realized_pnl_confirmed"], "unrealized_pnl": t["unrealized_pnl"],
                    "position": t["position"], "position_confirmed": t["position_confirmed"], "pending": t["pending"]}
                   for t in live if t["position"] or t["realized_pnl"] or t["pending_trades"]],
    }


async def blacklist(r: aioredis.Redis, k: Keys) -> list[dict[str, Any]]:
    out = []
    now = now_ms()
    for key, raw in sorted((await r.hgetall(k.blacklist())).items()):
        try:
            spec = json.loads(raw)
        except ValueError:
            spec = {"reason": raw}
        exp = int(as_float(spec.get("expires_at")))
        out.append({"key": key, "reason": str(spec.get("reason", "")), "expires_at": exp or None,
                    "expired": bool(exp and exp <= now)})
    return out


async def ignored(r: aioredis.Redis, k: Keys) -> list[dict[str, Any]]:
    pipe = r.pipeline(transaction=False)
    pipe.zrange(k.ignored(), 0, -1, withscores=True)
    pipe.hgetall(k.ignored_why())
    rows, why = await pipe.execute()
    return [{"token_id": t, "until": int(s), "reason": why.get(t, "")} for t, s in rows]
