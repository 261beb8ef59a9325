"""The V2 order id: the EIP-712 hash of the signed order, as the exchange contract and the CLOB key it.

Computed locally, the id is known before the POST answers, so a placement whose answer is lost
(timeout, 5xx) can be looked up by id instead of guessed from open orders and positions. The
sim exchange derives its order ids with the same function, from the posted JSON.
"""

from __future__ import annotations

from typing import Any

from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak

EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
ORDER_STRUCT = [
    {"name": "salt", "type": "uint256"}, {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"}, {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"}, {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"}, {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"}, {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]
DOMAIN_STRUCT = [
    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
]


def _b32(value: str) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x").zfill(64))


def typed_order(order: dict[str, Any], neg_risk: bool = False, chain_id: int = 137) -> dict[str, Any]:
    """The EIP-712 message of one ``POST /order`` ``order`` object (side as "BUY"/"SELL")."""
    return {
        "primaryType": "Order",
        "types": {"EIP712Domain": DOMAIN_STRUCT, "Order": ORDER_STRUCT},
        # neg-risk markets are signed for the Neg Risk exchange: another domain, another hash
        "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": chain_id,
                   "verifyingContract": NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2},
        "message": {
            "salt": int(order["salt"]), "maker": order["maker"], "signer": order["signer"],
            "tokenId": int(order["tokenId"]), "makerAmount": int(order["makerAmount"]),
            "takerAmount": int(order["takerAmount"]), "side": 0 if str(order["side"]).upper() == "BUY" else 1,
            "signatureType": int(order["signatureType"]), "timestamp": int(order["timestamp"]),
            "metadata": _b32(order.get("metadata") or "0x0"), "builder": _b32(order.get("builder") or "0x0"),
        },
    }


def encoded_order(order: dict[str, Any], neg_risk: bool = False) -> SignableMessage:
    return encode_typed_data(full_message=typed_order(order, neg_risk))


def order_hash(order: dict[str, Any], neg_risk: bool = False) -> str:
    """``0x``-prefixed order id of a ``POST /order`` ``order`` object."""
    encoded = encoded_order(order, neg_risk)
    return "0x" + keccak(b"\x19" + encoded.version + encoded.header + encoded.body).hex()
