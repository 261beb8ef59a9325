"""A CLOB ``/markets/{condition_id}`` answer reduced to whether the market resolved and which token
won (docs/venue.md Z1: ``closed`` and a token's ``winner: true``), and the read of several of them.
Used by the arbitrage's sets held to resolution and by the leader backtest's marks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from loguru import logger


@dataclass(frozen=True)
class MarketState:
    """A CLOB ``/markets/{condition_id}`` answer reduced to what resolution needs."""

    condition_id: str
    closed: bool
    winners: frozenset[str]  # token ids with ``winner: true`` (empty until the oracle reports)

    @property
    def resolved(self) -> bool:
        return self.closed and bool(self.winners)


def market_state(row: Any) -> MarketState | None:
    """None for an answer that is not a market object."""
    if not isinstance(row, dict) or not row.get("condition_id"):
        return None
    tokens = row.get("tokens") or []
    winners = frozenset(str(t["token_id"]) for t in tokens
                        if isinstance(t, dict) and t.get("winner") is True and t.get("token_id"))
    return MarketState(str(row["condition_id"]), bool(row.get("closed")), winners)


async def read_market_states(http: httpx.AsyncClient, clob_url: str,
                             condition_ids: Iterable[str]) -> dict[str, MarketState]:
    """Each condition's state, one request each; one that cannot be read is left out (logged)."""
    out: dict[str, MarketState] = {}
    for cid in dict.fromkeys(condition_ids):
        try:
            resp = await http.get(f"{clob_url.rstrip('/')}/markets/{cid}")
            resp.raise_for_status()
            state = market_state(resp.json())
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("market {} unreadable for resolution: {}", cid[:12], exc)
            continue
        if state is not None:
            out[cid] = state
    return out
