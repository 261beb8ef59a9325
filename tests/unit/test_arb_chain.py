"""On-chain pieces, pure: calldata (shared.venue.ctf_calls), the sim's JSON-RPC node
(services.sim_exchange.rpc), resolution payouts, the executor's neg-risk convert failure and its
halt on an order of unknown outcome."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.ctf import CtfHalt, CtfRejected
from services.arb_scanner.detect import Evaluation, Kind, Verdict
from services.arb_scanner.execute import Executor
from services.sim_exchange.ctf import CtfError
from services.sim_exchange.environment import environment_json
from services.sim_exchange.resolution import ResolutionError, Resolutions
from services.sim_exchange.rpc import RpcFault, SimChain
from services.sim_exchange.state import SimState
from shared.config import SimExchangeSection
from shared.venue.ctf_calls import BadCall, ChainAddresses, CtfCall, decode_call, encode_call, index_set, selector
from shared.venue.fees import FeeSchedule
from shared.venue.taker import TakeResult

KEY = "0x" + "11" * 32
ME = Account.from_key(KEY).address.lower()
CHAIN = ChainAddresses.from_environment(lambda name: str(environment_json("sim", 137)[name]))  # the sim's contracts
PUSD = CHAIN.collateral


def test_selectors_are_the_contracts() -> None:
    # keccak of the signatures; the CTF pair matches ConditionalTokens' ABI, the others the NegRiskAdapter's
    assert selector("ctf_split").hex() == "72ce4275"
    assert selector("ctf_merge").hex() == "9e7212ad"
    assert selector("nr_split").hex() == "a3d7da1d"
    assert index_set([0, 2]) == 0b101


def test_calldata_round_trips_in_six_decimals() -> None:
    call = CtfCall("ctf_merge", "0x" + "ab" * 32, 48.123456, PUSD, (1, 2))
    data = encode_call(call)
    assert len(data) == 4 + 32 * 5 + 32 * 3  # head (5 words) + the dynamic array (length + 2)
    back = decode_call(data)
    assert (back.name, back.condition_id, back.amount, back.partition) == ("ctf_merge", call.condition_id, 48.123456,
                                                                            (1, 2))
    assert back.collateral.lower() == PUSD.lower()
    conv = decode_call(encode_call(CtfCall("nr_convert", "0x" + "cd" * 32, 40, outcome_indexes=(0, 2))))
    assert conv.outcome_indexes == (0, 2)
    with pytest.raises(BadCall, match="selector"):
        decode_call(b"\x00\x01\x02\x03" + b"\x00" * 64)
    with pytest.raises(BadCall, match="not positive"):
        encode_call(CtfCall("nr_split", "0x" + "ab" * 32, 0.0000001))


def _state() -> SimState:
    return SimState(SimExchangeSection(markets=1, negrisk_events=1, negrisk_outcomes=3, volatility=0.0), 137)


def _raw(to: str, data: bytes, nonce: int, chain_id: int = 137) -> str:
    signed = Account.sign_transaction({"type": 2, "chainId": chain_id, "nonce": nonce, "to": to, "value": 0,
                                       "data": data, "gas": 300_000, "maxFeePerGas": 10**11,
                                       "maxPriorityFeePerGas": 3 * 10**10}, KEY)
    return "0x" + bytes(signed.raw_transaction).hex()


def test_sim_chain_checks_nonce_and_chain_and_applies_the_call_to_the_sender() -> None:
    state = _state()
    chain = SimChain(state, 137)
    m = state.sim.markets[0]
    split = encode_call(CtfCall("ctf_split", m.condition_id, 10, PUSD, (1, 2)))
    with pytest.raises(RpcFault, match="invalid chain id"):
        chain.handle("eth_sendRawTransaction", [_raw(CHAIN.ctf_collateral_adapter, split, 0, chain_id=80002)])
    with pytest.raises(RpcFault, match="nonce too high"):
        chain.handle("eth_sendRawTransaction", [_raw(CHAIN.ctf_collateral_adapter, split, 1)])
    raw = _raw(CHAIN.ctf_collateral_adapter, split, 0)
    tx_hash = chain.handle("eth_sendRawTransaction", [raw])
    with pytest.raises(RpcFault, match="already known"):
        chain.handle("eth_sendRawTransaction", [raw])
    other = _raw(CHAIN.ctf_collateral_adapter, encode_call(CtfCall("ctf_split", m.condition_id, 3, PUSD, (1, 2))), 0)
    with pytest.raises(RpcFault, match="nonce too low"):
        chain.handle("eth_sendRawTransaction", [other])
    assert chain.handle("eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"
    assert chain.handle("eth_getTransactionCount", [ME, "pending"]) == "0x1"
    acct = state.matcher.account(ME)
    assert acct.positions[m.yes.token_id] == 10
    assert acct.cash == 10_000 - 10


def test_sim_chain_reverts_what_the_contracts_would_refuse() -> None:
    state = _state()
    chain = SimChain(state, 137)
    binary, outcome = state.sim.markets[0], state.events[0].markets[0]
    cases: list[tuple[str, bytes, str]] = [
        ("0x" + "99" * 20, encode_call(CtfCall("ctf_split", binary.condition_id, 1, PUSD, (1, 2))), "no contract"),
        (CHAIN.ctf_collateral_adapter, encode_call(CtfCall("ctf_split", outcome.condition_id, 1, PUSD, (1, 2))),
         "cannot ctf_split a neg-risk"),
        (CHAIN.ctf_collateral_adapter, encode_call(CtfCall("ctf_split", binary.condition_id, 1, "0x" + "22" * 20,
                                                            (1, 2))), "unexpected collateral"),
        (CHAIN.neg_risk_adapter, encode_call(CtfCall("nr_split", binary.condition_id, 1)), "cannot nr_split a binary"),
        (CHAIN.ctf_collateral_adapter, encode_call(CtfCall("ctf_merge", binary.condition_id, 1, PUSD, (1, 2))),
         "not enough"),
    ]
    for nonce, (to, data, why) in enumerate(cases):
        estimate = {"from": ME, "to": to, "data": "0x" + data.hex()}
        if why == "not enough":  # balances are only known when mined: the estimate passes, the receipt says 0
            assert chain.handle("eth_estimateGas", [estimate]) == hex(200_000)
        else:  # a wrong contract or argument shows in eth_estimateGas, before anything is sent
            with pytest.raises(RpcFault, match="execution reverted"):
                chain.handle("eth_estimateGas", [estimate])
        tx = chain.txs[chain.handle("eth_sendRawTransaction", [_raw(to, data, nonce)])]
        assert tx.status == 0
        assert why in tx.reason
    assert state.matcher.account(ME).cash == 10_000  # nothing moved


def test_resolution_marks_the_winner_and_redeem_pays_once() -> None:
    state = _state()
    event = state.events[0]
    acct = state.matcher.account(ME)
    for m in event.markets:
        acct.positions[m.yes.token_id] = 10.0
    acct.positions[event.markets[0].no.token_id] = 4.0
    with pytest.raises(CtfError, match="not resolved"):  # no report yet: redeem reverts
        state.ctf.redeem(ME, event.markets[2])
    res = Resolutions(state.ctf)
    paid = res.resolve_event(event, 2)
    # what can be redeemed, not paid: cash and positions are untouched until redeem
    assert sorted((p.token_id, p.shares) for p in paid) == sorted(
        [(event.markets[2].yes.token_id, 10.0), (event.markets[0].no.token_id, 4.0)])
    assert acct.cash == 10_000
    assert acct.positions[event.markets[2].yes.token_id] == 10.0
    with pytest.raises(ResolutionError, match="already resolved"):
        res.resolve_event(event, 1)
    # ConditionalTokens shape: the whole balance, both tokens; a second redeem pays nothing
    assert state.ctf.redeem(ME, event.markets[2]).amount == 10.0
    assert state.ctf.redeem(ME, event.markets[2]).amount == 0.0
    assert state.ctf.redeem(ME, event.markets[0]).amount == 4.0  # outcome 0's NO won
    # NegRiskAdapter shape: exactly the amounts; more than held reverts
    with pytest.raises(CtfError, match="more than held"):
        state.ctf.redeem(ME, event.markets[1], (11.0, 0.0))
    assert state.ctf.redeem(ME, event.markets[1], (10.0, 0.0)).amount == 0.0  # a losing YES burns for $0
    assert acct.cash == 10_000 + 14
    assert all(v == 0 for v in acct.positions.values())


def test_resolved_market_shows_its_winner_on_the_wire() -> None:
    from services.sim_exchange import wire

    state = _state()
    m = state.sim.markets[0]
    assert wire.clob_market(m)["closed"] is False
    Resolutions(state.ctf).resolve_market(m, yes_wins=False)
    row = wire.clob_market(m, state.ctf.winners.get(m.condition_id))
    assert row["closed"] is True
    assert row["accepting_orders"] is False
    assert [(t["outcome"], t["winner"]) for t in row["tokens"]] == [("Yes", False), ("No", True)]
    g = wire.gamma_market(m, {}, state.ctf.winners.get(m.condition_id))
    assert g["closed"] is True
    assert g["outcomePrices"] == '["0", "1"]'


def test_redeem_over_rpc_reverts_before_resolution_then_pays_once() -> None:
    state = _state()
    chain = SimChain(state, 137)
    event = state.events[0]
    m = event.markets[1]
    state.matcher.account(ME).positions[m.yes.token_id] = 7.0
    nr = encode_call(CtfCall("nr_redeem", m.condition_id, 0.0, amounts=(7.0, 0.0)))
    assert decode_call(nr).amounts == (7.0, 0.0)
    estimate = {"from": ME, "to": CHAIN.neg_risk_adapter, "data": "0x" + nr.hex()}
    with pytest.raises(RpcFault, match="not received yet"):
        chain.handle("eth_estimateGas", [estimate])
    Resolutions(state.ctf).resolve_event(event, 1)
    first = chain.txs[chain.handle("eth_sendRawTransaction", [_raw(CHAIN.neg_risk_adapter, nr, 0)])]
    again = chain.txs[chain.handle("eth_sendRawTransaction", [_raw(CHAIN.neg_risk_adapter, nr, 1)])]
    assert (first.status, again.status) == (1, 0)  # the second asks for shares no longer held
    assert state.matcher.account(ME).cash == 10_000 + 7
    # binary shape on the collateral adapter: the whole balance, a second one pays 0 and succeeds
    b = state.sim.markets[0]
    state.matcher.account(ME).positions[b.yes.token_id] = 3.0
    Resolutions(state.ctf).resolve_market(b, yes_wins=True)
    ctf = encode_call(CtfCall("ctf_redeem", b.condition_id, 0.0, PUSD, (1, 2)))
    assert selector("ctf_redeem").hex() == "01b7037c"  # ConditionalTokens.redeemPositions
    for nonce in (2, 3):
        assert chain.txs[chain.handle("eth_sendRawTransaction", [_raw(CHAIN.ctf_collateral_adapter, ctf, nonce)])
                         ].status == 1
    assert state.matcher.account(ME).cash == 10_000 + 10


class _Ctf:
    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.calls: list[tuple[str, float]] = []

    async def split(self, condition_id: str, amount: float, version: str) -> str:
        return self._do("split", amount)

    async def merge(self, condition_id: str, amount: float, version: str) -> str:
        return self._do("merge", amount)

    async def convert(self, neg_risk_market_id: str, outcome_indexes: list[int], amount: float) -> str:
        return self._do("convert", amount)

    async def redeem(self, condition_id: str, version: str) -> str:
        return self._do("redeem", 0.0)

    def _do(self, op: str, amount: float) -> str:
        self.calls.append((op, amount))
        if op in self.fail:
            raise CtfRejected(f"{op} reverted")
        return "0x1"


class _NoOrders:
    async def take(self, *args: Any) -> TakeResult:
        raise AssertionError("no order may be sent when the sets could not be made")


@pytest.mark.parametrize(("fail", "held"), [({"convert"}, 0.0), ({"convert", "merge"}, 40.0)])
async def test_a_failed_convert_merges_the_split_back(fail: set[str], held: float) -> None:
    fee = FeeSchedule(0.0, 1.0)
    s = ArbSet("nr", (Kind.NEGRISK_SELL_ALL,), "t", ("a", "b", "c"), (fee, fee, fee), 5.0, 0.01, None, True,
               ("c0", "c1", "c2"), "nr")
    ev = Evaluation(Kind.NEGRISK_SELL_ALL, Verdict.OPPORTUNITY, s.tokens, (0.36, 0.35, 0.34), 1.05, 0.0, 0.05,
                    size=40.0, limits=(0.36, 0.35, 0.34))
    ctf = _Ctf(fail)
    rep = await Executor(_NoOrders(), ctf, "FOK", 0.05).run(s, ev)  # type: ignore[arg-type]
    assert rep.status == "failed"
    assert ctf.calls == [("split", 40.0), ("convert", 40.0), ("merge", 40.0)]
    assert rep.held_cost == held
    assert rep.pnl == 0.0


class _AmbiguousOrders:
    """The first leg fills; the second is a transport error (5xx): it may have filled."""

    def __init__(self) -> None:
        self.sent = 0

    async def take(self, *args: Any) -> TakeResult:
        self.sent += 1
        if self.sent == 1:
            return TakeResult(True, 48.0, 0.45, "o1")
        return TakeResult(False, error="502 Bad Gateway", ambiguous=True)


async def test_an_order_of_unknown_outcome_halts_with_the_execution_so_far() -> None:
    fee = FeeSchedule(0.0, 1.0)
    s = ArbSet("m", (Kind.BUY_BOTH,), "t", ("yes", "no"), (fee, fee), 5.0, 0.01, None, False, ("c", "c"), "")
    ev = Evaluation(Kind.BUY_BOTH, Verdict.OPPORTUNITY, s.tokens, (0.45, 0.50), 0.95, 0.0, 0.05,
                    size=48.0, limits=(0.45, 0.50))
    ctf = _Ctf(set())
    with pytest.raises(CtfHalt, match="unknown outcome") as info:  # a halt, never a CtfRejected
        await Executor(_AmbiguousOrders(), ctf, "FOK", 0.05).run(s, ev)  # type: ignore[arg-type]
    assert not isinstance(info.value, CtfRejected)
    assert info.value.report is not None
    assert info.value.report["status"] == "unknown"
    assert ctf.calls == []  # nothing merged on a position it does not know
