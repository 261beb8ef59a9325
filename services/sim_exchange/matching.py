"""Our orders against the crowd books, and the sim accounts (pure: no I/O, clock injected).

* A marketable order walks the opposite crowd levels (best first, each fill at the level's price,
  as TAKER), consuming them. GTC/GTD rest the remainder; FAK cancels it; FOK is all-or-nothing.
* A resting order fills as MAKER, at its own price, when the crowd book crosses it (:meth:`sweep`).
* Accounts: one per maker address, created on first sight with ``starting_cash``; open BUY orders
  reserve cash and open SELL orders reserve shares.
* Only the crowd is matched against: two of our orders never trade with each other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from services.sim_exchange.market import MarketSim, TokenBook, consume, on_tick, px

RESTING_TYPES = ("GTC", "GTD")
EPS = 1e-9


class OrderError(Exception):
    """An order was refused; ``str(exc)`` is the exchange's error text."""


@dataclass
class Fill:
    price: float
    size: float
    ts: float
    role: str  # TAKER | MAKER
    fee: float = 0.0
    trade_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tx_hash: str = field(default_factory=lambda: "0x" + uuid.uuid4().hex + uuid.uuid4().hex)


@dataclass
class Order:
    id: str
    token_id: str
    condition_id: str
    outcome: str
    side: str
    price: float
    size: float
    owner: str
    maker_address: str
    order_type: str
    created_at: float
    expiration: int = 0
    post_only: bool = False
    size_matched: float = 0.0
    status: str = "LIVE"
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return px(self.size - self.size_matched)


@dataclass
class OrderRequest:
    order_id: str
    token_id: str
    side: str
    price: float
    size: float
    owner: str
    maker: str
    order_type: str = "GTC"
    post_only: bool = False
    expiration: int = 0


@dataclass
class Account:
    address: str
    cash: float
    positions: dict[str, float] = field(default_factory=dict)


def taker_fee(size: float, price: float, rate: float, exponent: float) -> float:
    """Polymarket's taker fee: ``C * rate * (p(1-p))^exponent``, rounded to 5 decimals."""
    if rate <= 0:
        return 0.0
    return round(float(size * rate * (price * (1 - price)) ** exponent), 5)


class Matcher:
    def __init__(self, sim: MarketSim, starting_cash: float, now: Callable[[], float] = time.time) -> None:
        self.sim = sim
        self.starting_cash = starting_cash
        self.now = now
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.trades: list[tuple[Order, Fill]] = []

    def reset(self) -> None:
        self.accounts.clear()
        self.orders.clear()
        self.trades.clear()

    # ---- accounts -------------------------------------------------------------------------------
    def account(self, address: str) -> Account:
        key = address.lower()
        if key not in self.accounts:
            self.accounts[key] = Account(key, self.starting_cash)
        return self.accounts[key]

    def open_orders(self, token_id: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.status == "LIVE" and (token_id is None or o.token_id == token_id)]

    def available_cash(self, acct: Account) -> float:
        reserved = sum(o.remaining * o.price for o in self.open_orders()
                       if o.side == "BUY" and o.maker_address == acct.address)
        return acct.cash - reserved

    def available_shares(self, acct: Account, token_id: str) -> float:
        reserved = sum(o.remaining for o in self.open_orders(token_id)
                       if o.side == "SELL" and o.maker_address == acct.address)
        return acct.positions.get(token_id, 0.0) - reserved

    # ---- books ----------------------------------------------------------------------------------
    def displayed(self, token_id: str) -> tuple[dict[float, float], dict[float, float]]:
        """The public book: crowd levels plus our resting orders, aggregated by price."""
        book = self.sim.by_token[token_id]
        bids, asks = dict(book.bids), dict(book.asks)
        for o in self.open_orders(token_id):
            side = bids if o.side == "BUY" else asks
            side[o.price] = px(side.get(o.price, 0.0) + o.remaining)
        return bids, asks

    @staticmethod
    def crossing(book: TokenBook, side: str, limit: float) -> list[tuple[float, float]]:
        """Crowd levels a ``side`` order at ``limit`` would take, best first."""
        if side == "BUY":
            return sorted((p, s) for p, s in book.asks.items() if p <= limit + EPS and s > 0)
        return sorted(((p, s) for p, s in book.bids.items() if p >= limit - EPS and s > 0), reverse=True)

    # ---- orders ---------------------------------------------------------------------------------
    def validate(self, req: OrderRequest) -> TokenBook:
        if req.order_id in self.orders:
            raise OrderError(f"order {req.order_id} is invalid. Duplicated.")
        book = self.sim.token(req.token_id)
        if book is None:
            raise OrderError(f"Invalid order payload: unknown token id {req.token_id}")
        if req.side not in ("BUY", "SELL"):
            raise OrderError("Invalid order payload: side must be BUY or SELL")
        if req.order_type not in ("GTC", "GTD", "FOK", "FAK"):
            raise OrderError(f"Invalid order payload: unknown orderType {req.order_type}")
        tick = book.tick
        if not on_tick(req.price, tick) or not (tick - EPS <= req.price <= 1 - tick + EPS):
            raise OrderError(f"order {req.order_id} is invalid. Price ({req.price:g}) breaks minimum tick size rule: "
                             f"{tick:g}")
        if req.size <= 0:
            raise OrderError(f"order {req.order_id} is invalid. Size ({req.size:g}) lower than the minimum: "
                             f"{book.min_size:g}")
        if req.post_only and req.order_type not in RESTING_TYPES:
            raise OrderError("invalid post-only order: post-only orders must be GTC or GTD")
        return book

    def place(self, req: OrderRequest) -> tuple[Order, list[Fill]]:
        """Validate, match and (maybe) rest an order. Raises :class:`OrderError` with the venue's text."""
        book = self.validate(req)
        levels = self.crossing(book, req.side, req.price)
        available = sum(s for _, s in levels)
        if req.post_only and levels:
            raise OrderError("invalid post-only order: order crosses book")
        if levels:
            notional = req.price * req.size
            if notional < 1 - EPS:
                raise OrderError(f"invalid amount for a marketable {req.side} order (${notional:.2f}), min size: $1")
        elif req.size < book.min_size - EPS and req.order_type in RESTING_TYPES:
            raise OrderError(f"order {req.order_id} is invalid. Size ({req.size:g}) lower than the minimum: "
                             f"{book.min_size:g}")
        acct = self.account(req.maker)
        market = self.sim.market_of[req.token_id]
        if req.side == "BUY":
            worst_fee = taker_fee(req.size, req.price, market.fee_rate, market.fee_exponent)
            if req.price * req.size + worst_fee > self.available_cash(acct) + EPS:
                raise OrderError("not enough balance / allowance")
        elif req.size > self.available_shares(acct, req.token_id) + EPS:
            raise OrderError("not enough balance / allowance")
        if req.order_type == "FOK" and available < req.size - EPS:
            raise OrderError("order couldn't be fully filled. FOK orders are fully filled or killed.")
        if req.order_type == "FAK" and not levels:
            raise OrderError("no orders found to match with FAK order. "
                             "FAK orders are partially filled or killed if no match is found.")
        order = Order(req.order_id, req.token_id, book.condition_id, book.outcome, req.side, req.price, req.size,
                      req.owner, acct.address, req.order_type, self.now(), req.expiration, req.post_only)
        self.orders[order.id] = order
        fills: list[Fill] = []
        for price, size in levels:
            take = min(size, order.remaining)
            if take <= EPS:
                break
            fee = taker_fee(take, price, market.fee_rate, market.fee_exponent)
            fills.append(self._fill(order, book, price, take, "TAKER", fee))
            consume(book.asks if req.side == "BUY" else book.bids, price, take)
        if order.remaining <= EPS:
            order.status = "MATCHED"
        elif req.order_type not in RESTING_TYPES:
            order.status = "MATCHED" if order.size_matched > 0 else "CANCELED"
        return order, fills

    def _fill(self, order: Order, book: TokenBook, price: float, size: float, role: str, fee: float) -> Fill:
        fill = Fill(px(price), px(size), self.now(), role, fee)
        order.fills.append(fill)
        order.size_matched = px(order.size_matched + size)
        acct = self.account(order.maker_address)
        pos = acct.positions.get(order.token_id, 0.0)
        if order.side == "BUY":
            acct.cash = round(acct.cash - price * size - fee, 6)
            acct.positions[order.token_id] = px(pos + size)
        else:
            acct.cash = round(acct.cash + price * size - fee, 6)
            acct.positions[order.token_id] = px(pos - size)
        if order.remaining <= EPS:
            order.status = "MATCHED"
        book.last_trade_price, book.last_trade_side = px(price), order.side if role == "TAKER" else _other(order.side)
        self.sim.market_of[order.token_id].volume += price * size
        self.trades.append((order, fill))
        return fill

    def sweep(self, token_id: str) -> list[tuple[Order, Fill]]:
        """Fill our resting orders the crowd book now crosses (as maker, at the order's price)."""
        book = self.sim.by_token[token_id]
        out: list[tuple[Order, Fill]] = []
        for order in self.open_orders(token_id):
            for price, size in self.crossing(book, order.side, order.price):
                take = min(size, order.remaining)
                if take <= EPS:
                    break
                out.append((order, self._fill(order, book, order.price, take, "MAKER", 0.0)))
                consume(book.asks if order.side == "BUY" else book.bids, price, take)
        return out

    def cancel(self, order_id: str, maker: str | None = None) -> str | None:
        """Cancel a LIVE order; returns None when canceled, else the reason it was not."""
        order = self.orders.get(order_id)
        if order is None or (maker is not None and order.maker_address != maker.lower()):
            return "order not found"
        if order.status != "LIVE":
            return "order already canceled or matched" if order.status == "CANCELED" else "order already matched"
        order.status = "CANCELED"
        return None

    def expire(self) -> list[Order]:
        """Cancel GTD orders whose expiration (seconds) has passed."""
        now = self.now()
        gone = [o for o in self.open_orders() if o.order_type == "GTD" and 0 < o.expiration <= now]
        for o in gone:
            o.status = "CANCELED"
        return gone


def _other(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"
