"""The FastAPI application: routes, auth, validation. Built by :func:`create_app` around a Redis
client, so tests drive it in-process (httpx ASGITransport) or behind a real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from services.api import control, reads, redemptions
from services.api.backtest import Backtests
from services.api.bodies import BlacklistBody, Body, DrainBody, HaltBody, HandledResetBody, StopBody, printable_key
from services.api.live import LiveHub
from shared.clock import now_ms
from shared.config import Secrets, Settings, redis_url
from shared.fleet import LIVE_STATES
from shared.keys import TOKEN_STATES, Keys
from shared.scorecard_reads import read_leaders

STATIC = Path(__file__).parent / "static"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
TokenId = Annotated[str, PathParam(pattern=ID_PATTERN, description="token id (decimal string)")]
WorkerId = Annotated[str, PathParam(pattern=ID_PATTERN, description="worker id")]
Address = Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{40}$", description="wallet address (0x + 40 hex digits)")]
Count = Annotated[int, Query(ge=1, le=1000, description="at most this many entries, newest first")]
Before = Annotated[str, Query(pattern=r"^(\d+-\d+)?$", description="page back: entries older than this id")]
REQUESTS = Counter("polyfleet_api_requests", "API requests by route template and status",
                   ("method", "route", "status"))
LATENCY = Histogram("polyfleet_api_request_seconds", "API request latency by route template", ("route",),
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WS_SUBPROTOCOL = "polyfleet"


def redact_url(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def effective_config(settings: Settings, secrets: Secrets) -> dict[str, Any]:
    """The settings in force (secrets never live in them) plus which secrets are set, never their values."""
    return {"settings": settings.model_dump(mode="json", by_alias=True),
            "secrets": {name: bool(value) for name, value in secrets},
            "redis_url": redact_url(redis_url())}


def create_app(settings: Settings, r: aioredis.Redis, keys: Keys, secrets: Secrets) -> FastAPI:
    if not secrets.api_token:
        raise ValueError("PF_API_TOKEN is not set: the API refuses to start without a bearer token")
    expected = secrets.api_token.encode()
    hub = LiveHub(r, keys, settings.api.ws_poll_ms, settings.api.max_ws_clients)
    backtests = Backtests(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = FastAPI(title="polyfleet", version="1", lifespan=lifespan,
                  description="Operate a polyfleet deployment (docs/api.md). "
                  "Every /api route needs `Authorization: Bearer $PF_API_TOKEN`.")
    app.state.hub = hub

    def authorized(value: str) -> bool:
        return hmac.compare_digest(value.encode(), expected)

    def require_token(request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not authorized(value.strip()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer $PF_API_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_token)]
    wait_sec = settings.api.control_wait_sec

    async def do(action: str, target: str, body: Body, **kw: Any) -> JSONResponse:
        res = await control.send(r, keys, action, target, body.reason, wait_sec=wait_sec if body.wait else 0, **kw)
        return JSONResponse(res.as_json(), status_code=200 if res.applied else 202)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse({"detail": f"Redis unavailable: {exc}"}, status_code=503)

    @app.get("/healthz", tags=["health"], summary="Liveness without auth: 200 when Redis answers")
    async def healthz() -> JSONResponse:
        try:
            await r.ping()
        except (RedisError, OSError) as exc:
            return JSONResponse({"ok": False, "redis": str(exc)}, status_code=503)
        return JSONResponse({"ok": True})

    @app.get("/api/health", dependencies=auth, tags=["health"], summary="Leader, kill switch, every heartbeat")
    async def health() -> dict[str, Any]:
        return await reads.health(r, keys)

    @app.get("/api/stats", dependencies=auth, tags=["health"], summary="Stream lengths, tokens per state, ticks/s")
    async def stats() -> dict[str, Any]:
        return await reads.stats(r, keys)

    @app.get("/api/workers", dependencies=auth, tags=["workers"])
    async def workers() -> list[dict[str, Any]]:
        return await reads.workers(r, keys)

    @app.post("/api/workers/{worker_id}/drain", dependencies=auth, tags=["workers"],
              summary="Drain a worker (undo=true ends the drain)")
    async def drain(worker_id: WorkerId, body: DrainBody) -> JSONResponse:
        return await do("undrain_worker" if body.undo else "drain_worker", worker_id, body)

    @app.get("/api/tokens", dependencies=auth, tags=["tokens"], summary="Tokens with state, position and PnL")
    async def tokens(state: Annotated[list[str] | None, Query(description="repeat to give several")] = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
        states = tuple(state or (*LIVE_STATES, *(s for s in TOKEN_STATES if s not in LIVE_STATES)))
        bad = [s for s in states if s not in TOKEN_STATES]
        if bad:
            raise HTTPException(422, f"unknown state {bad[0]!r}; one of {', '.join(TOKEN_STATES)}")
        return await reads.tokens(r, keys, states, limit)

    @app.get("/api/tokens/{token_id}", dependencies=auth, tags=["tokens"],
             summary="One token: lifecycle, position, book, session, metadata, its latest events")
    async def token(token_id: TokenId) -> dict[str, Any]:
        found = await reads.token_detail(r, keys, token_id)
        if found is None:
            raise HTTPException(404, f"token {token_id} is unknown")
        return found

    @app.post("/api/tokens/{token_id}/stop", dependencies=auth, tags=["tokens"],
              summary="Exit (liquidate) a token, or with force stop it now keeping the position")
    async def stop(token_id: TokenId, body: StopBody) -> JSONResponse:
        return await do("stop_token", token_id, body, force=body.force)

    @app.post("/api/tokens/{token_id}/unignore", dependencies=auth, tags=["tokens"])
    async def unignore(token_id: TokenId, body: Body) -> JSONResponse:
        return await do("unignore", token_id, body)

    @app.get("/api/ignored", dependencies=auth, tags=["tokens"])
    async def ignored() -> list[dict[str, Any]]:
        return await reads.ignored(r, keys)

    @app.post("/api/handled/reset", dependencies=auth, tags=["tokens"], summary="Forget handled token(s) (C6)")
    async def handled_reset(body: HandledResetBody) -> JSONResponse:
        return await do("handled_reset", "" if body.all else body.token_id, body)

    @app.get("/api/signals", dependencies=auth, tags=["streams"])
    async def signals(count: Count = 50, before: Before = "",
                      token_id: Annotated[str, Query(max_length=128)] = "",
                      side: Annotated[Literal["", "BUY", "SELL"], Query()] = "") -> list[dict[str, Any]]:
        match = {k: v for k, v in (("token_id", token_id), ("side", side)) if v}
        return await reads.stream_page(r, keys.signals(), count, before, match)

    @app.get("/api/events", dependencies=auth, tags=["streams"])
    async def events(count: Count = 50, before: Before = "",
                     kind: Annotated[str, Query(max_length=64, description="prefix, e.g. token. or control.")] = "",
                     level: Annotated[Literal["", "info", "warning", "error"], Query()] = "",
                     token_id: Annotated[str, Query(max_length=128)] = "") -> list[dict[str, Any]]:
        match = {k: v for k, v in (("kind", kind), ("level", level), ("token_id", token_id)) if v}
        return await reads.stream_page(r, keys.events(), count, before, match)

    @app.get("/api/fills", dependencies=auth, tags=["streams"])
    async def fills(count: Count = 50, before: Before = "",
                    token_id: Annotated[str, Query(max_length=128)] = "") -> list[dict[str, Any]]:
        return await reads.stream_page(r, keys.fills(), count, before, {"token_id": token_id} if token_id else None)

    @app.get("/api/orders", dependencies=auth, tags=["streams"])
    async def orders(count: Count = 50, before: Before = "",
                     token_id: Annotated[str, Query(max_length=128)] = "") -> list[dict[str, Any]]:
        return await reads.stream_page(r, keys.orders(), count, before, {"token_id": token_id} if token_id else None)

    @app.get("/api/opportunities", dependencies=auth, tags=["streams"],
             summary="Arbitrage opportunities as the scanner wrote them (fields passed through)")
    async def opportunities(count: Count = 50, before: Before = "") -> list[dict[str, Any]]:
        return await reads.stream_page(r, keys.opportunities(), count, before)

    @app.get("/api/pnl", dependencies=auth, tags=["pnl"],
             summary="Realised + unrealised PnL, per UTC day, exposure, and realised PnL over time")
    async def pnl(points: Annotated[int, Query(ge=2, le=5000)] = 500) -> dict[str, Any]:
        return await reads.pnl(r, keys, points)

    @app.get("/api/leaders", dependencies=auth, tags=["copy trading"],
             summary="The leader scorecard: every followed wallet's copies, skips, PnL, slippage, delay, flags, paused and why")
    async def leaders() -> dict[str, Any]:
        return await read_leaders(r, keys, settings)

    @app.get("/api/leaders/{account}/backtest", dependencies=auth, tags=["copy trading"],
             summary="What-if: any wallet's trades of the last `days` days replayed through today's copy rules")
    async def leader_backtest(account: Annotated[str, PathParam(description="wallet address (0x + 40 hex digits)")],
                              days: Annotated[int, Query(description="the window, 1 to copytrade.backtest.max_days")] = 7
                              ) -> dict[str, Any]:
        return await backtests.run(account, days)

    @app.post("/api/leaders/{account}/pause", dependencies=auth, tags=["copy trading"],
              summary="Pause a leader: its BUYs are not copied (its SELLs still exit our copies) until resumed")
    async def leader_pause(account: Address, body: Body) -> JSONResponse:
        return await do("leader_pause", account.lower(),
                        body.model_copy(update={"reason": body.reason or "paused by operator"}))

    @app.post("/api/leaders/{account}/resume", dependencies=auth, tags=["copy trading"],
              summary="Resume a paused leader (auto-demotion or a pause); 404 when it is not paused")
    async def leader_resume(account: Address, body: Body) -> JSONResponse:
        if not await r.hexists(keys.leaders_paused(), account.lower()):
            raise HTTPException(404, f"leader {account.lower()} is not paused; nothing done")
        return await do("leader_resume", account.lower(), body)

    app.include_router(redemptions.router(r, keys, auth, do, Body))

    @app.get("/api/blacklist", dependencies=auth, tags=["blacklist"])
    async def blacklist() -> dict[str, Any]:
        return {"runtime": await reads.blacklist(r, keys), "config": list(settings.risk.blacklist_token_keys)}

    @app.post("/api/blacklist", dependencies=auth, tags=["blacklist"], summary="Add a runtime blacklist entry")
    async def blacklist_add(body: BlacklistBody) -> JSONResponse:
        expires = now_ms() + int(body.ttl_sec * 1000) if body.ttl_sec > 0 else 0
        return await do("blacklist_add", body.key, body, expires_at=expires)

    @app.delete("/api/blacklist/{key:path}", dependencies=auth, tags=["blacklist"])
    async def blacklist_remove(key: str, reason: Annotated[str, Query(max_length=500)] = "",
                               wait: bool = True) -> JSONResponse:
        if not printable_key(key):
            raise HTTPException(422, "key must be 1-200 printable characters")
        return await do("blacklist_remove", key, Body(reason=reason, wait=wait))

    @app.get("/api/halt", dependencies=auth, tags=["kill switch"])
    async def halt_state() -> dict[str, Any]:
        return {"halt": await r.get(keys.halt()) or "off"}

    @app.post("/api/halt", dependencies=auth, tags=["kill switch"],
              summary="halt: stop every session now; reduce_only: start nothing new")
    async def halt(body: HaltBody) -> JSONResponse:
        return await do("halt", body.mode, body)

    @app.post("/api/resume", dependencies=auth, tags=["kill switch"])
    async def resume(body: Body) -> JSONResponse:
        return await do("resume", "", body)

    @app.get("/api/config", dependencies=auth, tags=["config"], summary="Effective configuration, secrets redacted")
    async def config() -> dict[str, Any]:
        return effective_config(settings, secrets)

    @app.websocket("/api/ws")
    async def ws(websocket: WebSocket) -> None:
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
        by_header = scheme.lower() == "bearer" and authorized(value.strip())
        by_protocol = any(p.startswith("bearer.") and authorized(p[len("bearer."):]) for p in offered)
        if not (by_header or by_protocol):
            await websocket.close(code=4401, reason="missing or wrong bearer token")
            return
        sub = hub.subscribe()
        if sub is None:
            await websocket.close(code=1013, reason="too many websocket clients")
            return
        await websocket.accept(subprotocol=WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None)

        async def pump() -> None:
            await hub.ready.wait()
            await websocket.send_json({"type": "hello", "ts": now_ms()})
            while True:
                await websocket.send_json(await sub.next())

        async def until_closed() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(pump()), asyncio.create_task(until_closed())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            hub.unsubscribe(sub)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
