"""Marketable (FOK / FAK) orders for a service that takes liquidity (the arbitrage executor).

On the venue room's order side (:class:`~shared.venue.orders.VenueOrders`): amounts within the
venue's precision for marketable orders (maker 2 decimals, taker 4, whatever the tick:
docs/venue.md P3; shared/venue/amounts.py), signed by the SDK for the outcome's market system (a
v1 neg-risk market for the neg-risk exchange, a v2 market for ExchangeV3), and the answer reduced
to what the taker needs: shares filled and their average price.

A refusal (the venue said no, the amounts cannot be expressed, throttled) means nothing was
filled; an *ambiguous* answer (no answer, a 5xx after the send) means the order may have filled,
and the caller must find out before trading on.

A fill is only matched: its trades settle later, or fail (docs/venue.md T1-T3). ``trade_ids``
names them, and :meth:`TakerOrders.trades` reads their status from the venue's trades endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.venue.errors import VenueAmbiguous, VenueError
from shared.venue.ids import MarketSystem, OutcomeId
from shared.venue.orders import OrderMarket, VenueOrders
from shared.venue.views import TradeView

Side = Literal["BUY", "SELL"]


@dataclass(frozen=True, slots=True)
class TakeResult:
    ok: bool
    filled: float = 0.0  # shares
    avg_price: float = 0.0
    order_id: str = ""
    error: str = ""
    ambiguous: bool = False
    trade_ids: tuple[str, ...] = ()  # the venue trades of the fill (the order's answer names them)


class TakerOrders:
    def __init__(self, orders: VenueOrders) -> None:
        self.orders = orders

    @property
    def address(self) -> str:
        """The wallet (the order maker): who holds the cash and the positions."""
        return self.orders.account.wallet.lower()

    async def take(self, token_id: str, side: Side, price: float, size: float, tick: float, neg_risk: bool,
                   order_type: Literal["FOK", "FAK"] = "FOK", system: MarketSystem = "v1",
                   min_size: float = 5.0) -> TakeResult:
        """``size`` shares at limit ``price`` or better, now: a BUY spends at most size x price, a
        SELL never sells more than ``size``."""
        market = OrderMarket(OutcomeId(token_id, system), neg_risk, min_size)
        try:
            ack = await self.orders.place_marketable(market, side, price, size, tick, order_type=order_type,
                                                     held=size if side == "SELL" else None)
        except VenueAmbiguous as exc:
            return TakeResult(False, order_id=exc.order_id, error=str(exc), ambiguous=True)
        except VenueError as exc:  # rejected, refused before signing, throttled, not sent: nothing filled
            return TakeResult(False, error=str(exc))
        return TakeResult(True, ack.shares, ack.avg_price, ack.order_id, trade_ids=ack.trade_ids)

    async def trades(self, trade_ids: Iterable[str]) -> dict[str, TradeView | None]:
        """Each trade as the venue reports it now (None: not listed yet, or unread this time)."""
        return await self.orders.trades_by_id(trade_ids)
