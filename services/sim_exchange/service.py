"""The sim_exchange service: one uvicorn server plus the random-walk loop and scripted wallets.

``POST /_sim/reset`` replaces the whole venue (its state, the app serving it, the loops driving it,
every open socket) by a new one built from the config, so a reset sim is the sim a restart gives,
without the restart: the tests keep one process and reset it for each test instead of paying a
process start (about a second of CPU) per test. The reset is handled here, in front of the app,
because it swaps the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from loguru import logger
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from services.sim_exchange.app import create_app
from services.sim_exchange.state import SimState
from services.sim_exchange.wallets import ScriptedWallet
from shared.config import Settings, SimExchangeSection

RESET_PATH = "/_sim/reset"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: shared.runtime owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Venue:
    """One venue as configured: its state, the app serving it and the loops driving it."""

    def __init__(self, cfg: SimExchangeSection) -> None:
        self.cfg = cfg
        self.state = SimState(cfg, cfg.chain_id)
        self.app = create_app(self.state)
        self.wallets = [ScriptedWallet(self.state, w, cfg.seed) for w in cfg.wallets]
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.walk())] + [asyncio.create_task(w.run()) for w in self.wallets]
        self.tasks.append(asyncio.create_task(self.state.load.run()))  # ws_rate_per_sec market-data load
        self.tasks.append(asyncio.create_task(self.state.life.run()))  # settlement, delayed orders, heartbeats

    async def walk(self) -> None:
        interval = self.cfg.tick_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.state.tick()
            except Exception:
                logger.exception("walk step failed")

    async def stop(self) -> None:
        tasks = self.tasks + list(self.state.paths.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop the loops and close every socket (a fresh venue has no connections)."""
        await self.stop()
        await self.state.hub.drop_all()
        await self.state.live.drop_all()
        await self.state.life.users.drop_all()


class SimExchange:
    def __init__(self, settings: Settings, instance: str = "") -> None:
        self.cfg = settings.sim_exchange  # what the process started with (host and port hold for good)
        self.venue = Venue(self.cfg)
        # interface: uvicorn cannot tell a bound coroutine method is an ASGI 3 app
        config = uvicorn.Config(self.asgi, host=self.cfg.host, port=self.cfg.port, log_level="warning",
                                ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=1,
                                interface="asgi3")
        self.server = _Server(config)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == RESET_PATH:
            response = await self.reset(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.venue.app(scope, receive, send)

    async def reset(self, request: Request) -> JSONResponse:
        """``POST /_sim/reset``: a fresh venue of the current config (the one the process started
        with, or the last reset's), or, with a body ``{"sim_exchange": {...}}``, of that section as a
        config file would hold it (keys left out take their defaults; host and port are the
        process's and cannot change), which becomes the current config."""
        if request.method != "POST":
            return JSONResponse({"error": "Method Not Allowed"}, status_code=405)
        try:
            cfg = self._reset_config(await request.json() if await request.body() else None)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": f"bad reset: {exc}"}, status_code=400)
        old, self.venue = self.venue, Venue(cfg)
        await old.close()
        self.venue.start()
        logger.info("venue reset ({} markets, seed {})", cfg.markets, cfg.seed)
        return JSONResponse({"reset": True, "markets": cfg.markets, "seed": cfg.seed})

    def _reset_config(self, body: Any) -> SimExchangeSection:
        if body is None:
            return self.venue.cfg
        section = body.get("sim_exchange") if isinstance(body, dict) else None
        if not isinstance(section, dict):
            raise ValueError('the body is {"sim_exchange": {...}} or nothing')
        cfg = SimExchangeSection.model_validate({"host": self.cfg.host, "port": self.cfg.port, **section})
        if (cfg.host, cfg.port) != (self.cfg.host, self.cfg.port):
            raise ValueError(f"host and port are the process's ({self.cfg.host}:{self.cfg.port}), not a reset's")
        return cfg

    async def run(self) -> None:
        logger.info("sim_exchange on http://{}:{} ({} markets, {} scripted wallets, seed {})", self.cfg.host,
                    self.cfg.port, self.cfg.markets, len(self.venue.wallets), self.cfg.seed)
        self.venue.start()
        try:
            await self.server.serve()
        finally:
            await self.venue.stop()

    def stop(self) -> None:
        self.server.should_exit = True
