"""Helpers for driving sim_exchange with the unmodified official SDK (``polymarket``) in tests:
the SDK environment built from the sim's ``GET /_sim/environment``, secure clients for a legacy EOA
and for a fresh deposit wallet (created through the sim's relayer with a builder key minted from
the sim), market picks by system, and orders of exact amounts signed by the SDK's own signing path
(what the venue room does for FOK/FAK orders), for payloads the SDK's public builders would not
make."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from eth_account import Account
from polymarket import AsyncSecureClient
from polymarket.auth import BuilderApiKey
from polymarket.models.clob.order_response import AcceptedOrder
from polymarket.models.clob.orders import SignedOrder

from harness import SimExchangeProcess
from shared.config import SIM_PRIVATE_KEY
from shared.venue.environment import fetch_sim_environment
from shared.venue.ids import in_v2_namespace
from shared.venue.order_hash import exchange_domain
from shared.venue.sdk_private import OrderType, draft, sign

LEGACY_ADDRESS = Account.from_key(SIM_PRIVATE_KEY).address  # on sim_exchange.legacy_eoa_makers by default


async def sdk_environment(sim: SimExchangeProcess) -> Any:
    return (await fetch_sim_environment(sim.url)).to_sdk()


def markets(sim: SimExchangeProcess) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sim.url}/_sim/markets", timeout=30).json())


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
    resp = httpx.put(f"{sim.url}/_sim/book/{token}", json={"bids": bids, "asks": asks}, timeout=30)
    assert resp.status_code == 200, resp.text


def positions(sim: SimExchangeProcess, address: str) -> dict[str, Any]:
    got = httpx.get(f"{sim.url}/_sim/positions", params={"address": address}, timeout=30).json()
    return dict(got[address.lower()])


async def exact_order(sim: SimExchangeProcess, client: AsyncSecureClient, asset_id: str, side: Literal["BUY", "SELL"],
                      maker: int, taker: int, order_type: OrderType = "GTC", exchange: str | None = None) -> SignedOrder:
    """An order of exactly these amounts (base units) for ``client``'s wallet, signed by the SDK
    without a request: amounts its builders would not produce, an asset the venue does not list, or
    a foreign ``exchange`` (default: the exchange of a binary market of the id's system in the
    sim's environment)."""
    env = await fetch_sim_environment(sim.url)
    if exchange is None:
        exchange, _ = exchange_domain(env, "v2" if in_v2_namespace(asset_id) else "v1", neg_risk=False)
    return await sign(client, draft(client, asset_id=asset_id, side=side, maker=maker, taker=taker,
                                    order_type=order_type, exchange=exchange, chain_id=env.chain_id))


async def post_limit(client: AsyncSecureClient, asset_id: str, price: str, size: str, side: Literal["BUY", "SELL"],
                     post_only: bool = False) -> AcceptedOrder:
    """A limit order built by the SDK and posted without its allowance recovery (which would send an
    approval when the venue says the allowance is short); the venue must accept it."""
    signed = await client.create_limit_order(asset_id=asset_id, price=price, size=size, side=side, post_only=post_only)
    answer = await client.post_order(signed)
    assert isinstance(answer, AcceptedOrder), answer
    return answer
