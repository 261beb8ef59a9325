"""Every use of the official SDK's private API on the order side, in one place.

polyfleet builds FOK/FAK amounts itself (shared/venue/amounts.py: the SDK's own market-order maths
rounds the taker amount to 5-6 decimals on fine ticks, which the venue refuses, docs/venue.md P3),
and then needs the SDK to sign an order of *those* amounts: build an ``OrderDraft`` and hand it to
the secure client's signing path (``_sign_order``), which stamps salt and timestamp, picks the
signature type and signer for the wallet, signs EIP-712 with the right domain, and wraps a
deposit wallet's ERC-7739 envelope. Limit orders go the same way, so every order polyfleet sends
has amounts it computed and checked, and creating one makes no request.

Private means it may move in any release: polymarket-client is pinned (pyproject, uv.lock) to
:data:`SDK_VERSION`, and tests/unit/test_venue_sdk_private.py fails when any name or field used
here changes. (The environment constructor, the other private use, is in environment.py.) The market's fee
schedule is read through the SDK's own ``/clob-markets`` reader (:func:`platform_fees`).
"""

from __future__ import annotations

from typing import Any, Literal, cast

from polymarket import AsyncSecureClient
from polymarket._internal.actions.orders.market_data import fetch_platform_fee_info
from polymarket._internal.actions.orders.types import OrderDraft
from polymarket._internal.wallet import derive_proxy_wallet_address, derive_safe_wallet_address
from polymarket.environments import _WalletDerivation
from polymarket.models.clob.orders import SignedOrder
from polymarket.models.types import ClobAssetId, ConditionId
from polymarket.types import EvmAddress

SDK_VERSION = "0.14.0"
OrderType = Literal["GTC", "GTD", "FOK", "FAK"]


def draft(client: AsyncSecureClient, *, asset_id: str, side: Literal["BUY", "SELL"], maker: int, taker: int,
          order_type: OrderType, exchange: str, chain_id: int, expiration: int = 0) -> OrderDraft:
    """An unsigned order of exactly these amounts (base units) for the client's wallet."""
    return OrderDraft(chain_id=chain_id, exchange_address=cast(EvmAddress, exchange), expiration=expiration,
                      funder_address=client.wallet, offered_amount=maker, order_type=order_type, side=side,
                      signer=client.signer, requested_amount=taker, asset_id=cast(ClobAssetId, asset_id))


async def sign(client: AsyncSecureClient, order: OrderDraft, post_only: bool = False) -> SignedOrder:
    """The SDK's own signing path for a draft (wallet type, signature type, 7739 envelope)."""
    signed: SignedOrder = await client._sign_order(order, post_only=post_only)
    return signed


def order_json(signed: SignedOrder) -> dict[str, Any]:
    """The ``order`` object ``POST /order`` carries for ``signed`` (what order_hash.py hashes)."""
    return {"salt": signed.salt, "maker": signed.maker, "signer": signed.signer, "tokenId": signed.token_id,
            "makerAmount": str(signed.maker_amount), "takerAmount": str(signed.taker_amount), "side": signed.side,
            "signatureType": signed.signature_type, "timestamp": str(signed.timestamp), "metadata": signed.metadata,
            "builder": signed.builder, "expiration": str(signed.expiration), "signature": signed.signature}


def api_credentials(client: AsyncSecureClient) -> tuple[str, str, str]:
    """(key, secret, passphrase) the client authenticates with: given, or derived at ``create``."""
    creds = client._ctx.credentials
    return creds.key, creds.secret, creds.passphrase


def derived_wallet(kind: Literal["proxy", "safe"], signer: str, derivation: dict[str, str]) -> str:
    """The proxy or Safe wallet the SDK derives for ``signer`` (CREATE2, no request)."""
    config = _WalletDerivation(**derivation)
    return derive_proxy_wallet_address(signer, config) if kind == "proxy" else derive_safe_wallet_address(signer, config)


async def platform_fees(client: AsyncSecureClient, condition_id: str) -> tuple[float, float]:
    """(rate, exponent) of the market's taker fee: ``/clob-markets/{condition_id}`` ``fd`` as the
    SDK reads it for its own fee maths (no ``fd``: no fee). The SDK has no public getter for it."""
    info = await fetch_platform_fee_info(client._ctx, condition_id=cast(ConditionId, condition_id))
    return float(info.rate), float(info.exponent)
