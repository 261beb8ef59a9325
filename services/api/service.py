"""ApiService: the API process. Connects Redis, serves the FastAPI app with uvicorn on
``api.host:api.port`` (loopback by default) and writes the ``api`` heartbeat for ``--check``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from loguru import logger
from prometheus_client import REGISTRY
from redis.exceptions import RedisError

from services.api.app import create_app
from services.api.fleet_metrics import FleetCollector
from shared.config import ConfigError, Settings, load_secrets, redis_url
from shared.redisio.health import beat
from shared.service import RedisService

SERVICE = "api"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: shared.runtime owns SIGTERM/SIGINT and calls stop()."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiService(RedisService):
    def __init__(self, settings: Settings, instance: str, redis: aioredis.Redis | None = None) -> None:
        super().__init__(settings, instance, redis)
        self.secrets = load_secrets()
        if not self.secrets.api_token:
            raise ConfigError("PF_API_TOKEN is not set: the API refuses to start without a bearer token "
                              "(export PF_API_TOKEN=..., or PF_API_TOKEN_FILE=path)")
        self.server: _Server | None = None
        self._app: Any = None

    def stop(self) -> None:
        super().stop()
        if self.server is not None:
            self.server.should_exit = True

    async def run(self) -> None:
        r = await self.connect_redis()
        if self.settings.monitoring.metrics_enabled:
            REGISTRY.register(FleetCollector(redis_url(), self.keys))
        app = create_app(self.settings, r, self.keys, self.secrets)
        self._app = app
        cfg = uvicorn.Config(app, host=self.settings.api.host, port=self.settings.api.port, log_config=None,
                             access_log=False, lifespan="on", ws="websockets-sansio", proxy_headers=False)
        self.server = _Server(cfg)
        if self.stopping:
            self.server.should_exit = True
        beats = asyncio.create_task(self._heartbeat_loop())
        logger.info("API on http://{}:{} (dashboard at /, OpenAPI at /docs)", self.settings.api.host,
                    self.settings.api.port)
        try:
            await self.server.serve()
            if not self.server.started and not self.stopping:
                raise RuntimeError(f"could not serve on {self.settings.api.host}:{self.settings.api.port}")
        finally:
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)
            await self.close_redis()

    def ws_clients(self) -> int:
        return len(self._app.state.hub.subscribers) if self._app is not None else 0

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.monitoring.heartbeat_interval_sec
        while True:
            if self.server is not None and self.server.started:
                try:
                    await beat(self.redis, self.keys, SERVICE, self.instance, interval,
                               {"port": self.settings.api.port, "ws_clients": self.ws_clients()})
                except (RedisError, OSError) as exc:
                    logger.warning("heartbeat failed: {}", exc)
            await asyncio.sleep(interval)
