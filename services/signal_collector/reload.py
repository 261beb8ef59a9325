"""ConfigReloader: re-read the config file while running (A1, C9 for the collector).

A valid file whose settings differ from the running ones is returned (and the target changes
are logged and put on the events stream as ``config.reloaded``); an invalid one is reported once
per distinct error (log + ``config.invalid`` AuditEvent) and the last good settings stay in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.signal_collector.signals import PRODUCER
from services.signal_collector.targets import diff_targets
from shared.clock import now_ms
from shared.config import ConfigError, Settings, config_path, load_settings
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import AuditEvent, stable_id


class ConfigReloader:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reloads = 0
        self.invalid = 0
        self.last_error = ""

    def status(self) -> dict[str, Any]:
        return {"reloads": self.reloads, "invalid": self.invalid, "last_error": self.last_error}

    async def reload(self, current: Settings, redis: aioredis.Redis, keys: Keys, service: str) -> Settings | None:
        path = self.path or config_path()
        try:
            new = load_settings(path)
        except ConfigError as exc:
            message = str(exc)
            if message != self.last_error:  # once per distinct error, not every period
                self.invalid += 1
                self.last_error = message
                logger.error("config reload: keeping the last good config: {}", message)
                await self._event(redis, keys, service, "config.invalid", "error", message, {"path": str(path)})
            return None
        self.last_error = ""
        if new == current:
            return None
        changes = diff_targets(current.copytrade.targets, new.copytrade.targets)
        self.reloads += 1
        detail: dict[str, Any] = {"path": str(path), **changes.as_detail()}
        logger.info("config reloaded from {}: {}", path, changes.as_detail() or "no target changes")
        await self._event(redis, keys, service, "config.reloaded", "info", "", detail)
        return new

    @staticmethod
    async def _event(redis: aioredis.Redis, keys: Keys, service: str, kind: str, level: str, reason: str,
                     detail: dict[str, Any]) -> None:
        ts = now_ms()
        event = AuditEvent(id=stable_id(service, kind, ts, reason), ts_event=ts, ts_init=ts, producer=PRODUCER,
                           kind=kind, level=level, reason=reason[:2000], detail=detail)  # type: ignore[arg-type]
        await redis.xadd(keys.events(), event.encode(),  # type: ignore[arg-type]
                         maxlen=STREAM_MAXLEN["events"], approximate=True)
