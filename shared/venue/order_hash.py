"""The order id: the EIP-712 hash of the signed order, as the exchange contract and the CLOB key it.

Computed locally, the id is known before the POST answers, so a placement whose answer is lost
(timeout, 5xx) can be looked up by id instead of guessed from open orders and positions. The
sim exchange derives its order ids with the same function, from the posted JSON.

The domain depends on the market system (docs/venue.md V2, P9): a v1 (CTF) order is signed for the
standard or the neg-risk exchange with domain version "2", a v2 order for ExchangeV3 with domain
version "3"; the addresses and the chain id come from the venue environment
(:func:`exchange_domain`). A deposit-wallet order (signature type 3, POLY_1271) carries an
ERC-7739 envelope as its signature, but its id is the same plain hash of the same ``Order`` struct
(the envelope's trailer holds exactly that domain separator and struct hash).

Every function takes the exchange, its domain version and the chain id from the caller: no
contract address is written here (issue 15: addresses come from the environment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak

if TYPE_CHECKING:
    from shared.venue.environment import VenueEnvironment
    from shared.venue.ids import MarketSystem

DOMAIN_NAME = "Polymarket CTF Exchange"
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


def exchange_domain(env: VenueEnvironment, system: MarketSystem, neg_risk: bool) -> tuple[str, str]:
    """(verifying contract, domain version) an order of this market is signed for."""
    if system == "v2":
        return env.address("exchange_v3"), "3"  # one exchange for every v2 market, neg-risk or not
    return env.address("neg_risk_exchange" if neg_risk else "standard_exchange"), "2"


def _b32(value: str) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x").zfill(64))


def order_domain(exchange: str, version: str, chain_id: int) -> dict[str, Any]:
    """The exchange's EIP-712 domain: version "2" for the CTF exchanges (v1 markets), "3" for
    ExchangeV3 (v2 markets, docs/venue.md V2)."""
    return {"name": DOMAIN_NAME, "version": version, "chainId": chain_id, "verifyingContract": exchange}


def order_message(order: dict[str, Any]) -> dict[str, Any]:
    """The signed struct of one ``POST /order`` ``order`` object (side as "BUY"/"SELL")."""
    return {
        "salt": int(order["salt"]), "maker": order["maker"], "signer": order["signer"],
        "tokenId": int(order["tokenId"]), "makerAmount": int(order["makerAmount"]),
        "takerAmount": int(order["takerAmount"]), "side": 0 if str(order["side"]).upper() == "BUY" else 1,
        "signatureType": int(order["signatureType"]), "timestamp": int(order["timestamp"]),
        "metadata": _b32(order.get("metadata") or "0x0"), "builder": _b32(order.get("builder") or "0x0"),
    }


def typed_order(order: dict[str, Any], *, exchange: str, version: str, chain_id: int) -> dict[str, Any]:
    """The EIP-712 message of one ``POST /order`` ``order`` object signed for ``exchange`` under
    domain ``version`` (:func:`exchange_domain` picks both for a market)."""
    return {
        "primaryType": "Order",
        "types": {"EIP712Domain": DOMAIN_STRUCT, "Order": ORDER_STRUCT},
        "domain": order_domain(exchange, version, chain_id),
        "message": order_message(order),
    }


def encoded_order(order: dict[str, Any], *, exchange: str, version: str, chain_id: int) -> SignableMessage:
    return encode_typed_data(full_message=typed_order(order, exchange=exchange, version=version, chain_id=chain_id))


def order_hash(order: dict[str, Any], *, exchange: str, version: str, chain_id: int) -> str:
    """``0x``-prefixed order id of a ``POST /order`` ``order`` object."""
    encoded = encoded_order(order, exchange=exchange, version=version, chain_id=chain_id)
    return "0x" + keccak(b"\x19" + encoded.version + encoded.header + encoded.body).hex()
