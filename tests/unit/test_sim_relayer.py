"""sim_exchange's relayer, contracts and paging, pure: deposit-wallet batches signed by the SDK's own
code, the transaction states over the relayer's lag, all-or-nothing batches, the ledgers' balance
reads, legacy raw transactions, and the keyset / cursor pages."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode
from eth_account import Account
from eth_utils.address import to_checksum_address
from polymarket._internal.actions.relayer.calls import (
    TransactionCall,
    erc20_approval_call,
    erc1155_balance_of_batch_call,
    router_split_call,
)
from polymarket._internal.actions.relayer.signing.deposit_wallet import sign_deposit_wallet_batch
from polymarket._internal.actions.relayer.submit import _NONCE_MISMATCH_RE

from services.sim_exchange.contracts import CallReverted
from services.sim_exchange.data_v2 import DataQueryError, page
from services.sim_exchange.relayer import Relayer, RelayerError
from services.sim_exchange.rpc import RpcFault, SimChain
from services.sim_exchange.state import SimState
from shared.config import SimExchangeSection

KEY = "0x" + "44" * 32
OWNER = Account.from_key(KEY)


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def _setup() -> tuple[SimState, Relayer, Clock, str]:
    state = SimState(SimExchangeSection(markets=2, v2_share=0.5, volatility=0.0), 137)
    clock = Clock()
    relayer = Relayer(state.env, state.wallets, state.contracts, step_s=0.25, clock=clock)
    tx = relayer.submit({"type": "WALLET-CREATE", "from": OWNER.address,
                         "to": state.env.derivation["deposit_wallet_factory"]})
    return state, relayer, clock, tx.wallet


def _batch(state: SimState, wallet: str, calls: list[TransactionCall], nonce: int, clock: Clock,
           key: str = KEY) -> dict[str, Any]:
    deadline = str(int(clock.now) + 600)
    signature = sign_deposit_wallet_batch(Account.from_key(key), wallet=wallet, calls=calls,  # type: ignore[arg-type]
                                          nonce=str(nonce), deadline=deadline, chain_id=137)
    return {"type": "WALLET", "from": OWNER.address, "to": state.env.derivation["deposit_wallet_factory"],
            "nonce": str(nonce), "signature": signature, "metadata": "test",
            "depositWalletParams": {"depositWallet": wallet, "deadline": deadline,
                                    "calls": [{"target": c.to, "value": str(c.value), "data": c.data} for c in calls]}}


def test_a_deposit_wallet_batch_runs_in_the_wallet_and_moves_through_the_states() -> None:
    state, relayer, clock, wallet = _setup()
    assert relayer.deployed(wallet, "WALLET")
    assert not relayer.deployed(wallet, "SAFE")
    assert relayer.params(OWNER.address, "WALLET") == {"address": to_checksum_address(wallet), "nonce": "0"}
    v2 = state.sim.markets[1]
    calls = [erc20_approval_call(token_address=state.env.address("collateral_token"),  # type: ignore[arg-type]
                                 spender=state.env.address("protocol_v2_router"), amount=2**256 - 1),  # type: ignore[arg-type]
             router_split_call(router=state.env.address("protocol_v2_router"), condition_id=v2.condition_id,  # type: ignore[arg-type]
                               amount=7_000_000)]
    tx = relayer.submit(_batch(state, wallet, calls, 0, clock))
    states = []
    for _ in range(5):
        view = relayer.view(tx.id)
        assert view is not None
        states.append((view["state"], bool(view["transaction_hash"])))
        clock.now += 0.25
    assert states == [("STATE_NEW", False), ("STATE_EXECUTED", True), ("STATE_MINED", True),
                      ("STATE_CONFIRMED", True), ("STATE_CONFIRMED", True)]
    acct = state.matcher.account(wallet)
    assert (acct.positions[v2.yes.token_id], acct.cash) == (7.0, 10_000 - 7)
    assert state.matcher.account(OWNER.address).positions == {}  # the signer holds nothing
    with pytest.raises(RelayerError) as stale:  # the nonce moved on: the SDK reads Y from this text
        relayer.submit(_batch(state, wallet, calls, 0, clock))
    match = _NONCE_MISMATCH_RE.search(str(stale.value))
    assert match is not None
    assert match.groups() == ("0", "1")
    with pytest.raises(RelayerError, match="invalid signature"):
        relayer.submit(_batch(state, wallet, calls, 1, clock, key="0x" + "45" * 32))


def test_a_refused_call_fails_the_whole_batch_and_undoes_the_calls_before_it() -> None:
    state, relayer, clock, wallet = _setup()
    v2 = state.sim.markets[1]
    router = state.env.address("protocol_v2_router")
    calls = [router_split_call(router=router, condition_id=v2.condition_id, amount=5_000_000),  # type: ignore[arg-type]
             router_split_call(router=router, condition_id=v2.condition_id, amount=20_000 * 1_000_000)]  # type: ignore[arg-type]
    tx = relayer.submit(_batch(state, wallet, calls, 0, clock))
    clock.now += 0.25
    view = relayer.view(tx.id)
    assert view is not None
    assert view["state"] == "STATE_FAILED"
    assert "not enough collateral to split" in view["error_msg"]
    acct = state.matcher.account(wallet)
    assert (acct.cash, acct.positions.get(v2.yes.token_id, 0.0)) == (10_000, 0.0)
    assert state.ctf.ops == []
    assert relayer.params(OWNER.address, "WALLET")["nonce"] == "1"  # a mined revert uses its nonce
    with pytest.raises(RelayerError, match="already deployed"):
        relayer.submit({"type": "WALLET-CREATE", "from": OWNER.address,
                        "to": state.env.derivation["deposit_wallet_factory"]})


def test_each_ledger_reads_its_own_system_and_legacy_transactions_are_mined() -> None:
    state, _relayer, _clock, _wallet = _setup()
    v1, v2 = state.sim.markets
    me = OWNER.address
    acct = state.matcher.account(me)
    acct.positions.update({v1.yes.token_id: 2.0, v2.yes.token_id: 3.0})
    ids = [v1.yes.token_id, v2.yes.token_id]
    for ledger, want in (("conditional_tokens", [2_000_000, 0]), ("position_manager", [0, 3_000_000])):
        call = erc1155_balance_of_batch_call(token_address=state.env.address(ledger), owners=[me, me],  # type: ignore[arg-type]
                                             token_ids=ids)
        raw = state.contracts.read(call.to, bytes.fromhex(call.data[2:]))
        assert list(decode(["uint256[]"], raw)[0]) == want
    with pytest.raises(CallReverted, match="no erc1155_balance_of_batch"):
        state.contracts.read(state.env.address("collateral_token"), bytes.fromhex(call.data[2:]))
    chain = SimChain(state, 137)
    split = router_split_call(router=state.env.address("protocol_v2_router"), condition_id=v2.condition_id,  # type: ignore[arg-type]
                              amount=1_000_000)
    legacy = Account.sign_transaction({"chainId": 137, "nonce": 0, "to": split.to, "value": 0, "data": split.data,
                                       "gas": 200_000, "gasPrice": 10**10}, KEY)
    tx_hash = chain.handle("eth_sendRawTransaction", ["0x" + bytes(legacy.raw_transaction).hex()])
    receipt = chain.handle("eth_getTransactionReceipt", [tx_hash])
    assert (receipt["status"], receipt["type"], chain.txs[tx_hash].call) == ("0x1", "0x0", "v2_split")
    assert acct.positions[v2.yes.token_id] == 4.0
    wrong_chain = Account.sign_transaction({"chainId": 80002, "nonce": 1, "to": split.to, "value": 0,
                                            "data": split.data, "gas": 200_000, "gasPrice": 10**10}, KEY)
    with pytest.raises(RpcFault, match="invalid chain id"):
        chain.handle("eth_sendRawTransaction", ["0x" + bytes(wrong_chain.raw_transaction).hex()])
    assert int(chain.handle("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) > 1_700_000_000


def test_cursor_pages_end_without_a_cursor_and_refuse_offset() -> None:
    rows = [{"n": i} for i in range(5)]
    first = page(rows, {"limit": "2"})
    assert first["data"] == rows[:2]
    assert first["pagination"]["has_more"] is True
    cursor = first["pagination"]["next_cursor"]
    last = page(rows, {"limit": "2", "cursor": page(rows, {"limit": "2", "cursor": cursor})["pagination"]["next_cursor"]})
    assert last["data"] == rows[4:]
    assert last["pagination"] == {"limit": 2, "has_more": False, "next_cursor": None}
    for bad in ({"offset": "2"}, {"limit": "1001"}, {"cursor": "junk"}):
        with pytest.raises(DataQueryError):
            page(rows, bad)


def test_faults_leave_a_transaction_landed_but_unconfirmed() -> None:
    """``relayer_stall``: applied, stuck at STATE_MINED; ``hide``: mined over JSON-RPC, no receipt.
    Either way the sender cannot tell it landed (what the redeemer's balance re-check is for)."""
    state, _, clock, wallet = _setup()
    stalls = iter([True, False])
    relayer = Relayer(state.env, state.wallets, state.contracts, step_s=0.25, clock=clock, stall=lambda: next(stalls))
    v2 = state.sim.markets[1]
    split = router_split_call(router=state.env.address("protocol_v2_router"), condition_id=v2.condition_id,  # type: ignore[arg-type]
                              amount=1_000_000)
    stuck, fine = (relayer.submit(_batch(state, wallet, [split], n, clock)) for n in (0, 1))
    clock.now += 10
    assert [relayer.view(t.id)["state"] for t in (stuck, fine)] == ["STATE_MINED", "STATE_CONFIRMED"]  # type: ignore[index]
    assert state.matcher.account(wallet).positions[v2.yes.token_id] == 2.0  # both applied
    chain = SimChain(state, 137)
    chain.faults.hide = 1
    raw = [Account.sign_transaction({"chainId": 137, "nonce": n, "to": split.to, "value": 0, "data": split.data,
                                     "gas": 200_000, "gasPrice": 10**10}, KEY) for n in (0, 1)]
    hidden, seen = (chain.handle("eth_sendRawTransaction", ["0x" + bytes(t.raw_transaction).hex()]) for t in raw)
    assert chain.handle("eth_getTransactionReceipt", [hidden]) is None
    assert chain.handle("eth_getTransactionReceipt", [seen])["status"] == "0x1"
    assert [t["hidden"] for t in chain.log(OWNER.address)] == [True, False]
    assert state.matcher.account(OWNER.address).positions[v2.yes.token_id] == 2.0  # both landed
