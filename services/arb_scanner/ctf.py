"""Merge, split, neg-risk convert and redeem: the conditional-token side of an arbitrage (E4).

* sim_api: sim_exchange's ``POST /_sim/ctf/{split,merge,convert,redeem}`` (same host as the CLOB), which
  applies the contracts' bookkeeping to the sim account.
* rpc: contract calls on Polygon, signed and sent over JSON-RPC (:mod:`chain_ctf`; in sim mode
  against sim_exchange's ``/_sim/rpc``). EOA wallets only: a proxy or Safe wallet's positions
  can only be moved through the builder relayer, which is not implemented.

``arbitrage.chain.ctf: auto`` picks sim_api in sim mode and rpc in live mode (paper mode refuses
execution: :func:`check_execution_mode`).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from shared.config import SIM_PRIVATE_KEY, ConfigError, Secrets, Settings
from shared.venue.environment import VenueEnvironment


class CtfError(RuntimeError):
    """A position call (split, merge, convert, redeem, approval) that did not finish as asked.

    Never raised itself; the subclass says what the caller must do::

        CtfError
        ├── CtfRejected  refused or reverted, nothing changed: record it and move on
        └── CtfHalt      sent with no answer, the outcome is unknown: stop trading until a person looks

    Siblings, so ``except CtfRejected`` can never swallow a halt by accident.
    """


class CtfRejected(CtfError):
    """Refused or reverted: nothing changed. Record it and move on (hold what was bought, merge a
    split back, retry a redeem at the next check)."""


class CtfHalt(CtfError):
    """Sent with no answer (a transaction without a receipt, an order that may have filled): the
    position is unknown. Stop trading until a person looks."""

    report: dict[str, Any] | None = None  # the execution so far, when the executor knows it


class Ctf(Protocol):
    async def split(self, condition_id: str, amount: float, neg_risk: bool = False) -> str: ...
    async def merge(self, condition_id: str, amount: float, neg_risk: bool = False) -> str: ...
    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str: ...
    async def redeem(self, condition_id: str, amounts: tuple[float, float], neg_risk: bool = False) -> str:
        """Redeem a resolved market. ``amounts`` ([YES, NO]) is what the NegRiskAdapter redeems;
        the ConditionalTokens shape (binary) redeems the whole balance and ignores it."""
        ...
    async def aclose(self) -> None: ...


class SimCtf:
    def __init__(self, base_url: str, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def _op(self, op: str, body: dict[str, Any]) -> str:
        try:
            resp = await self.http.post(f"/_sim/ctf/{op}", json={"address": self.address, **body})
        except httpx.HTTPError as exc:
            raise CtfHalt(f"{op}: outcome unknown ({type(exc).__name__}: {exc})") from exc
        if resp.status_code != 200:
            raise CtfRejected(f"{op} refused: {resp.text[:200]}")
        return str(resp.json()["op"]["tx_hash"])

    async def split(self, condition_id: str, amount: float, neg_risk: bool = False) -> str:
        return await self._op("split", {"condition_id": condition_id, "amount": amount})

    async def merge(self, condition_id: str, amount: float, neg_risk: bool = False) -> str:
        return await self._op("merge", {"condition_id": condition_id, "amount": amount})

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        return await self._op("convert", {"neg_risk_market_id": neg_risk_market_id,
                                          "outcome_indexes": outcome_indexes, "amount": amount})

    async def redeem(self, condition_id: str, amounts: tuple[float, float], neg_risk: bool = False) -> str:
        body: dict[str, Any] = {"condition_id": condition_id}
        if neg_risk:
            body["amounts"] = list(amounts)
        return await self._op("redeem", body)

    async def aclose(self) -> None:
        await self.http.aclose()


def check_execution_mode(settings: Settings) -> None:
    """Paper mode never sends an order or a transaction, and arbitrage execution has no paper fill
    model: refuse it there (before any client is built) rather than trade for real in paper mode."""
    if settings.mode == "paper" and settings.arbitrage.execute:
        raise ConfigError("arbitrage.execute is true in paper mode, which never sends orders or transactions and "
                          "has no paper model of arbitrage legs: run it in sim mode, or set arbitrage.execute: false")


def ctf_backend(settings: Settings) -> str:
    choice = settings.arbitrage.chain.ctf
    return ("sim_api" if settings.mode == "sim" else "rpc") if choice == "auto" else choice


def make_ctf(settings: Settings, address: str, secrets: Secrets, env: VenueEnvironment) -> Ctf:
    """The CTF side for execution, or a ConfigError saying what is missing (before any trade)."""
    check_execution_mode(settings)
    backend = ctf_backend(settings)
    if backend == "sim_api":
        if settings.mode != "sim":
            raise ConfigError(f"arbitrage.chain.ctf: sim_api exists only in sim mode, not {settings.mode}")
        return SimCtf(env.url("clob_url"), address)
    from eth_account import Account

    from services.arb_scanner.chain_ctf import ChainCtf, EthRpc

    pm = settings.polymarket
    if pm.wallet != "eoa":
        raise ConfigError(
            f"arbitrage execution merges/splits from the signing key's own address (polymarket.wallet: eoa); "
            f"a {pm.wallet} wallet's positions move only through the relayer (not implemented here yet): "
            "set arbitrage.execute: false")
    if not secrets.polygon_rpc_url:
        raise ConfigError("arbitrage execution on chain needs PF_POLYGON_RPC_URL (or PF_POLYGON_RPC_URL_FILE)")
    key = secrets.private_key or (SIM_PRIVATE_KEY if settings.mode == "sim" else "")
    if not key:
        raise ConfigError(f"mode {settings.mode} needs PF_PRIVATE_KEY to sign merge/split transactions")
    signer = Account.from_key(key).address.lower()
    if signer != address.lower() or (pm.wallet_address and pm.wallet_address.lower() != signer):
        raise ConfigError(f"the orders trade for {address} but the key signs for {signer}: "
                          "merge/split must come from the address that holds the shares")
    return ChainCtf(EthRpc(secrets.polygon_rpc_url), key, env, settings.arbitrage.chain)
