"""What the scanner's rooms share: Redis and its keys, the settings, one HTTP client, the counters
the heartbeat reports, the catalogue in force and the audit writer.

The rooms (:mod:`catalogue_sync`, :mod:`evaluation`, :mod:`depth`, :mod:`execution`,
:mod:`resolution`) each run one loop; :class:`~services.arb_scanner.service.ArbScannerService`
builds them around one :class:`ScanContext` and wires them together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from services.arb_scanner.catalogue import ArbSet
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import STREAM_MAXLEN, Keys
from shared.messages import AuditEvent, stable_id
from shared.redisio.streams import add_message
from shared.venue.environment import VenueEnvironment, resolve_environment

SERVICE = "arb_scanner"
# the rooms' counters, reported in the heartbeat (the tick feed's own are added there)
STATS = ("ticks", "evaluations", "rescans", "published", "opportunities_open", "depth_fetches", "depth_errors", "bad_books",
         "executions", "execution_refusals", "catalogue_sets", "catalogue_skipped", "catalogue_errors", "held_sets",
         "resolution_checks", "redeemed", "redeem_errors")


class ScanContext:
    def __init__(self, settings: Settings, instance: str, keys: Keys, redis: Callable[[], aioredis.Redis]) -> None:
        self.settings = settings
        self.cfg = settings.arbitrage
        self.instance = instance
        self.producer = f"{SERVICE}:{instance}"
        self.keys = keys
        self._redis = redis  # the service's client, which exists only once it is connected
        self._http: httpx.AsyncClient | None = None
        self.stats: dict[str, int] = dict.fromkeys(STATS, 0)
        # the catalogue in force (catalogue_sync installs it; every other room reads it)
        self.sets: dict[str, ArbSet] = {}
        self.by_token: dict[str, list[tuple[ArbSet, int]]] = {}
        self._env: VenueEnvironment | None = None

    async def venue(self) -> VenueEnvironment:
        """The venue environment (every URL and address): resolved on first use."""
        if self._env is None:
            self._env = await resolve_environment(self.settings.polymarket, self.settings.mode)
        return self._env

    async def venue_url(self, name: str) -> str:
        return (await self.venue()).url(name)

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("no HTTP client: the scanner is not running")
        return self._http

    def open_http(self) -> None:
        self._http = httpx.AsyncClient(timeout=10.0)

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def audit(self, kind: str, level: str, market: str, reason: str, detail: dict[str, Any]) -> None:
        msg = AuditEvent(id=stable_id(SERVICE, kind, market, now_ms()), ts_event=now_ms(), ts_init=now_ms(),
                         producer=self.producer, kind=kind, level=level,  # type: ignore[arg-type]
                         reason=reason, detail={"market": market, **detail})
        await add_message(self.redis, self.keys.events(), msg, STREAM_MAXLEN["events"])


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; True when stopping (each room's loop paces itself on it)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
