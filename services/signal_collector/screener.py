"""ScreenSource: read Gamma's open markets, screen them, emit new candidates as BUY signals (A7).

The markets come from ``/markets/keyset`` (docs/venue.md G1-G2: 100 a page, paged by
``after_cursor``, both market systems asked for). Gamma is asked to pre-filter (``volume_num_min``, ``liquidity_num_min``, ``end_date_min/max``,
largest volume first) so a refresh reads few pages, but the full screen is re-applied here: the
decision must not depend on which filters a server honours. Every token of a screened market goes
into the metadata cache (A8) for free. A token is signalled once: its id depends on the token
only and the ``screen`` seen-set remembers it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from loguru import logger

from services.signal_collector.emit import SignalWriter
from services.signal_collector.meta import MetaCache
from services.signal_collector.metrics import LatencyBook
from services.signal_collector.screen import screen
from services.signal_collector.signals import SCREEN, screen_signal
from shared.clock import now_ms
from shared.config import Settings
from shared.venue.errors import VenueError
from shared.venue.gamma import GammaMarket, parse_markets
from shared.venue.gamma_keyset import BOTH_SYSTEMS, MARKETS_PAGE_MAX, read_keyset


class ScreenError(Exception):
    """The refresh failed (Gamma unreachable or answering nonsense); try again next refresh."""


class ScreenSource:
    def __init__(self, http: httpx.AsyncClient, meta: MetaCache, writer: SignalWriter, latency: LatencyBook,
                 settings: Callable[[], Settings], gamma_url: str) -> None:
        self.gamma_url = gamma_url.rstrip("/")
        self.http = http
        self.meta = meta
        self.writer = writer
        self.latency = latency
        self.settings = settings
        self.refreshes = 0
        self.signals = 0
        self.bad_markets = 0
        self.rejected: Counter[str] = Counter()

    def _params(self, now: datetime) -> list[tuple[str, str | int]]:
        cfg = self.settings().screen
        params: list[tuple[str, str | int]] = [("closed", "false"), *BOTH_SYSTEMS, ("order", "volumeNum"),
                                               ("ascending", "false")]
        if cfg.min_volume > 0:
            params.append(("volume_num_min", f"{cfg.min_volume:g}"))
        if cfg.min_liquidity > 0:
            params.append(("liquidity_num_min", f"{cfg.min_liquidity:g}"))
        if cfg.end_after_hours > 0:
            params.append(("end_date_min", (now + timedelta(hours=cfg.end_after_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")))
        if cfg.end_within_hours > 0:
            params.append(("end_date_max", (now + timedelta(hours=cfg.end_within_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")))
        return params

    async def _markets(self, now: datetime) -> list[GammaMarket]:
        try:
            rows = await read_keyset(self.http, self.gamma_url, "markets", self._params(now), MARKETS_PAGE_MAX,
                                     self.settings().screen.max_markets)
        except VenueError as exc:
            raise ScreenError(str(exc)) from exc
        markets, bad = parse_markets(rows)
        self.bad_markets += len(bad)
        if bad:
            logger.warning("screen: skipped {} unreadable market(s), e.g. {}", len(bad), bad[0])
        return markets

    async def step(self) -> int:
        """One refresh; returns the signals emitted. Raises :class:`ScreenError`."""
        now = datetime.now(UTC)
        markets = await self._markets(now)
        candidates, rejected = screen(markets, self.settings().screen, now)
        self.refreshes += 1
        self.rejected = rejected
        for m in {c.market.id: c.market for c in candidates}.values():
            await self.meta.put_market(m)
        stamp = now_ms()
        metas = await self.meta.get_many([c.token_id for c in candidates]) if candidates else {}
        sigs = [screen_signal(c, stamp, metas[c.token_id]) for c in candidates]
        emitted = await self.writer.write(SCREEN, sigs)
        done = now_ms()
        for _ in emitted:
            self.latency.observe(SCREEN, "process", done - stamp)
        self.signals += len(emitted)
        if emitted:
            logger.info("screen: {} new candidate token(s) of {} market(s) read", len(emitted), len(markets))
        return len(emitted)
