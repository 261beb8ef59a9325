"""Helpers for driving sim_exchange with the unmodified official SDK (``polymarket``) in tests:
the SDK environment built from the sim's ``GET /_sim/environment``, secure clients for a legacy EOA
and for a fresh deposit wallet (created through the sim's relayer with a builder key minted from
the sim), and market picks by system."""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account
from polymarket import AsyncSecureClient
from polymarket.auth import BuilderApiKey

from shared.config import SIM_PRIVATE_KEY
from shared.venue.environment import fetch_sim_environment
from tests.support import SimExchangeProcess

LEGACY_ADDRESS = Account.from_key(SIM_PRIVATE_KEY).address  # on sim_exchange.legacy_eoa_makers by default


async def sdk_environment(sim: SimExchangeProcess) -> Any:
    return (await fetch_sim_environment(sim.url)).to_sdk()


def markets(sim: SimExchangeProcess) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sim.url}/_sim/markets").json())


def market(sim: SimExchangeProcess, version: str, tick: float | None = 0.01, index: int = 0) -> dict[str, Any]:
    """The ``index``-th binary market of ``version`` (with tick ``tick`` unless None)."""
    picked = [m for m in markets(sim) if m["version"] == version and not m["neg_risk"]
              and (tick is None or m["tokens"][0]["tick_size"] == tick)]
    return picked[index]


async def eoa_client(sim: SimExchangeProcess, key: str = SIM_PRIVATE_KEY) -> AsyncSecureClient:
    """A secure client trading as the key's own address (wallet = signer: the SDK's EOA type)."""
    return await AsyncSecureClient.create(private_key=key, wallet=Account.from_key(key).address,
                                          environment=await sdk_environment(sim))


async def builder_key(sim: SimExchangeProcess) -> BuilderApiKey:
    """A builder key minted from the sim by an EOA-type client (decision 11 of the venue plan)."""
    client = await eoa_client(sim)
    try:
        return await client.create_builder_api_key()
    finally:
        await client.close()


async def wallet_client(sim: SimExchangeProcess, key: str | None = None, wallet: str | None = None,
                        api_key: BuilderApiKey | None = None) -> AsyncSecureClient:
    """A secure client for ``key`` (a fresh one by default) trading from its deposit wallet (or from
    ``wallet``); the SDK creates the deposit wallet through the relayer when it is missing."""
    return await AsyncSecureClient.create(private_key=key or "0x" + Account.create().key.hex().removeprefix("0x"),
                                          wallet=wallet, environment=await sdk_environment(sim),
                                          api_key=api_key or await builder_key(sim))


def put_book(sim: SimExchangeProcess, token: str, bids: list[Any], asks: list[Any]) -> None:
    resp = httpx.put(f"{sim.url}/_sim/book/{token}", json={"bids": bids, "asks": asks})
    assert resp.status_code == 200, resp.text


def positions(sim: SimExchangeProcess, address: str) -> dict[str, Any]:
    got = httpx.get(f"{sim.url}/_sim/positions", params={"address": address}).json()
    return dict(got[address.lower()])
