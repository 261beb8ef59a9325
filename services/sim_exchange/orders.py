"""Parse a signed V2 ``POST /order`` payload: amounts -> side/price/size, order hash, signer recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account

from services.sim_exchange.auth import ApiKey
from services.sim_exchange.matching import OrderError, OrderRequest
from shared.venue.order_hash import encoded_order, order_hash

_REQUIRED = ("salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signatureType",
             "timestamp", "signature")


def order_hash_and_signer(order: dict[str, Any], neg_risk: bool = False) -> tuple[str, str | None]:
    """(EIP-712 order hash, recovered signer lowercase or None when it cannot be recovered)."""
    try:
        signer = str(Account.recover_message(encoded_order(order, neg_risk), signature=order["signature"])).lower()
    except Exception:  # malformed or non-ECDSA (POLY_1271) signature
        signer = None
    return order_hash(order, neg_risk), signer


def parse_post(payload: Any, key: ApiKey, verify: bool = True,
               neg_risk_of: Callable[[str], bool] = lambda _token: False,
               check: Callable[[dict[str, Any]], str] | None = None) -> OrderRequest:
    """One ``{order, owner, orderType, postOnly, ...}`` element -> OrderRequest (or OrderError).
    ``check``: the venue's signature rules (signatures.OrderSigners), returning the order id;
    without it, an ECDSA signature of the API key's address for the production CTF exchanges."""
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise OrderError("Invalid order payload")
    order = payload["order"]
    missing = [k for k in _REQUIRED if order.get(k) in (None, "")]
    if missing:
        raise OrderError(f"Invalid order payload: missing {', '.join(missing)}")
    side = str(order["side"]).upper()
    if side not in ("BUY", "SELL"):
        raise OrderError("Invalid order payload: side must be BUY or SELL")
    order = {**order, "side": side}
    try:
        maker_amt, taker_amt = int(order["makerAmount"]), int(order["takerAmount"])
        expiration = int(order.get("expiration") or 0)
    except (TypeError, ValueError) as exc:
        raise OrderError(f"Invalid order payload: {exc}") from exc
    if maker_amt <= 0 or taker_amt <= 0:
        raise OrderError("Invalid order payload: amounts must be positive")
    if payload.get("owner") != key.key:
        raise OrderError("the order owner has to be the owner of the API KEY")
    order_id = check(order) if check is not None else _legacy_check(order, key, verify, neg_risk_of)
    if side == "BUY":
        size, raw_price = taker_amt / 1e6, maker_amt / taker_amt
    else:
        size, raw_price = maker_amt / 1e6, taker_amt / maker_amt
    return OrderRequest(
        order_id=order_id, token_id=str(order["tokenId"]), side=side, price=_price(raw_price), size=round(size, 6),
        owner=key.key, maker=str(order["maker"]).lower(), order_type=str(payload.get("orderType") or "GTC").upper(),
        post_only=bool(payload.get("postOnly", False)), expiration=expiration,
    )


def _legacy_check(order: dict[str, Any], key: ApiKey, verify: bool, neg_risk_of: Callable[[str], bool]) -> str:
    try:
        # neg-risk markets are signed for the Neg Risk exchange (another EIP-712 domain)
        order_id, signer = order_hash_and_signer(order, neg_risk_of(str(order["tokenId"])))
    except (TypeError, ValueError) as exc:
        raise OrderError(f"Invalid order payload: {exc}") from exc
    if str(order["signer"]).lower() != key.address:
        raise OrderError("the order signer address has to be the address of the API KEY")
    if verify and int(order["signatureType"]) != 3 and signer != key.address:
        raise OrderError("invalid signature")
    return order_id


def _price(raw: float) -> float:
    """Market orders' amounts carry rounding (e.g. 5 / 9.4339); snap within 1e-4 to 4 decimals."""
    snapped = round(raw, 4)
    return snapped if abs(raw - snapped) < 1e-4 else round(raw, 6)
