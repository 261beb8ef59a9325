"""The SDK's private order API that shared/venue/sdk_private.py wraps: pinned version, the names and
fields it uses, and what signing a draft of our own amounts produces (EOA and deposit wallet, v1 and
v2 domains). Fails when polymarket-client changes any of it."""

from __future__ import annotations

import dataclasses
import inspect
from decimal import Decimal
from fractions import Fraction

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.backends import get_backend
from eth_utils.crypto import keccak
from polymarket import AsyncSecureClient
from polymarket._internal.actions.orders.limit import _compute_limit_order_amounts
from polymarket._internal.actions.orders.market import _compute_market_order_amounts
from polymarket._internal.actions.orders.types import OrderDraft
from polymarket._internal.wallet import derive_beacon_deposit_wallet_address
from polymarket.environments import _WalletDerivation
from polymarket.models import ApiKeyCreds
from polymarket.models.clob.orders import SignedOrder
from polymarket.version import __version__

from shared.config import SIM_PRIVATE_KEY
from shared.venue.amounts import limit_amounts, marketable_amounts
from shared.venue.environment import production
from shared.venue.ids import v2_condition_id, v2_position_id
from shared.venue.order_hash import exchange_domain, order_hash, typed_order
from shared.venue.sdk_private import SDK_VERSION, derived_wallet, draft, order_json, sign

V1_TOKEN = str((1 << 255) | (1 << 60) | 12345)
V2_POSITION = v2_position_id(v2_condition_id(1, b"\x07" * 16), 0)
ENV = production()
SIGNER = Account.from_key(SIM_PRIVATE_KEY)


def client_for(wallet: str, wallet_type: str) -> AsyncSecureClient:
    """A secure client built without any request (the SDK's own constructor behind ``create``)."""
    from polymarket._internal.environment import get_environment_config

    sdk_env = ENV.to_sdk()
    return AsyncSecureClient._construct_for_wallet(
        signer=SIGNER, wallet=wallet, wallet_type=wallet_type, signer_type="OWNER",  # type: ignore[arg-type]
        environment=sdk_env, config=get_environment_config(sdk_env),
        credentials=ApiKeyCreds(key="k", secret="c2VjcmV0", passphrase="p"), api_key=None, logger=None,
        on_rate_limit_update=None)


def test_the_sdk_is_the_pinned_version_with_the_shapes_wrapped() -> None:
    assert __version__ == SDK_VERSION
    assert {f.name for f in dataclasses.fields(OrderDraft)} == {
        "chain_id", "exchange_address", "expiration", "funder_address", "offered_amount", "order_type", "side",
        "signer", "requested_amount", "asset_id", "builder_code"}
    assert {f.name for f in dataclasses.fields(SignedOrder)} == {
        "builder", "expiration", "maker", "maker_amount", "metadata", "order_type", "salt", "side", "signature",
        "signature_type", "signer", "taker_amount", "timestamp", "token_id", "post_only"}
    params = inspect.signature(AsyncSecureClient._sign_order).parameters
    assert list(params) == ["self", "draft", "post_only"]
    assert inspect.iscoroutinefunction(AsyncSecureClient._sign_order)
    # the fee schedule reader (platform_fees): its keyword, its answer's fields, the context it takes
    from polymarket._internal.actions.orders.market_data import PlatformFeeInfo, fetch_platform_fee_info
    assert list(inspect.signature(fetch_platform_fee_info).parameters) == ["ctx", "condition_id"]
    assert {f.name for f in dataclasses.fields(PlatformFeeInfo)} == {"rate", "exponent"}
    assert hasattr(client_for(SIGNER.address, "eoa"), "_ctx")


def test_coincurve_is_the_secp256k1_backend() -> None:
    """Signing stays under 1 ms only with the C backend (docs/benchmarks.md)."""
    assert type(get_backend()).__name__ == "CoinCurveECCBackend"


@pytest.mark.parametrize(("asset", "neg_risk"), [(V1_TOKEN, False), (V1_TOKEN, True), (V2_POSITION, False)])
async def test_an_eoa_signs_a_draft_of_our_amounts_for_the_right_domain(asset: str, neg_risk: bool) -> None:
    client = client_for(SIGNER.address, "EOA")
    system = "v2" if asset == V2_POSITION else "v1"
    exchange, version = exchange_domain(ENV, system, neg_risk)
    a = marketable_amounts("SELL", 0.123, 5.55, 0.001)
    signed = await sign(client, draft(client, asset_id=asset, side="SELL", maker=a.maker, taker=a.taker,
                                      order_type="FAK", exchange=exchange, chain_id=ENV.chain_id))
    assert (signed.maker_amount, signed.taker_amount, signed.order_type) == (5_550_000, 682_600, "FAK")
    assert (signed.maker, signed.signer, signed.signature_type) == (SIGNER.address, SIGNER.address, 0)
    body = order_json(signed)
    typed = typed_order(body, exchange=exchange, version=version, chain_id=ENV.chain_id)
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signed.signature) == SIGNER.address
    assert version == ("3" if system == "v2" else "2")
    await client.close()


async def test_a_deposit_wallet_order_hash_is_the_one_in_its_7739_envelope() -> None:
    wallet = derive_beacon_deposit_wallet_address(SIGNER.address, _WalletDerivation(**ENV.wallet_derivation))
    client = client_for(wallet, "DEPOSIT_WALLET")
    exchange, version = exchange_domain(ENV, "v2", False)
    a = limit_amounts("BUY", 0.45, 10, 0.01)
    signed = await sign(client, draft(client, asset_id=V2_POSITION, side="BUY", maker=a.maker, taker=a.taker,
                                      order_type="GTC", exchange=exchange, chain_id=ENV.chain_id), post_only=True)
    assert (signed.maker, signed.signer, signed.signature_type, signed.post_only) == (wallet, wallet, 3, True)
    trailer = bytes.fromhex(signed.signature[2:])[65:]
    in_envelope = "0x" + keccak(b"\x19\x01" + trailer[:32] + trailer[32:64]).hex()
    assert order_hash(order_json(signed), exchange=exchange, version=version, chain_id=ENV.chain_id) == in_envelope
    await client.close()


def test_derived_proxy_and_safe_wallets_are_the_sdks() -> None:
    from polymarket._internal.wallet import classify_wallet_type

    config = _WalletDerivation(**ENV.wallet_derivation)
    for kind, wallet_type in (("proxy", "POLY_PROXY"), ("safe", "GNOSIS_SAFE")):
        address = derived_wallet(kind, SIGNER.address, ENV.wallet_derivation)  # type: ignore[arg-type]
        assert classify_wallet_type(signer=SIGNER.address, wallet=address, config=config) == wallet_type


@pytest.mark.parametrize("tick", ["0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"])
def test_our_limit_amounts_are_the_sdks(tick: str) -> None:
    t = Fraction(tick)
    for k in (1, 7, int(1 / t) // 2, int(1 / t) - 1):
        for size in ("5", "10.129", "123.45"):
            for side in ("BUY", "SELL"):
                ours = limit_amounts(side, k * t, size, t)  # type: ignore[arg-type]
                sdk = _compute_limit_order_amounts(price=Decimal(k) * Decimal(tick), size=Decimal(size),
                                                   side=side, tick_size=Decimal(tick))  # type: ignore[arg-type]
                assert (ours.maker, ours.taker) == sdk


def test_the_sdks_market_maths_breaks_the_four_decimal_rule_on_fine_ticks() -> None:
    """Why amounts.py exists: the SDK's FOK/FAK taker amount follows the tick (sdk-wire §4.2)."""
    maker, taker = _compute_market_order_amounts(amount=Decimal("9.98"), price=Decimal("0.985"), side="BUY",
                                                 tick_size=Decimal("0.001"))
    assert (maker, taker) == (9_980_000, 10_131_970)  # 10.13197 shares: five decimals, refused (P3)
    ours = marketable_amounts("BUY", 0.985, None, 0.001, budget=9.98)
    assert (ours.maker, ours.taker) == (9_980_000, 10_131_900)
    # On a 0.01 tick the two agree.
    maker, taker = _compute_market_order_amounts(amount=Decimal("1"), price=Decimal("0.57"), side="BUY",
                                                 tick_size=Decimal("0.01"))
    assert (maker, taker) == (1_000_000, 1_754_300)
