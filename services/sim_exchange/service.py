"""The sim_exchange service: one uvicorn server plus the random-walk loop and scripted wallets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from loguru import logger

from services.sim_exchange.app import create_app
from services.sim_exchange.state import SimState
from services.sim_exchange.wallets import ScriptedWallet
from shared.config import Settings


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: shared.runtime owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SimExchange:
    def __init__(self, settings: Settings, instance: str = "") -> None:
        self.cfg = settings.sim_exchange
        self.state = SimState(self.cfg, self.cfg.chain_id)
        config = uvicorn.Config(create_app(self.state), host=self.cfg.host, port=self.cfg.port, log_level="warning",
                                ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=1)
        self.server = _Server(config)
        self.wallets = [ScriptedWallet(self.state, w, self.cfg.seed) for w in self.cfg.wallets]

    async def walk(self) -> None:
        interval = self.cfg.tick_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.state.tick()
            except Exception:
                logger.exception("walk step failed")

    async def run(self) -> None:
        logger.info("sim_exchange on http://{}:{} ({} markets, {} scripted wallets, seed {})", self.cfg.host,
                    self.cfg.port, self.cfg.markets, len(self.wallets), self.cfg.seed)
        tasks = [asyncio.create_task(self.walk())] + [asyncio.create_task(w.run()) for w in self.wallets]
        tasks.append(asyncio.create_task(self.state.load.run()))  # ws_rate_per_sec market-data load
        tasks.append(asyncio.create_task(self.state.life.run()))  # settlement, delayed orders, heartbeats
        try:
            await self.server.serve()
        finally:
            for t in tasks + list(self.state.paths.values()):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        self.server.should_exit = True
