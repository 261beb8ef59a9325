"""Split, merge and redeem on both market systems with the unmodified official SDK: gaslessly
through the sim's relayer for deposit, proxy and Safe wallets, as raw transactions over the sim's
JSON-RPC for an EOA; approvals; the Data API v2 reads of what happened."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from polymarket import AsyncPublicClient
from polymarket.errors import TransactionFailedError

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
UNIT = 1_000_000


def resolve(sim: SimExchangeProcess, condition_id: str, winner: str = "Yes") -> None:
    resp = httpx.post(f"{sim.url}/_sim/resolve", json={"condition_id": condition_id, "winner": winner}, timeout=30)
    assert resp.status_code == 200, resp.text


async def test_a_deposit_wallet_splits_merges_and_redeems_through_the_relayer(start_sim: StartSim) -> None:
    sim = start_sim()
    client = await wallet_client(sim)
    public = AsyncPublicClient(environment=await sdk_environment(sim))
    try:
        wallet = str(client._ctx.wallet)
        assert not (await client.get_trading_approvals_state()).is_fully_approved
        await client.setup_trading_approvals()  # 17 reads in one RPC batch, then one relayer batch
        assert (await client.get_trading_approvals_state()).is_fully_approved
        for version in ("v1", "v2"):
            m = market(sim, version)
            yes, no = (t["token_id"] for t in m["tokens"])
            await (await client.split_position(condition_id=m["condition_id"], amount=10 * UNIT)).wait()
            await (await client.merge_positions(condition_id=m["condition_id"], amount="max")).wait()
            await (await client.split_position(condition_id=m["condition_id"], amount=6 * UNIT)).wait()
            await (await client.merge_positions(condition_id=m["condition_id"], amount=2 * UNIT)).wait()
            assert {t: positions(sim, wallet)["positions"][t] for t in (yes, no)} == {yes: 4, no: 4}
            # a call the contract refuses fails the relayer transaction, with the revert reason
            with pytest.raises(TransactionFailedError, match="not enough collateral to split"):
                await (await client.split_position(condition_id=m["condition_id"], amount=20_000 * UNIT)).wait()
            resolve(sim, m["condition_id"])
            await (await client.redeem_positions(condition_id=m["condition_id"])).wait()
            assert {t: positions(sim, wallet)["positions"][t] for t in (yes, no)} == {yes: 0, no: 0}
        assert positions(sim, wallet)["cash"] == 10_000 - 10 + 10 - 6 + 2 + 4  # per system: the YES won
        kinds = [a.type.value async for a in public.list_activity(user=wallet).iter_items()]
        # v1 redeems both outcomes in one call; v2 one Router.redeem per outcome held
        assert sorted(kinds) == sorted(["SPLIT", "MERGE"] * 4 + ["REDEEM"] * 3)
        txs = httpx.get(f"{sim.url}/relayer/transactions", params={"owner": client._ctx.signer.address}, timeout=30).json()
        assert [t["state"] for t in txs].count("STATE_FAILED") == 2
        assert {t["type"] for t in txs} == {"WALLET-CREATE", "WALLET"}
    finally:
        await client.close()
        await public.close()


async def test_an_eoa_splits_merges_and_redeems_with_raw_transactions(start_sim: StartSim) -> None:
    sim = start_sim()
    client = await eoa_client(sim, "0x" + Account.create().key.hex().removeprefix("0x"))
    try:
        me = str(client._ctx.wallet)
        for version in ("v1", "v2"):
            m = market(sim, version)
            yes, no = (t["token_id"] for t in m["tokens"])
            await (await client.split_position(condition_id=m["condition_id"], amount=5 * UNIT)).wait()
            await (await client.merge_positions(condition_id=m["condition_id"], amount=1 * UNIT)).wait()
            resolve(sim, m["condition_id"], "No")
            await (await client.redeem_positions(condition_id=m["condition_id"])).wait()
            assert {t: positions(sim, me)["positions"][t] for t in (yes, no)} == {yes: 0, no: 0}
        txs = httpx.get(f"{sim.url}/_sim/rpc/txs", params={"address": me}, timeout=30).json()
        # legacy EIP-155 transactions, mined; the v1 redeem burns both outcomes at once, v2 redeems each held
        assert [(t["call"], t["status"], t["type"]) for t in txs] == [
            ("ctf_split", 1, "0x0"), ("ctf_merge", 1, "0x0"), ("ctf_redeem", 1, "0x0"),
            ("v2_split", 1, "0x0"), ("v2_merge", 1, "0x0"), ("v2_redeem", 1, "0x0"), ("v2_redeem", 1, "0x0")]
        assert positions(sim, me)["cash"] == 10_000 - 5 + 1 + 4 - 5 + 1 + 4
    finally:
        await client.close()


async def test_proxy_and_safe_wallets_relay_their_calls(start_sim: StartSim) -> None:
    sim = start_sim()
    key = await builder_key(sim)
    m = market(sim, "v2")
    for kind in ("proxy", "safe"):
        owner = Account.create()
        address = httpx.post(f"{sim.url}/_sim/wallets", json={"owner": owner.address, "kind": kind}, timeout=30).json()["address"]
        client = await wallet_client(sim, key="0x" + owner.key.hex().removeprefix("0x"), wallet=address, api_key=key)
        try:
            await (await client.split_position(condition_id=m["condition_id"], amount=3 * UNIT)).wait()
            await client.setup_trading_approvals()  # several calls: one PROXY batch, or a Safe multiSend
            assert (await client.get_trading_approvals_state()).is_fully_approved
            assert positions(sim, address)["positions"][m["tokens"][1]["token_id"]] == 3
            txs = httpx.get(f"{sim.url}/relayer/transactions", params={"owner": owner.address}, timeout=30).json()
            assert [(t["type"], t["state"], len(t["calls"])) for t in txs] == [
                (kind.upper(), "STATE_CONFIRMED", 1), (kind.upper(), "STATE_CONFIRMED", 17)]
        finally:
            await client.close()


async def test_the_data_api_v2_serves_trades_positions_and_taker_rows_by_default(start_sim: StartSim) -> None:
    sim = start_sim()
    client = await eoa_client(sim)  # the legacy EOA: its orders are allowed
    public = AsyncPublicClient(environment=await sdk_environment(sim))
    try:
        m = market(sim, "v2")
        yes = m["tokens"][0]["token_id"]
        put_book(sim, yes, [{"price": "0.40", "size": "100"}], [{"price": "0.50", "size": "100"}])
        assert (await client.place_market_order(asset_id=yes, side="BUY", amount="5", order_type="FOK")).ok
        resting = await client.place_limit_order(asset_id=yes, price="0.45", size="10", side="BUY")
        put_book(sim, yes, [], [{"price": "0.44", "size": "10"}])  # the crowd crosses it: a maker fill

        async def trades() -> list[object]:
            return [t async for t in public.list_trades(user=LEGACY_ADDRESS).iter_items()]

        taker = await eventually(trades, what="the taker fill in /v2/trades")
        assert [(t.asset_id, t.side, t.size) for t in taker] == [(yes, "BUY", 10)]  # type: ignore[attr-defined]
        both = [t async for t in public.list_trades(user=LEGACY_ADDRESS, taker_only=False).iter_items()]
        assert sorted(float(t.size) for t in both) == [10.0, 10.0]
        held = [p async for p in public.list_positions(user=LEGACY_ADDRESS).iter_items()]
        assert [(p.asset_id, p.current_size, p.status) for p in held] == [(yes, 20, "OPEN")]
        assert resting.ok
        refused = httpx.get(f"{sim.url}/data-api/v2/trades", params={"user": LEGACY_ADDRESS, "offset": 10}, timeout=30)
        assert refused.status_code == 400
    finally:
        await client.close()
        await public.close()
