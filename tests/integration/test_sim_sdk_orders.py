"""The unmodified official SDK trades on sim_exchange: a fresh deposit wallet created through the
relayer, limit and market orders on a v1 and a v2 market, cancel, heartbeat, balances, and the
refusals of the venue's signer rules (venue plan, decisions 1 and 2)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from polymarket._internal.environment import get_environment_config
from polymarket._internal.wallet import derive_proxy_wallet_address
from polymarket.errors import RequestRejectedError, UserInputError

from harness import SimExchangeProcess, eventually
from tests.integration.sim_sdk_support import (
    LEGACY_ADDRESS,
    builder_key,
    eoa_client,
    market,
    positions,
    put_book,
    sdk_environment,
    wallet_client,
)

StartSim = Callable[..., SimExchangeProcess]


async def test_a_fresh_deposit_wallet_trades_both_market_systems(start_sim: StartSim) -> None:
    sim = start_sim()
    client = await wallet_client(sim)
    try:
        wallet, owner = str(client._ctx.wallet).lower(), client._ctx.signer.address.lower()  # what the SDK derived
        deployed = httpx.get(f"{sim.url}/_sim/wallets", params={"owner": owner}, timeout=30).json()
        assert [(w["address"], w["kind"]) for w in deployed] == [(wallet, "deposit")]
        created = httpx.get(f"{sim.url}/relayer/transactions", params={"owner": owner}, timeout=30).json()
        assert [(t["type"], t["state"]) for t in created] == [("WALLET-CREATE", "STATE_CONFIRMED")]
        for version, asset_type in (("v1", "CONDITIONAL"), ("v2", "CONDITIONAL-V2")):
            m = market(sim, version)
            yes = m["tokens"][0]["token_id"]
            put_book(sim, yes, [{"price": "0.40", "size": "100"}], [{"price": "0.45", "size": "100"}])
            resting = await client.place_limit_order(asset_id=yes, price="0.30", size="20", side="BUY")
            assert (resting.ok, resting.status) == (True, "live"), resting
            opened = [o async for o in client.list_open_orders(asset_id=yes).iter_items()]
            assert [(o.id, o.maker_address.lower()) for o in opened] == [(resting.order_id, wallet)]
            assert (await client.cancel_order(order_id=resting.order_id)).canceled == (resting.order_id,)
            assert [o async for o in client.list_open_orders(asset_id=yes).iter_items()] == []

            bought = await client.place_market_order(asset_id=yes, side="BUY", amount="9", order_type="FOK")
            assert (bought.ok, bought.status) == (True, "matched"), bought
            assert bought.order_id.startswith("0x")
            assert len(bought.order_id) == 66
            shares = await eventually(lambda y=yes, t=asset_type: _balance(client, t, y), what=f"{version} shares")
            assert shares == 20_000_000  # $9 at 0.45
            with pytest.raises(RequestRejectedError, match="ask asset_type") as refused:
                await client.get_balance_allowance(asset_type="CONDITIONAL-V2" if version == "v1" else "CONDITIONAL",
                                                   asset_id=yes)
            assert refused.value.status == 400
        cash = await client.get_balance_allowance(asset_type="COLLATERAL")
        assert cash.balance == 10_000_000_000 - 2 * 9_000_000
        assert (await client.send_order_heartbeat()).heartbeat_id
        held = positions(sim, wallet)  # the wallet holds the shares, not the EOA that signed
        assert held["positions"][market(sim, "v2")["tokens"][0]["token_id"]] == 20
        assert positions(sim, owner)["positions"] == {}
    finally:
        await client.close()


async def _balance(client: object, asset_type: str, asset: str) -> int:
    got = await client.get_balance_allowance(asset_type=asset_type, asset_id=asset)  # type: ignore[attr-defined]
    return int(got.balance)


async def test_the_venue_refuses_eoa_makers_and_orders_of_another_key(start_sim: StartSim) -> None:
    sim = start_sim()
    yes = market(sim, "v1")["tokens"][0]["token_id"]
    newcomer = await eoa_client(sim, "0x" + Account.create().key.hex().removeprefix("0x"))
    legacy = await eoa_client(sim)
    key = await builder_key(sim)
    alice, bob = await wallet_client(sim, api_key=key), await wallet_client(sim, api_key=key)
    try:
        with pytest.raises(RequestRejectedError, match="maker address not allowed, please use the deposit wallet "
                                                       "flow") as refused:
            await newcomer.place_limit_order(asset_id=yes, price="0.10", size="10", side="BUY")
        assert refused.value.status == 400
        # the well-known sim key is on the legacy allow-list: its EOA orders still go through
        assert (await legacy.place_limit_order(asset_id=yes, price="0.10", size="10", side="BUY")).ok
        assert str(legacy._ctx.wallet) == LEGACY_ADDRESS
        # Alice's deposit-wallet order sent with Bob's API key: the key's EOA did not sign it
        signed = await alice.create_limit_order(asset_id=yes, price="0.10", size="10", side="BUY")
        with pytest.raises(RequestRejectedError, match="the order signer address has to be the address of the "
                                                       "API KEY"):
            await bob.post_order(signed)
        assert (await alice.post_order(signed)).ok
    finally:
        for c in (newcomer, legacy, alice, bob):
            await c.close()


async def test_proxy_and_safe_wallets_sign_types_1_and_2_once_deployed(start_sim: StartSim) -> None:
    sim = start_sim()
    owner = Account.create()
    pk = "0x" + owner.key.hex().removeprefix("0x")
    key = await builder_key(sim)
    yes = market(sim, "v2")["tokens"][0]["token_id"]
    for kind, sig_type in (("proxy", 1), ("safe", 2)):
        deployed = httpx.post(f"{sim.url}/_sim/wallets", json={"owner": owner.address, "kind": kind}, timeout=30)
        assert deployed.status_code == 200, deployed.text
        address = deployed.json()["address"]
        client = await wallet_client(sim, key=pk, wallet=address, api_key=key)
        try:
            placed = await client.place_limit_order(asset_id=yes, price="0.10", size="10", side="BUY")
            assert placed.ok, placed
            order = [o for o in httpx.get(f"{sim.url}/_sim/orders", timeout=30).json() if o["id"] == placed.order_id][0]
            assert (order["maker_address"], client._ctx.wallet_type) == (address, "POLY_PROXY" if sig_type == 1
                                                                         else "GNOSIS_SAFE")
        finally:
            await client.close()
    # a proxy the venue has not deployed: the SDK itself stops (it never creates proxies or Safes)
    stranger = Account.create()
    config = get_environment_config(await sdk_environment(sim))
    undeployed = derive_proxy_wallet_address(stranger.address, config.wallet_derivation)
    with pytest.raises(UserInputError, match="does not exist"):
        await wallet_client(sim, key="0x" + stranger.key.hex().removeprefix("0x"), wallet=undeployed, api_key=key)
