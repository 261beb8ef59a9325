"""Split, merge, redeem and convert through the official SDK against a real sim_exchange process:
v1 (collateral adapters) and v2 (Router) markets, a deposit wallet (gasless, through the sim's
relayer) and an EOA (raw transactions over the sim's JSON-RPC); the approvals every contract in
use needs, read and granted; what a failed transaction and a transaction without an outcome mean.
The sim's accounts are the judge: cash and positions are read back from ``/_sim/positions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from harness import SimExchangeProcess, sim_get, sim_post, write_config
from shared.config import Secrets, Settings, load_settings
from shared.venue import approvals
from shared.venue.environment import VenueEnvironment, fetch_sim_environment
from shared.venue.errors import UnknownMarketVersion, VenueAmbiguous, VenueRejected
from shared.venue.positions import Positions
from shared.venue.wallet_setup import Opened, open_trading_account

START_CASH = 10_000.0


async def _account(sim: SimExchangeProcess, address: str) -> dict[str, Any]:
    got: dict[str, Any] = (await sim_get(sim, "/_sim/positions", address=address.lower()))[address.lower()]
    return got


async def _market(sim: SimExchangeProcess, version: str) -> tuple[str, str, str]:
    """(condition id, YES id, NO id) of a binary market of ``version`` that is not neg-risk."""
    for m in await sim_get(sim, "/_sim/markets"):
        if m.get("version", "v1") == version and not m.get("neg_risk"):
            return m["condition_id"], m["tokens"][0]["token_id"], m["tokens"][1]["token_id"]
    raise AssertionError(f"the sim has no {version} binary market")


def _settings(tmp_path: Path, sim: SimExchangeProcess, wallet: str) -> Settings:
    return load_settings(write_config(tmp_path / f"{wallet}.yaml", sim.port, {"polymarket": {"wallet": wallet}}),
                         environ={})


@asynccontextmanager
async def _opened(tmp_path: Path, sim: SimExchangeProcess, wallet: str,
                  say: Callable[[str], None] = print) -> AsyncIterator[tuple[Opened, Positions, VenueEnvironment]]:
    env = await fetch_sim_environment(sim.url)
    opened = await open_trading_account(_settings(tmp_path, sim, wallet), Secrets(private_key=Account.create().key.hex()),
                                        env, say)
    try:
        yield opened, Positions(opened.account.client, env.address("neg_risk_adapter"), timeout_s=10.0), env
    finally:
        await opened.account.close()


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": {"markets": 4, "negrisk_events": 1, "negrisk_outcomes": 3}})


@pytest.mark.parametrize("wallet", ["deposit", "eoa"])
@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_split_merge_and_redeem_move_the_wallets_cash_and_positions(
        tmp_path: Path, sim: SimExchangeProcess, wallet: str, version: str) -> None:
    said: list[str] = []
    async with _opened(tmp_path, sim, wallet, said.append) as (opened, positions, _env):
        me = opened.info.address
        if wallet == "deposit":  # created through the relayer when the account opened, and said so
            assert opened.created
            assert [line.split(":")[0] for line in said] == [
                f"deposit wallet {me} of signer {opened.info.signer} is not deployed",
                f"deposit wallet {me} created through the relayer (signer {opened.info.signer})"]
        else:
            assert me.lower() == opened.info.signer.lower()
        cid, yes, no = await _market(sim, version)
        split_tx = await positions.split(cid, 10, version)
        merge_tx = await positions.merge(cid, 4, version)
        assert split_tx.startswith("0x")
        assert merge_tx.startswith("0x")
        acct = await _account(sim, me)
        assert acct["cash"] == pytest.approx(START_CASH - 10 + 4)
        assert acct["positions"][yes] == pytest.approx(6)
        assert acct["positions"][no] == pytest.approx(6)

        await sim_post(sim, "/_sim/resolve", {"condition_id": cid, "winner": "Yes"})
        assert (await positions.redeem(cid, version)).startswith("0x")
        acct = await _account(sim, me)
        assert acct["cash"] == pytest.approx(START_CASH - 10 + 4 + 6)  # 6 winning YES at $1, in pUSD
        assert acct["positions"].get(yes, 0) == pytest.approx(0)
        assert acct["positions"].get(no, 0) == pytest.approx(0)
        # nothing left: a second redeem pays nothing more (v2: nothing is sent at all)
        again = await positions.redeem(cid, version)
        assert again == "" if version == "v2" else again.startswith("0x")
        assert (await _account(sim, me))["cash"] == pytest.approx(START_CASH)

    if wallet == "deposit":  # gasless: relayer batches signed by the owner, executed in the wallet
        txs = await sim_get(sim, "/relayer/transactions", owner=opened.info.signer.lower())
        sent = 4 if version == "v1" else 3  # split, merge, redeem (and v1's redeem of nothing)
        assert [t["type"] for t in txs] == ["WALLET-CREATE"] + ["WALLET"] * sent
        assert all(t["state"] == "STATE_CONFIRMED" for t in txs)
    else:  # the EOA's own transactions over JSON-RPC
        txs = await sim_get(sim, "/_sim/rpc/txs", address=me.lower())
        # v1: split, merge, redeem, the redeem of nothing; v2: split, merge, one redeem per outcome held
        assert len(txs) == 4
        assert all(t["status"] == 1 for t in txs)


async def test_convert_goes_to_the_neg_risk_adapter_through_the_relayer(
        tmp_path: Path, sim: SimExchangeProcess) -> None:
    event = (await sim_get(sim, "/_sim/events"))[0]
    first = event["outcomes"][0]
    async with _opened(tmp_path, sim, "deposit") as (opened, positions, env):
        me = opened.info.address
        await positions.split(first["condition_id"], 5, "v1")
        await positions.convert(event["neg_risk_market_id"], [0], 5)
        acct = await _account(sim, me)
        assert acct["positions"].get(first["no"], 0) == pytest.approx(0)  # outcome 0's NO converted ...
        assert [acct["positions"][o["yes"]] for o in event["outcomes"]] == [pytest.approx(5)] * 3  # ... to YESes
        assert acct["cash"] == pytest.approx(START_CASH - 5)  # one NO pays no collateral (USDC.e: never booked)
        with pytest.raises(ValueError, match="exactly one outcome"):
            await positions.convert(event["neg_risk_market_id"], [1, 2], 1)
    txs = await sim_get(sim, "/relayer/transactions", owner=opened.info.signer.lower())
    calls = [c for t in txs for c in t["calls"]]
    assert calls[-1]["call"] == "nr_convert"
    assert env.address("neg_risk_adapter")  # the calldata's target came from the environment


@pytest.mark.parametrize("wallet", ["deposit", "eoa"])
async def test_a_failed_transaction_is_a_rejection_and_changes_nothing(
        tmp_path: Path, sim: SimExchangeProcess, wallet: str) -> None:
    async with _opened(tmp_path, sim, wallet) as (opened, positions, _env):
        cid, _yes, _no = await _market(sim, "v1")
        with pytest.raises(VenueRejected, match="split 20000"):  # more than the wallet's cash: the contract reverts
            await positions.split(cid, 20_000, "v1")
        with pytest.raises(VenueRejected):  # merge more than held: refused before anything is sent
            await positions.merge(cid, 5, "v1")
        acct = await _account(sim, opened.info.address)
        assert acct["cash"] == pytest.approx(START_CASH)
        assert not any(acct["positions"].values())


async def test_an_eoa_transaction_without_a_receipt_is_unknown(tmp_path: Path, sim: SimExchangeProcess) -> None:
    async with _opened(tmp_path, sim, "eoa") as (_opened_, positions, _env):
        positions.timeout_s = 1.0
        cid, _yes, _no = await _market(sim, "v1")
        await sim_post(sim, "/_sim/rpc/fault", {"kind": "drop", "count": 1})  # accepted, never mined
        with pytest.raises(VenueAmbiguous, match="outcome unknown"):
            await positions.split(cid, 10, "v1")


async def test_a_relayed_transaction_without_an_outcome_in_time_is_unknown(
        tmp_path: Path, start_sim: Callable[..., SimExchangeProcess]) -> None:
    slow = start_sim({"sim_exchange": {"relayer_step_ms": 60_000}})  # never CONFIRMED within the test
    env = await fetch_sim_environment(slow.url)
    key = Account.create().key.hex()
    # deployed beforehand (the admin route): creating it through this slow relayer would wait too
    await sim_post(slow, "/_sim/wallets", {"owner": Account.from_key(key).address, "kind": "deposit"})
    opened = await open_trading_account(_settings(tmp_path, slow, "deposit"), Secrets(private_key=key), env)
    try:
        positions = Positions(opened.account.client, env.address("neg_risk_adapter"), timeout_s=1.0)
        cid, _yes, _no = await _market(slow, "v1")
        with pytest.raises(VenueAmbiguous, match="no outcome within 1 s"):
            await positions.split(cid, 10, "v1")
    finally:
        await opened.account.close()


@pytest.mark.parametrize("wallet", ["deposit", "eoa"])
async def test_approvals_are_read_then_granted_once_through_the_sdk(
        tmp_path: Path, sim: SimExchangeProcess, wallet: str) -> None:
    async with _opened(tmp_path, sim, wallet) as (opened, _positions, env):
        me = opened.info.address
        need = approvals.required(env)
        before = await approvals.read(env.url("rpc_url"), me, need)
        assert not any(st.ok for st in before)
        sent = await approvals.ensure(opened.account.client, env, me, send=True, timeout_s=10)
        assert sent == need
        assert all(st.ok for st in await approvals.read(env.url("rpc_url"), me, need))
        assert await approvals.ensure(opened.account.client, env, me, send=True) == []  # nothing twice


async def test_a_market_of_an_unknown_version_is_refused_before_anything_is_sent(
        tmp_path: Path, sim: SimExchangeProcess) -> None:
    async with _opened(tmp_path, sim, "eoa") as (opened, positions, _env):
        cid, _yes, _no = await _market(sim, "v1")
        for call in (positions.split(cid, 10, "v3"), positions.merge(cid, 10, "v3"), positions.redeem(cid, "v3")):
            with pytest.raises(UnknownMarketVersion, match="version 'v3'") as info:
                await call
            assert "fix:" in str(info.value)
        assert await sim_get(sim, "/_sim/rpc/txs", address=opened.info.address.lower()) == []
        assert (await _account(sim, opened.info.address))["cash"] == pytest.approx(START_CASH)
