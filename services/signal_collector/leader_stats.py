"""Each enabled leader's own PnL and volume, read from the Data API v2 for its scorecard
(docs/copytrading.md "Scorecard"; the rule: docs/venue.md D5): every ``copytrade.value_refresh_sec``
(beside the portfolio values), written to ``pf:leader:stats``, where ``polyfleet leaders`` and
``GET /api/leaders`` read it. A periodic read, so a scorecard request never waits on the venue.

The requests take slots of the collector's Data API budget, like the polls: a 429 is a verdict on
our IP, so it pauses the budget (the polls too) for its ``Retry-After`` and ends this round; the
leaders not read keep their last figures."""

from __future__ import annotations

from typing import Any

import httpx
import redis.asyncio as aioredis
from loguru import logger

from services.signal_collector.budget import RequestBudget
from shared.backoff import honour_retry_after
from shared.clock import now_ms
from shared.config import CopytradeSection
from shared.keys import Keys
from shared.venue.data_stats import (
    STANDING_PATH,
    VOLUME_PATH,
    LeaderStats,
    parse_standing,
    parse_volume,
    standing_params,
    volume_params,
)

THROTTLED_PAUSE_SEC = 60.0  # the longest a 429's Retry-After holds the budget back


class StatsThrottled(Exception):
    def __init__(self, retry_after: str | None) -> None:
        super().__init__(f"429 Too Many Requests (Retry-After {retry_after})")
        self.retry_after = retry_after


def enabled_leaders(cfg: CopytradeSection) -> list[str]:
    return sorted({t.account.lower() for t in cfg.targets if t.enabled})


async def budgeted_get(http: httpx.AsyncClient, url: str, params: dict[str, Any], budget: RequestBudget) -> Any:
    """One Data API read in a slot of the collector's budget; a 429 raises :class:`StatsThrottled`."""
    async with budget.slot():
        resp = await http.get(url, params=params)
    if resp.status_code == 429:
        raise StatsThrottled(resp.headers.get("Retry-After"))
    resp.raise_for_status()
    return resp.json()


async def read_stats(http: httpx.AsyncClient, data_url: str, account: str, window: str, now: int,
                     budget: RequestBudget) -> LeaderStats:
    """One wallet's standing and volume (two requests); raises httpx errors, :class:`StatsThrottled`
    and ``BadStats``."""
    base = data_url.rstrip("/")
    pnl = parse_standing(await budgeted_get(http, f"{base}{STANDING_PATH}", standing_params(account, window), budget))
    volume, trades = parse_volume(await budgeted_get(http, f"{base}{VOLUME_PATH}",
                                             volume_params(account, window, now // 1000), budget))
    return LeaderStats(pnl, volume, trades, window, now)


async def refresh_stats(r: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, data_url: str,
                        cfg: CopytradeSection, budget: RequestBudget) -> dict[str, LeaderStats]:
    """Read and store every enabled leader's stats; a wallet whose read fails keeps its last ones (logged)."""
    got: dict[str, LeaderStats] = {}
    for account in enabled_leaders(cfg):
        try:
            got[account] = await read_stats(http, data_url, account, cfg.leader_stats_window, now_ms(), budget)
        except StatsThrottled as exc:
            budget.pause(honour_retry_after(1.0, exc.retry_after, THROTTLED_PAUSE_SEC))
            logger.warning("venue PnL and volume of {}: {}; the rest wait for the next round", account, exc)
            break
        except (httpx.HTTPError, ValueError) as exc:  # BadStats and a body that is not JSON are ValueErrors
            logger.warning("venue PnL and volume of {}: {}", account, exc)
    if got:
        await r.hset(keys.leader_stats(), mapping={a: s.to_json() for a, s in got.items()})
    return got
