"""Merge, split and neg-risk convert: the conditional-token side of an arbitrage (E4).

* sim: sim_exchange's ``POST /_sim/ctf/{split,merge,convert}`` (same host as the CLOB), which
  applies the contracts' bookkeeping to the sim account.
* live: contract calls on Polygon (docs/arbitrage.md "Live merge and split": ConditionalTokens
  ``mergePositions``/``splitPosition`` for binary markets, the NegRiskAdapter for neg-risk ones,
  through the V2 collateral adapter so the flows stay in pUSD). Not implemented yet:
  :func:`make_ctf` refuses live execution with a clear error instead of trading half an arbitrage.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from shared.config import ConfigError, Settings


class CtfFailed(RuntimeError):
    """The operation was refused or its outcome is unknown (the message says which)."""


class Ctf(Protocol):
    async def split(self, condition_id: str, amount: float) -> str: ...
    async def merge(self, condition_id: str, amount: float) -> str: ...
    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str: ...
    async def aclose(self) -> None: ...


class SimCtf:
    def __init__(self, base_url: str, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def _op(self, op: str, body: dict[str, Any]) -> str:
        try:
            resp = await self.http.post(f"/_sim/ctf/{op}", json={"address": self.address, **body})
        except httpx.HTTPError as exc:
            raise CtfFailed(f"{op}: outcome unknown ({type(exc).__name__}: {exc})") from exc
        if resp.status_code != 200:
            raise CtfFailed(f"{op} refused: {resp.text[:200]}")
        return str(resp.json()["op"]["tx_hash"])

    async def split(self, condition_id: str, amount: float) -> str:
        return await self._op("split", {"condition_id": condition_id, "amount": amount})

    async def merge(self, condition_id: str, amount: float) -> str:
        return await self._op("merge", {"condition_id": condition_id, "amount": amount})

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        return await self._op("convert", {"neg_risk_market_id": neg_risk_market_id,
                                          "outcome_indexes": outcome_indexes, "amount": amount})

    async def aclose(self) -> None:
        await self.http.aclose()


def make_ctf(settings: Settings, address: str) -> Ctf:
    if settings.mode == "sim":
        return SimCtf(settings.polymarket.clob_url, address)
    raise ConfigError(
        f"arbitrage.execute in {settings.mode} mode needs on-chain merge/split, which is not implemented yet "
        "(docs/arbitrage.md 'Live merge and split'); set arbitrage.execute: false to scan only")
