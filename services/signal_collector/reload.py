"""CollectorReloader: re-read the config file while running (A1, C9 for the collector).

Reading and validating the file is shared.config_reload's job (re-validated only when its content
changed). Here: a valid file whose settings differ from the running ones is returned (and the
target changes are logged and put on the events stream as ``config.reloaded``); an invalid one is
reported once per distinct error (log + ``config.invalid`` AuditEvent) and the last good settings
stay in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from loguru import logger

from services.signal_collector.signals import PRODUCER
from services.signal_collector.targets import diff_targets
from shared.clock import now_ms
from shared.config import Settings
from shared.config_reload import ConfigReloader
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import AuditEvent, stable_id


class CollectorReloader:
    def __init__(self, settings: Settings, path: Path | str | None = None) -> None:
        self.file = ConfigReloader(settings, path)
        self.reloads = 0
        self.invalid = 0
        self.last_error = ""

    @property
    def path(self) -> Path:
        return self.file.path

    def status(self) -> dict[str, Any]:
        return {"reloads": self.reloads, "invalid": self.invalid, "last_error": self.last_error}

    async def reload(self, current: Settings, redis: aioredis.Redis, keys: Keys, service: str) -> Settings | None:
        result = self.file.poll()
        if result.error:
            if result.error != self.last_error:  # once per distinct error, not every period
                self.invalid += 1
                self.last_error = result.error
                logger.error("config reload: keeping the last good config: {}", result.error)
                await self._event(redis, keys, service, "config.invalid", "error", result.error,
                                  {"path": str(self.path)})
            return None
        if result.settings is None or result.settings == current:
            return None
        self.last_error = ""
        new = result.settings
        changes = diff_targets(current.copytrade.targets, new.copytrade.targets)
        self.reloads += 1
        detail: dict[str, Any] = {"path": str(self.path), **changes.as_detail()}
        logger.info("config reloaded from {}: {}", self.path, changes.as_detail() or "no target changes")
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
