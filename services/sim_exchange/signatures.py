"""Who may sign an order for which maker: the venue's order-signature rules (docs/venue.md V2, W2, W3).

The domain is the market's system: a v1 market's orders are signed for the standard or Neg Risk
exchange (EIP-712 domain version "2"), a v2 market's for ExchangeV3 (version "3"); addresses and
chain id come from the sim's environment. The order id is the EIP-712 hash of the order under that
domain, whatever the signature type (so a client can compute it before the answer arrives).

* Types 0, 1, 2 carry a 65-byte ECDSA signature of the API key's EOA (the ``signer``). The maker is
  the EOA itself (0: refused unless on ``sim_exchange.legacy_eoa_makers``, "maker address not
  allowed, please use the deposit wallet flow"), or the EOA's deployed proxy (1) or Safe (2).
* Type 3 (POLY_1271, deposit wallets) carries the ERC-7739 ``TypedDataSign`` envelope the official
  SDK builds: ``ecdsa(65) ‖ domainSeparator(32) ‖ hashStruct(Order)(32) ‖ typeString ‖ uint16(len)``.
  Accepted iff its ECDSA signer is the API key's EOA and maker = signer = that EOA's deployed
  deposit wallet (decision 1 of the venue plan); anything else is refused with "the order signer
  address has to be the address of the API KEY". Session-key envelopes are not accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data

from services.sim_exchange.accounts import WalletBook, WalletKind
from services.sim_exchange.environment import SimEnvironment
from services.sim_exchange.market import SimMarket
from services.sim_exchange.matching import OrderError
from shared.venue.order_hash import DOMAIN_STRUCT, ORDER_STRUCT, encoded_order, order_domain, order_hash, order_message

NOT_API_KEY = "the order signer address has to be the address of the API KEY"
EOA_REFUSED = "maker address not allowed, please use the deposit wallet flow"
_ORDER_TYPE = "Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_STRUCT) + ")"
_TYPED_DATA_SIGN = [
    {"name": "contents", "type": "Order"}, {"name": "name", "type": "string"},
    {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"},
]
_SESSION_MAGIC = bytes.fromhex("6492" * 16)


@dataclass(frozen=True)
class Exchange:
    """The contract an order is signed for, and its EIP-712 domain version."""

    address: str
    version: str


def exchange_for(env: SimEnvironment, version: str, neg_risk: bool) -> Exchange:
    if version == "v2":
        return Exchange(env.address("exchange_v3"), "3")
    return Exchange(env.address("neg_risk_exchange" if neg_risk else "standard_exchange"), "2")


def _signature(order: dict[str, object]) -> bytes:
    try:
        return bytes.fromhex(str(order["signature"]).removeprefix("0x"))
    except ValueError as exc:
        raise OrderError("invalid signature") from exc


def recover_ecdsa(order: dict[str, object], exchange: Exchange, chain_id: int) -> str | None:
    """The address (lowercase) behind a 65-byte order signature, or None."""
    try:
        encoded = encoded_order(order, chain_id=chain_id, exchange=exchange.address, version=exchange.version)
        return str(Account.recover_message(encoded, signature=_signature(order))).lower()
    except Exception:  # malformed signature or struct
        return None


def recover_1271(order: dict[str, object], exchange: Exchange, chain_id: int) -> str | None:
    """The EOA behind a deposit wallet's ERC-7739 envelope (lowercase), or None when the envelope
    does not wrap this very order under this very domain."""
    sig = _signature(order)
    if sig.endswith(_SESSION_MAGIC) or len(sig) < 65 + 64 + 2:
        return None
    ecdsa, trailer = sig[:65], sig[65:]
    type_len = int.from_bytes(trailer[-2:], "big")
    if trailer[64:-2] != _ORDER_TYPE.encode() or type_len != len(_ORDER_TYPE):
        return None
    try:
        plain = encoded_order(order, chain_id=chain_id, exchange=exchange.address, version=exchange.version)
        if trailer[:32] != plain.header or trailer[32:64] != plain.body:
            return None
        typed = {
            "types": {"EIP712Domain": DOMAIN_STRUCT, "Order": ORDER_STRUCT, "TypedDataSign": _TYPED_DATA_SIGN},
            "primaryType": "TypedDataSign",
            "domain": order_domain(exchange.address, exchange.version, chain_id),
            "message": {"contents": order_message(order), "name": "DepositWallet", "version": "1",
                        "chainId": chain_id, "verifyingContract": order["signer"], "salt": b"\x00" * 32},
        }
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=ecdsa)).lower()
    except Exception:  # malformed struct or signature
        return None


class OrderSigners:
    """The venue's signature rules, against the sim's environment and wallets."""

    def __init__(self, env: SimEnvironment, wallets: WalletBook, legacy_eoa_makers: Collection[str],
                 market_of: Callable[[str], SimMarket | None]) -> None:
        self.env = env
        self.wallets = wallets
        self.legacy = {a.lower() for a in legacy_eoa_makers}
        self.market_of = market_of

    def check(self, order: dict[str, object], api_address: str) -> str:
        """The order id of an acceptable order; :class:`OrderError` with the venue's text otherwise.
        ``api_address``: the EOA the API key is bound to (lowercase)."""
        market = self.market_of(str(order.get("tokenId", "")))
        if market is None:
            raise OrderError(f"Invalid order payload: unknown token id {order.get('tokenId')}")
        exchange = exchange_for(self.env, market.version, market.neg_risk)
        chain = self.env.chain_id
        try:
            sig_type = int(str(order["signatureType"]))
            maker, signer = str(order["maker"]).lower(), str(order["signer"]).lower()
            order_id = order_hash(order, chain_id=chain, exchange=exchange.address, version=exchange.version)
        except (KeyError, TypeError, ValueError) as exc:
            raise OrderError(f"Invalid order payload: {exc}") from exc
        if sig_type == 3:
            owner = recover_1271(order, exchange, chain)
            wallet = self.wallets.deployed(signer, "deposit")
            if owner != api_address or maker != signer or wallet is None or wallet.owner != owner:
                raise OrderError(NOT_API_KEY)
            return order_id
        if sig_type not in (0, 1, 2):
            raise OrderError(f"Invalid order payload: unknown signatureType {sig_type}")
        if signer != api_address:
            raise OrderError(NOT_API_KEY)
        if recover_ecdsa(order, exchange, chain) != signer:
            raise OrderError("invalid signature")
        if sig_type == 0:
            if maker != signer:
                raise OrderError(f"the order maker {maker} is not its signer {signer} (signature type 0)")
            if maker not in self.legacy:
                raise OrderError(EOA_REFUSED)
            return order_id
        kind: WalletKind = "proxy" if sig_type == 1 else "safe"
        if maker != self.wallets.address_of(signer, kind):
            raise OrderError(f"the order maker {maker} is not the {kind} wallet of the signer {signer}")
        if self.wallets.deployed(maker, kind) is None:
            raise OrderError(f"the {kind} wallet {maker} is not deployed")
        return order_id
