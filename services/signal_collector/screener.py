"""ScreenSource: read Gamma's open markets, screen them, emit new candidates as BUY signals (A7).

Gamma is asked to pre-filter (``volume_num_min``, ``liquidity_num_min``, ``end_date_min/max``,
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
from shared.venue.gamma import GammaMarket, parse_markets

PAGE = 100  # a third-party catalogue reports Gamma caps /markets pages at 100


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

    def _params(self, now: datetime, offset: int) -> dict[str, str | int]:
        cfg = self.settings().screen
        params: dict[str, str | int] = {"active": "true", "closed": "false", "limit": PAGE, "offset": offset,
                                        "order": "volumeNum", "ascending": "false"}
        if cfg.min_volume > 0:
            params["volume_num_min"] = f"{cfg.min_volume:g}"
        if cfg.min_liquidity > 0:
            params["liquidity_num_min"] = f"{cfg.min_liquidity:g}"
        if cfg.end_after_hours > 0:
            params["end_date_min"] = (now + timedelta(hours=cfg.end_after_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if cfg.end_within_hours > 0:
            params["end_date_max"] = (now + timedelta(hours=cfg.end_within_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return params

    async def _markets(self, now: datetime) -> list[GammaMarket]:
        settings = self.settings()
        url = f"{self.gamma_url}/markets"
        out: list[GammaMarket] = []
        offset = 0
        while len(out) < settings.screen.max_markets:
            try:
                resp = await self.http.get(url, params=self._params(now, offset))
            except httpx.HTTPError as exc:
                raise ScreenError(f"GET /markets failed: {type(exc).__name__}: {exc}") from exc
            if resp.status_code != 200:
                raise ScreenError(f"GET /markets -> {resp.status_code}: {resp.text[:120]}")
            try:
                body = resp.json()
            except ValueError as exc:
                raise ScreenError("GET /markets: body is not JSON") from exc
            markets, bad = parse_markets(body)
            self.bad_markets += len(bad)
            if bad:
                logger.warning("screen: skipped {} unreadable market(s), e.g. {}", len(bad), bad[0])
            out.extend(markets)
            if not isinstance(body, list) or len(body) < PAGE:
                break
            offset += PAGE
        return out[:settings.screen.max_markets]

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
