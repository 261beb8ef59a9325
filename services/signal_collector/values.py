"""Leaders' portfolio values for proportional copy sizing (docs/copytrading.md): every
``copytrade.value_refresh_sec`` the Data API ``/value`` of each enabled target whose rules size
proportionally is written to ``pf:leader:value``, where the orchestrator reads it. The reads take
slots of the collector's Data API budget, like the polls, and a 429 pauses it (leader_reads.py)."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis

from services.signal_collector.budget import RequestBudget
from services.signal_collector.leader_reads import budgeted_get, read_each
from shared.config import CopytradeSection
from shared.keys import Keys
from shared.venue.data_api import parse_value


def proportional_leaders(cfg: CopytradeSection) -> list[str]:
    return sorted({t.account.lower() for t in cfg.targets
                   if t.enabled and cfg.rules_for(t.account).sizing == "proportional"})


async def refresh_values(r: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, data_url: str,
                         cfg: CopytradeSection, budget: RequestBudget) -> dict[str, float]:
    """Read and store the values; a wallet whose read fails keeps its last value (logged)."""
    async def read(account: str) -> float | None:
        return parse_value(await budgeted_get(http, f"{data_url.rstrip('/')}/value", {"user": account}, budget), account)

    got = await read_each(proportional_leaders(cfg), read, budget, "portfolio value")
    if got:
        await r.hset(keys.leader_value(), mapping={a: repr(v) for a, v in got.items()})
    return got
