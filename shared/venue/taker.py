"""Marketable (FOK / FAK) limit orders through py-clob-client-v2, off the event loop.

Shared so any service that takes liquidity (the arbitrage executor today) signs and posts orders
the same way: ``OrderArgs`` with the market's tick and neg-risk flag passed in (no per-token
lookups on the hot path; a neg-risk market is signed for the Neg Risk exchange), the reply's
making/taking amounts turned into shares and average price. The SDK is synchronous, so each call
runs in a thread.

An error the venue answered (4xx, an ``errorMsg``) means nothing was filled; a transport error or
5xx is *ambiguous* -- the order may have filled -- and the caller must find out before trading on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from py_clob_client_v2 import AssetType, BalanceAllowanceParams, OrderArgs, PartialCreateOrderOptions
from py_clob_client_v2.exceptions import PolyApiException, PolyException

Side = Literal["BUY", "SELL"]
UNITS = 1_000_000  # 6-decimal integer amounts and balances


@dataclass(frozen=True, slots=True)
class TakeResult:
    ok: bool
    filled: float = 0.0  # shares
    avg_price: float = 0.0
    order_id: str = ""
    error: str = ""
    ambiguous: bool = False


def tick_literal(tick: float) -> str:
    return f"{tick:.6f}".rstrip("0").rstrip(".")


def shares_and_price(side: Side, reply: dict[str, Any]) -> tuple[float, float]:
    """BUY: making = collateral, taking = shares; SELL: the reverse."""
    try:
        making, taking = float(reply.get("makingAmount") or 0), float(reply.get("takingAmount") or 0)
    except (TypeError, ValueError):
        return 0.0, 0.0
    shares, cash = (taking, making) if side == "BUY" else (making, taking)
    return shares, (cash / shares if shares > 0 else 0.0)


class TakerOrders:
    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def address(self) -> str:
        """The funder (the order maker): who holds the cash and the positions."""
        funder = getattr(getattr(self.client, "builder", None), "funder", None)
        return str(funder or self.client.get_address()).lower()

    async def take(self, token_id: str, side: Side, price: float, size: float, tick: float, neg_risk: bool,
                   order_type: Literal["FOK", "FAK"] = "FOK") -> TakeResult:
        def call() -> Any:
            signed = self.client.create_order(OrderArgs(token_id=token_id, price=price, size=size, side=side),
                                              PartialCreateOrderOptions(tick_size=tick_literal(tick),
                                                                        neg_risk=neg_risk))
            return self.client.post_order(signed, order_type)

        try:
            reply = await asyncio.to_thread(call)
        except PolyApiException as exc:
            status = exc.status_code
            text = str(exc.error_msg.get("error", exc.error_msg) if isinstance(exc.error_msg, dict) else exc.error_msg)
            return TakeResult(False, error=text, ambiguous=status is None or status >= 500)
        except PolyException as exc:  # refused client-side: nothing was sent
            return TakeResult(False, error=str(exc.msg))
        if not isinstance(reply, dict) or not reply.get("success", False):
            return TakeResult(False, error=str(reply.get("errorMsg") if isinstance(reply, dict) else reply))
        shares, avg = shares_and_price(side, reply)
        return TakeResult(True, shares, avg, str(reply.get("orderID", "")))

    async def balance(self, token_id: str) -> float:
        reply = await asyncio.to_thread(self.client.get_balance_allowance,
                                        BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token_id))
        return float(reply.get("balance", 0) or 0) / UNITS
