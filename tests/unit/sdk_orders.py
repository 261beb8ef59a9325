"""Orders signed by the official SDK's own signing code, without a client or a request, exactly
as ``POST /order`` carries them; and their ids as the SDK hashes them. For the sim's pure order
parsing and signature rules (an independent signer and hasher, not the sim's own code)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from polymarket._internal.actions.orders.post import _build_send_order_payload
from polymarket._internal.actions.orders.typed_data import (
    _build_standard_typed_data,
    build_order_signature,
    build_order_typed_data,
)
from polymarket._internal.actions.orders.types import BYTES32_ZERO, UnsignedOrder
from polymarket.models.clob.orders import SignedOrder


def sdk_payload(key: str, wallet: str, sig_type: int, token: str, exchange: str, version: str, owner: str = "owner",
                maker_amount: int = 1_000_000, taker_amount: int = 10_000_000,
                side: Literal["BUY", "SELL"] = "BUY") -> dict[str, Any]:
    """The ``POST /order`` body of an order of ``wallet`` signed with ``key`` for ``exchange``
    under domain ``version`` (type 3: the deposit wallet's ERC-7739 envelope)."""
    signer = Account.from_key(key)
    unsigned = UnsignedOrder(
        chain_id=137, builder=BYTES32_ZERO, exchange_address=exchange, expiration=0, maker=wallet,  # type: ignore[arg-type]
        maker_amount=maker_amount, metadata=BYTES32_ZERO, order_type="GTC", salt=12345, side=side,
        signature_type=sig_type, signer=wallet if sig_type == 3 else signer.address,  # type: ignore[arg-type]
        taker_amount=taker_amount, timestamp=1_790_000_000_000, token_id=token, protocol_version=version)  # type: ignore[arg-type]
    sig = signer.sign_message(encode_typed_data(full_message=build_order_typed_data(unsigned))).signature.hex()
    signature = build_order_signature(unsigned, "0x" + sig.removeprefix("0x"))  # type: ignore[arg-type]
    fields = {f.name: getattr(unsigned, f.name) for f in dataclasses.fields(unsigned)
              if f.name not in ("chain_id", "exchange_address", "protocol_version")}
    return _build_send_order_payload(SignedOrder(**fields, signature=signature), owner_api_key=owner)


def sdk_order(key: str, wallet: str, sig_type: int, token: str, exchange: str, version: str,
              owner: str = "owner", maker_amount: int = 1_000_000) -> dict[str, Any]:
    """The ``order`` object of :func:`sdk_payload`."""
    order: dict[str, Any] = sdk_payload(key, wallet, sig_type, token, exchange, version, owner, maker_amount)["order"]
    return order


def sdk_order_id(order: dict[str, Any], exchange: str, version: str) -> str:
    """The id of ``order``: the hash of its plain EIP-712 form, as the SDK builds it."""
    unsigned = UnsignedOrder(
        chain_id=137, builder=order["builder"], exchange_address=exchange, expiration=0, maker=order["maker"],
        maker_amount=int(order["makerAmount"]), metadata=order["metadata"], order_type="GTC", salt=order["salt"],
        side=order["side"], signature_type=order["signatureType"], signer=order["signer"],
        taker_amount=int(order["takerAmount"]), timestamp=int(order["timestamp"]), token_id=order["tokenId"],
        protocol_version=version)  # type: ignore[arg-type]
    encoded = encode_typed_data(full_message=_build_standard_typed_data(unsigned, protocol_version=version))
    return "0x" + keccak(b"\x19\x01" + encoded.header + encoded.body).hex()
