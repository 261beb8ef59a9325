"""Parse a signed ``POST /order`` payload: amounts -> side/price/size; the signature rules and the
order id are the caller's ``check`` (signatures.OrderSigners, against the sim's environment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.sim_exchange.auth import ApiKey
from services.sim_exchange.matching import OrderError, OrderRequest

_REQUIRED = ("salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signatureType",
             "timestamp", "signature")


def parse_post(payload: Any, key: ApiKey, check: Callable[[dict[str, Any]], str]) -> OrderRequest:
    """One ``{order, owner, orderType, postOnly, ...}`` element -> OrderRequest (or OrderError).
    ``check``: the venue's signature rules (signatures.OrderSigners), returning the order id."""
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
    order_id = check(order)
    # the rules (rules.py) judge the signed amounts themselves; price and size are what they mean
    shares, cash = (taker_amt, maker_amt) if side == "BUY" else (maker_amt, taker_amt)
    return OrderRequest(
        order_id=order_id, token_id=str(order["tokenId"]), side=side, price=cash / shares, size=shares / 1e6,
        owner=key.key, maker=str(order["maker"]).lower(), order_type=str(payload.get("orderType") or "GTC").upper(),
        post_only=bool(payload.get("postOnly", False)), expiration=expiration, maker_amount=maker_amt,
        taker_amount=taker_amt,
    )

