"""Each enabled leader's own PnL and volume, read from the Data API v2 for its scorecard
(docs/copytrading.md "Scorecard"; the rule: docs/venue.md D5): every ``copytrade.value_refresh_sec``
(beside the portfolio values), written to ``pf:leader:stats``, where ``polyfleet leaders`` and
``GET /api/leaders`` read it. A periodic read, so a scorecard request never waits on the venue.

The requests take slots of the collector's Data API budget, like the polls (leader_reads.py)."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis

from services.signal_collector.budget import RequestBudget
from services.signal_collector.leader_reads import budgeted_get, read_each
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


def enabled_leaders(cfg: CopytradeSection) -> list[str]:
    return sorted({t.account.lower() for t in cfg.targets if t.enabled})


async def read_stats(http: httpx.AsyncClient, data_url: str, account: str, window: str, now: int,
                     budget: RequestBudget) -> LeaderStats:
    """One wallet's standing and volume (two requests); raises httpx errors, :class:`~services.signal_collector.leader_reads.DataApiThrottled`
    and ``BadStats``."""
    base = data_url.rstrip("/")
    pnl = parse_standing(await budgeted_get(http, f"{base}{STANDING_PATH}", standing_params(account, window), budget))
    volume, trades = parse_volume(await budgeted_get(http, f"{base}{VOLUME_PATH}",
                                             volume_params(account, window, now // 1000), budget))
    return LeaderStats(pnl, volume, trades, window, now)


async def refresh_stats(r: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, data_url: str,
                        cfg: CopytradeSection, budget: RequestBudget) -> dict[str, LeaderStats]:
    """Read and store every enabled leader's stats; a wallet whose read fails keeps its last ones (logged)."""
    async def read(account: str) -> LeaderStats:
        return await read_stats(http, data_url, account, cfg.leader_stats_window, now_ms(), budget)

    got = await read_each(enabled_leaders(cfg), read, budget, "venue PnL and volume")
    if got:
        await r.hset(keys.leader_stats(), mapping={a: s.to_json() for a, s in got.items()})
    return got
