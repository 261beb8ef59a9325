"""sim_exchange as today's venue, pure parts: its environment (own addresses), wallet derivation
against the official SDK's formulas, markets of both systems, and the order-signature rules for
signature types 0-3 with orders signed by the SDK's own signing code."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from polymarket._internal import wallet as sdk_wallet
from polymarket.environments import _WalletDerivation

from services.sim_exchange.derivation import deposit_wallet, proxy_wallet, safe_wallet, uups_deposit_wallet
from services.sim_exchange.environment import SimEnvironment, environment_json
from services.sim_exchange.market import MarketSim, is_v2
from services.sim_exchange.matching import OrderError
from services.sim_exchange.signatures import EOA_REFUSED, NOT_API_KEY
from services.sim_exchange.state import SimState
from shared.config import SIM_ADDRESS, SIM_PRIVATE_KEY, SimExchangeSection
from shared.venue.environment import VenueEnvironment, production
from shared.venue.ids import in_v2_namespace, v2_condition_of
from tests.unit.sdk_orders import sdk_order, sdk_order_id


def test_the_sim_address_is_the_sim_keys() -> None:
    assert Account.from_key(SIM_PRIVATE_KEY).address == SIM_ADDRESS


@pytest.mark.parametrize("own", [False, True])
def test_wallets_derive_exactly_as_the_sdk_derives_them(own: bool) -> None:
    wd = SimEnvironment(137, own).derivation
    sdk = _WalletDerivation(**wd)
    for i in range(1, 4):
        owner = Account.from_key("0x" + f"{i:02x}" * 32).address
        assert deposit_wallet(owner, wd) == sdk_wallet.derive_beacon_deposit_wallet_address(owner, sdk)
        assert uups_deposit_wallet(owner, wd) == sdk_wallet.derive_uups_deposit_wallet_address(owner, sdk)
        assert proxy_wallet(owner, wd) == sdk_wallet.derive_proxy_wallet_address(owner, sdk)
        assert safe_wallet(owner, wd) == sdk_wallet.derive_safe_wallet_address(owner, sdk)


def test_own_addresses_replace_every_production_address() -> None:
    prod, own = SimEnvironment(137, False), SimEnvironment(137, True)
    assert own.contracts.keys() == prod.contracts.keys()
    assert "exchange_v3" in own.contracts
    for name, address in own.contracts.items():
        assert address.lower() == "0x" + keccak(text=f"polyfleet-sim:{name}")[-20:].hex()
        assert address != prod.contracts[name] == production().address(name)
    assert own.derivation["safe_init_code_hash"] == "0x" + keccak(text="polyfleet-sim:safe_init_code_hash").hex()
    raw = environment_json("sim.test:8700", 80002, own_addresses=True)
    env = VenueEnvironment.from_json("sim", raw)
    assert (env.chain_id, env.url("clob_url"), env.url("relayer_url")) == (80002, "http://sim.test:8700",
                                                                          "http://sim.test:8700/relayer")
    assert env.to_sdk().name == "sim"  # the unmodified SDK accepts it


def test_half_the_binary_markets_are_v2_with_v2_position_ids() -> None:
    assert [is_v2(i, 0.5) for i in range(6)] == [False, True] * 3
    assert not any(is_v2(i, 0.0) for i in range(6))
    assert all(is_v2(i, 1.0) for i in range(6))
    sim = MarketSim(7, 6, 0.01, v2_share=0.5)
    assert [m.version for m in sim.markets] == ["v1", "v2"] * 3
    for m in sim.markets:
        assert all(in_v2_namespace(t.token_id) == (m.version == "v2") for t in m.tokens)
        if m.version == "v2":
            assert m.condition_id.endswith("00")
            assert m.condition_id[2:4] == "01"
            assert [v2_condition_of(t.token_id) for t in m.tokens] == [(m.condition_id, 0), (m.condition_id, 1)]
            assert sim.condition(m.condition_id[:-2]) is m  # the 31-byte form finds it too
    assert [m.condition_id for m in MarketSim(7, 6, 0.01, v2_share=0.5).markets] == [
        m.condition_id for m in sim.markets]  # deterministic per seed


# ---- order signatures, signed by the SDK's own code ------------------------------------------------------


def _state() -> SimState:
    return SimState(SimExchangeSection(markets=2, v2_share=0.5, volatility=0.0), 137)


def test_deposit_wallet_orders_are_accepted_only_from_the_api_keys_own_deployed_wallet() -> None:
    state = _state()
    key = "0x" + "42" * 32
    owner = Account.from_key(key).address
    wallet = deposit_wallet(owner, state.env.derivation)
    v1, v2 = state.sim.markets
    cases = ((v1, state.env.address("standard_exchange"), "2"), (v2, state.env.address("exchange_v3"), "3"))
    for m, exchange, version in cases:
        order = sdk_order(key, wallet, 3, m.yes.token_id, exchange, version)
        with pytest.raises(OrderError, match=NOT_API_KEY):  # not deployed yet
            state.signers.check(order, owner.lower())
    state.wallets.deploy(owner, "deposit")
    for m, exchange, version in cases:
        order = sdk_order(key, wallet, 3, m.yes.token_id, exchange, version)
        assert state.signers.check(order, owner.lower()) == sdk_order_id(order, exchange, version)  # its EIP-712 hash
        with pytest.raises(OrderError, match=NOT_API_KEY):  # another API key's EOA
            state.signers.check(order, SIM_ADDRESS.lower())
        with pytest.raises(OrderError, match=NOT_API_KEY):  # amounts changed after signing
            state.signers.check({**order, "makerAmount": "2000000"}, owner.lower())
    # a v2 order signed for the v1 domain is not an order of this market
    wrong = sdk_order(key, wallet, 3, v2.yes.token_id, state.env.address("standard_exchange"), "2")
    with pytest.raises(OrderError, match=NOT_API_KEY):
        state.signers.check(wrong, owner.lower())


def test_eoa_proxy_and_safe_orders_follow_the_signer_rules() -> None:
    state = _state()
    v1 = state.sim.markets[0]
    exchange = state.env.address("standard_exchange")
    legacy = sdk_order(SIM_PRIVATE_KEY, SIM_ADDRESS, 0, v1.yes.token_id, exchange, "2")
    assert state.signers.check(legacy, SIM_ADDRESS.lower()).startswith("0x")
    key = "0x" + "43" * 32
    owner = Account.from_key(key).address
    with pytest.raises(OrderError, match=EOA_REFUSED):  # a new account's EOA maker
        state.signers.check(sdk_order(key, owner, 0, v1.yes.token_id, exchange, "2"), owner.lower())
    with pytest.raises(OrderError, match="invalid signature"):  # signed for the Neg Risk exchange
        state.signers.check(sdk_order(SIM_PRIVATE_KEY, SIM_ADDRESS, 0, v1.yes.token_id,
                                      state.env.address("neg_risk_exchange"), "2"), SIM_ADDRESS.lower())
    for kind, sig_type in (("proxy", 1), ("safe", 2)):
        wallet = state.wallets.address_of(owner, kind)  # type: ignore[arg-type]
        order = sdk_order(key, wallet, sig_type, v1.yes.token_id, exchange, "2")
        with pytest.raises(OrderError, match="not deployed"):
            state.signers.check(order, owner.lower())
        state.wallets.deploy(owner, kind)  # type: ignore[arg-type]
        assert state.signers.check(order, owner.lower()).startswith("0x")
        with pytest.raises(OrderError, match=NOT_API_KEY):
            state.signers.check(order, SIM_ADDRESS.lower())
        stranger = sdk_order(key, SIM_ADDRESS, sig_type, v1.yes.token_id, exchange, "2")
        with pytest.raises(OrderError, match=f"is not the {kind} wallet of the signer"):
            state.signers.check(stranger, owner.lower())
