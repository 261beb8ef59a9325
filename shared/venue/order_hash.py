"""The order id: the EIP-712 hash of the signed order, as the exchange contract and the CLOB key it.

Computed locally, the id is known before the POST answers, so a placement whose answer is lost
(timeout, 5xx) can be looked up by id instead of guessed from open orders and positions. The
sim exchange derives its order ids with the same function, from the posted JSON. The struct is the
same for both market systems; the domain differs (v1: the CTF or Neg Risk exchange, version "2";
v2: ExchangeV3, version "3"; docs/venue.md V2).
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


def order_domain(exchange: str, version: str = "2", chain_id: int = 137) -> dict[str, Any]:
    """The exchange's EIP-712 domain: version "2" for the CTF exchanges (v1 markets), "3" for
    ExchangeV3 (v2 markets, docs/venue.md V2)."""
    return {"name": "Polymarket CTF Exchange", "version": version, "chainId": chain_id, "verifyingContract": exchange}


def order_message(order: dict[str, Any]) -> dict[str, Any]:
    """The signed struct of one ``POST /order`` ``order`` object (side as "BUY"/"SELL")."""
    return {
        "salt": int(order["salt"]), "maker": order["maker"], "signer": order["signer"],
        "tokenId": int(order["tokenId"]), "makerAmount": int(order["makerAmount"]),
        "takerAmount": int(order["takerAmount"]), "side": 0 if str(order["side"]).upper() == "BUY" else 1,
        "signatureType": int(order["signatureType"]), "timestamp": int(order["timestamp"]),
        "metadata": _b32(order.get("metadata") or "0x0"), "builder": _b32(order.get("builder") or "0x0"),
    }


def typed_order(order: dict[str, Any], neg_risk: bool = False, chain_id: int = 137, *, exchange: str | None = None,
                version: str = "2") -> dict[str, Any]:
    """The EIP-712 message of one ``POST /order`` ``order`` object. Without ``exchange``: the
    production CTF exchange (neg-risk markets are signed for the Neg Risk exchange: another domain,
    another hash); with it, that contract under domain ``version``."""
    contract = exchange or (NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2)
    return {
        "primaryType": "Order",
        "types": {"EIP712Domain": DOMAIN_STRUCT, "Order": ORDER_STRUCT},
        "domain": order_domain(contract, version, chain_id),
        "message": order_message(order),
    }


def encoded_order(order: dict[str, Any], neg_risk: bool = False, chain_id: int = 137, *, exchange: str | None = None,
                  version: str = "2") -> SignableMessage:
    return encode_typed_data(full_message=typed_order(order, neg_risk, chain_id, exchange=exchange, version=version))


def order_hash(order: dict[str, Any], neg_risk: bool = False, chain_id: int = 137, *, exchange: str | None = None,
               version: str = "2") -> str:
    """``0x``-prefixed order id of a ``POST /order`` ``order`` object."""
    encoded = encoded_order(order, neg_risk, chain_id, exchange=exchange, version=version)
    return "0x" + keccak(b"\x19" + encoded.version + encoded.header + encoded.body).hex()
