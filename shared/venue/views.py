"""What the venue reports about the account's orders and trades, as the venue room hands it on:
the SDK's models reduced to what callers use (docs/venue.md P6, T1)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from polymarket.models import ClobTrade, OpenOrder


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as the venue now reports it."""

    order_id: str
    asset_id: str
    side: str
    status: str  # LIVE | MATCHED | CANCELED ... (upper case, as the venue writes it)
    price: float
    original_size: float
    size_matched: float
    trade_ids: tuple[str, ...] = ()  # the venue trades it matched in (``associate_trades``), at placement or later

    @property
    def live(self) -> bool:
        return self.status.upper() == "LIVE"


@dataclass(frozen=True, slots=True)
class TradeView:
    """One of the account's trades, with its settlement status (docs/venue.md T1). ``side``,
    ``price`` and ``size`` are the trade's (for a maker trade: the taker's side); ``mine`` is our
    part of it: our side, price and matched shares (a maker trade: our entries of ``maker_orders``)."""

    trade_id: str
    asset_id: str
    side: str
    price: float
    size: float
    status: str  # MATCHED | MINED | CONFIRMED | RETRYING | FAILED ...
    trader_side: str  # TAKER | MAKER
    order_ids: tuple[str, ...]  # our order(s) in it: the taker order, or our maker orders
    transaction_hash: str | None
    mine: tuple[str, float, float] | None = None  # (our side, our price, our shares); None: the trade's own
    matched_ms: int = 0  # when the venue matched it (``match_time``); 0: not known

    @property
    def our_side(self) -> str:
        return self.mine[0] if self.mine else self.side

    @property
    def our_price(self) -> float:
        return self.mine[1] if self.mine else self.price

    @property
    def our_size(self) -> float:
        return self.mine[2] if self.mine else self.size


def order_view(o: OpenOrder) -> OrderView:
    return OrderView(str(o.id), str(o.asset_id), str(o.side), str(o.status).upper(), float(o.price),
                     float(o.original_size), float(o.size_matched), tuple(o.associate_trades))


def trade_view(t: ClobTrade, wallet: str) -> TradeView:
    if t.trader_side == "TAKER":
        ours: tuple[str, ...] = (t.taker_order_id,)
        mine = None
    else:
        makers = [m for m in t.maker_orders if m.maker_address.lower() == wallet]
        ours = tuple(m.order_id for m in makers)
        shares = sum((m.matched_amount for m in makers), Decimal(0))
        price = sum((m.matched_amount * m.price for m in makers), Decimal(0)) / shares if shares > 0 else t.price
        mine = (str(makers[0].side), float(price), float(shares)) if makers else None
    return TradeView(str(t.id), str(t.asset_id), str(t.side), float(t.price), float(t.size), str(t.status),
                     str(t.trader_side), ours, t.transaction_hash, mine, int(t.matched_at.timestamp() * 1000))
