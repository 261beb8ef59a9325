"""Leaders' portfolio values for proportional copy sizing (docs/copytrading.md): every
``copytrade.value_refresh_sec`` the Data API ``/value`` of each enabled target whose rules size
proportionally is written to ``pf:leader:value``, where the orchestrator reads it. The reads take
slots of the collector's Data API budget, like the polls, and a 429 pauses it (leader_stats.py)."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis
from loguru import logger

from services.signal_collector.budget import RequestBudget
from services.signal_collector.leader_stats import THROTTLED_PAUSE_SEC, StatsThrottled, budgeted_get
from shared.backoff import honour_retry_after
from shared.config import CopytradeSection
from shared.keys import Keys
from shared.venue.data_api import parse_value


def proportional_leaders(cfg: CopytradeSection) -> list[str]:
    return sorted({t.account.lower() for t in cfg.targets
                   if t.enabled and cfg.rules_for(t.account).sizing == "proportional"})


async def refresh_values(r: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, data_url: str,
                         cfg: CopytradeSection, budget: RequestBudget) -> dict[str, float]:
    """Read and store the values; a wallet whose read fails keeps its last value (logged)."""
    got: dict[str, float] = {}
    for account in proportional_leaders(cfg):
        try:
            value = parse_value(await budgeted_get(http, f"{data_url.rstrip('/')}/value", {"user": account}, budget),
                                account)
        except StatsThrottled as exc:
            budget.pause(honour_retry_after(1.0, exc.retry_after, THROTTLED_PAUSE_SEC))
            logger.warning("portfolio value of {}: {}; the rest wait for the next round", account, exc)
            break
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("portfolio value of {}: {}", account, exc)
            continue
        if value is not None:
            got[account] = value
    if got:
        await r.hset(keys.leader_value(), mapping={a: repr(v) for a, v in got.items()})
    return got
