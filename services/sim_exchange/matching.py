"""Our orders against the crowd books, and the sim accounts (pure: no I/O, clock injected).

* Every order passes the venue's rules first (:mod:`rules`: amounts, tick, minimum size,
  post-only, balance), with the venue's texts.
* A marketable order walks the opposite crowd levels (best first, each fill at the level's price,
  as TAKER), consuming them. GTC/GTD rest the remainder; FAK cancels it; FOK is all-or-nothing.
  In a delayed market (``seconds_delay``) a marketable order waits ``DELAYED`` and is matched later
  (:meth:`release_delayed`), as the venue does in sports markets.
* A resting order fills as MAKER, at its own price, when the crowd book crosses it (:meth:`sweep`).
* Every fill is a trade that settles later (:mod:`settlement`): balances move when it is
  CONFIRMED; until then it holds the buyer's collateral and the seller's shares, and a FAILED
  trade moves nothing. With no lag a trade settles before :meth:`place` returns.
* Accounts: one per maker address, created on first sight with ``starting_cash``; open BUY orders
  reserve cash and open SELL orders reserve shares.
* Only the crowd is matched against: two of our orders never trade with each other.
* What changed for the outside (status changes of trades, cancellations) is queued in
  ``settled`` and ``cancelled`` for whoever publishes it (the user channel).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from services.sim_exchange import rules
from services.sim_exchange.market import MarketSim, TokenBook, consume, px
from services.sim_exchange.rules import MARKET_TYPES, ORDER_TYPES, RESTING_TYPES, Amounts, OrderError, units
from services.sim_exchange.settlement import CONFIRMED, MATCHED, Settlement, Transition
from shared.venue.fees import FeeSchedule

__all__ = ["EPS", "RESTING_TYPES", "Account", "Fill", "Matcher", "Order", "OrderError", "OrderRequest", "taker_fee"]

EPS = 1e-9
WORKING = ("LIVE", "DELAYED")  # statuses that hold balance and can be cancelled


@dataclass
class Fill:
    price: float
    size: float
    ts: float
    role: str  # TAKER | MAKER
    fee: float = 0.0
    trade_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tx_hash: str = field(default_factory=lambda: "0x" + uuid.uuid4().hex + uuid.uuid4().hex)
    status: str = MATCHED  # settlement.MATCHED ... CONFIRMED | FAILED
    updated: float = 0.0  # when the status last changed


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
    status: str = "LIVE"  # LIVE | DELAYED | MATCHED | CANCELED
    fills: list[Fill] = field(default_factory=list)
    cancel_reason: str = ""  # user | heartbeat_expired | restart | expired | market_resolved | unmatched
    due_at: float = 0.0  # DELAYED: when it is matched

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
    maker_amount: int = 0  # the signed amounts in base units (0: derived from price and size)
    taker_amount: int = 0

    def amounts(self) -> Amounts:
        if self.maker_amount > 0 and self.taker_amount > 0:
            return Amounts(self.side, self.maker_amount, self.taker_amount)
        shares, cash = units(self.size), units(self.price * self.size)
        return Amounts(self.side, cash, shares) if self.side == "BUY" else Amounts(self.side, shares, cash)


@dataclass
class Account:
    address: str
    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    # what the account allowed the exchanges to move, per asset type (COLLATERAL for BUYs,
    # CONDITIONAL for SELLs), in base units; unset = unlimited, as a sim account starts set up
    allowances: dict[str, int] = field(default_factory=dict)

    def allowance(self, side: str) -> int | None:
        return self.allowances.get("COLLATERAL" if side == "BUY" else "CONDITIONAL")


def taker_fee(size: float, price: float, rate: float, exponent: float) -> float:
    """Polymarket's taker fee (docs/venue.md F1), the same formula the worker books fills by."""
    return FeeSchedule(rate, exponent).fee(size, price)


class Matcher:
    def __init__(self, sim: MarketSim, starting_cash: float, now: Callable[[], float] = time.time,
                 settle_lag_s: float = 0.0, settle_fail_share: float = 0.0, seed: int = 0) -> None:
        self.sim = sim
        self.starting_cash = starting_cash
        self.now = now
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.trades: list[tuple[Order, Fill]] = []
        self.settlement: Settlement[tuple[Order, Fill]] = Settlement(settle_lag_s, settle_fail_share, seed)
        self.halted: Callable[[], bool] = lambda: False  # the engine is restarting: nothing matches
        self.delayed: list[Order] = []  # DELAYED orders, oldest first (the timer looks at these only)
        self.settled: list[Transition[tuple[Order, Fill]]] = []  # status changes not yet published
        self.cancelled: list[Order] = []  # cancellations not yet published

    # ---- accounts -------------------------------------------------------------------------------
    def account(self, address: str) -> Account:
        key = address.lower()
        if key not in self.accounts:
            self.accounts[key] = Account(key, self.starting_cash)
        return self.accounts[key]

    def open_orders(self, token_id: str | None = None) -> list[Order]:
        """LIVE orders (in the book)."""
        return [o for o in self.orders.values() if o.status == "LIVE" and (token_id is None or o.token_id == token_id)]

    def working_orders(self) -> list[Order]:
        """LIVE and DELAYED orders: they hold balance and can be cancelled."""
        return [o for o in self.orders.values() if o.status in WORKING]

    def reserved_cash(self, acct: Account) -> float:
        """Collateral held by open BUY orders and by BUY trades not settled yet."""
        held = sum(o.remaining * o.price for o in self.working_orders()
                   if o.side == "BUY" and o.maker_address == acct.address)
        return held + sum(f.price * f.size + f.fee for o, f in self.settlement.unsettled()
                          if o.side == "BUY" and o.maker_address == acct.address)

    def reserved_shares(self, acct: Account, token_id: str) -> float:
        """Shares held by open SELL orders and by SELL trades not settled yet."""
        held = sum(o.remaining for o in self.working_orders()
                   if o.side == "SELL" and o.token_id == token_id and o.maker_address == acct.address)
        return held + sum(f.size for o, f in self.settlement.unsettled()
                          if o.side == "SELL" and o.token_id == token_id and o.maker_address == acct.address)

    def available_cash(self, acct: Account) -> float:
        return acct.cash - self.reserved_cash(acct)

    def available_shares(self, acct: Account, token_id: str) -> float:
        return acct.positions.get(token_id, 0.0) - self.reserved_shares(acct, token_id)

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
    def validate(self, req: OrderRequest) -> tuple[TokenBook, Amounts, Fraction]:
        """The rules that need no book or account: (book, amounts, limit price)."""
        if req.order_id in self.orders:
            raise OrderError(f"order {req.order_id} is invalid. Duplicated.")
        book = self.sim.token(req.token_id)
        if book is None:
            raise OrderError(f"Invalid order payload: unknown token id {req.token_id}")
        if req.side not in ("BUY", "SELL"):
            raise OrderError("Invalid order payload: side must be BUY or SELL")
        if req.order_type not in ORDER_TYPES:
            raise OrderError(f"Invalid order payload: unknown orderType {req.order_type}")
        amounts = req.amounts()
        if amounts.shares <= 0:
            raise OrderError(f"order {req.order_id} is invalid. Size (0) lower than the minimum: "
                             f"{rules.show(book.min_size)}")
        rules.check_precision(req.order_type, amounts, book.tick)
        price = rules.check_price(req.order_id, req.order_type, amounts, book.tick)
        rules.check_expiration(req.order_type, req.expiration, self.now())
        return book, amounts, price

    def _check_funds(self, acct: Account, req: OrderRequest, amounts: Amounts, price: float) -> None:
        market = self.sim.market_of[req.token_id]
        if req.side == "BUY":
            worst_fee = taker_fee(float(amounts.size), price, market.fee_rate, market.fee_exponent)
            need, balance, reserved = amounts.collateral + units(worst_fee), acct.cash, self.reserved_cash(acct)
        else:
            need = amounts.shares
            balance, reserved = acct.positions.get(req.token_id, 0.0), self.reserved_shares(acct, req.token_id)
        rules.check_balance(req.side, units(balance), units(reserved), need)
        allowance = acct.allowance(req.side)
        if allowance is not None:
            rules.check_allowance(allowance, need)

    def place(self, req: OrderRequest) -> tuple[Order, list[Fill]]:
        """Validate, match and (maybe) rest an order. Raises :class:`OrderError` with the venue's text."""
        book, amounts, exact = self.validate(req)
        price = float(exact) if req.order_type in MARKET_TYPES else px(float(exact))
        levels = self.crossing(book, req.side, price)
        rules.check_post_only(req.order_type, req.post_only, bool(levels))
        rules.check_min_size(req.order_id, req.order_type, amounts, book.min_size, bool(levels))
        acct = self.account(req.maker)
        self._check_funds(acct, req, amounts, price)
        size = float(amounts.size)
        marketable = bool(levels) or req.order_type in MARKET_TYPES
        delay = self.sim.market_of[req.token_id].seconds_delay
        if not (marketable and delay > 0):
            if req.order_type == "FOK" and sum(s for _, s in levels) < size - EPS:
                raise OrderError("order couldn't be fully filled. FOK orders are fully filled or killed.")
            if req.order_type == "FAK" and not levels:
                raise OrderError("no orders found to match with FAK order. "
                                 "FAK orders are partially filled or killed if no match is found.")
        order = Order(req.order_id, req.token_id, book.condition_id, book.outcome, req.side, price, size,
                      req.owner, acct.address, req.order_type, self.now(), req.expiration, req.post_only)
        self.orders[order.id] = order
        if marketable and delay > 0:
            order.status, order.due_at = "DELAYED", self.now() + delay
            self.delayed.append(order)
            return order, []
        fills = self._take(order, book, levels)
        self._settle_if_instant()
        return order, fills

    def _take(self, order: Order, book: TokenBook, levels: list[tuple[float, float]]) -> list[Fill]:
        """Walk ``levels`` as taker, then settle the order's status (rest, matched, or killed)."""
        market = self.sim.market_of[order.token_id]
        fills: list[Fill] = []
        for price, size in levels:
            take = min(size, order.remaining)
            if take <= EPS:
                break
            fee = taker_fee(take, price, market.fee_rate, market.fee_exponent)
            fills.append(self._fill(order, book, price, take, "TAKER", fee))
            consume(book.asks if order.side == "BUY" else book.bids, price, take)
        if order.remaining <= EPS:
            order.status = "MATCHED"
        elif order.order_type not in RESTING_TYPES:
            if order.size_matched > 0:
                order.status = "MATCHED"
            else:
                self._cancel(order, "unmatched")
        else:
            order.status = "LIVE"
        return fills

    def release_delayed(self) -> list[Order]:
        """Match the DELAYED orders whose delay is over, against the book as it is now."""
        if not self.delayed or self.halted():
            return []
        now = self.now()
        due = [o for o in self.delayed if o.status == "DELAYED" and o.due_at <= now]
        self.delayed = [o for o in self.delayed if o.status == "DELAYED" and o.due_at > now]
        for order in due:
            book = self.sim.by_token[order.token_id]
            levels = self.crossing(book, order.side, order.price)
            if order.order_type == "FOK" and sum(s for _, s in levels) < order.remaining - EPS:
                self._cancel(order, "unmatched")
                continue
            self._take(order, book, levels)
        self._settle_if_instant()
        return due

    def _fill(self, order: Order, book: TokenBook, price: float, size: float, role: str, fee: float) -> Fill:
        now = self.now()
        fill = Fill(px(price), px(size), now, role, fee, updated=now)
        order.fills.append(fill)
        order.size_matched = px(order.size_matched + size)
        if order.remaining <= EPS:
            order.status = "MATCHED"
        book.last_trade_price, book.last_trade_side = px(price), order.side if role == "TAKER" else _other(order.side)
        self.sim.market_of[order.token_id].volume += price * size
        self.trades.append((order, fill))
        self.settlement.enroll((order, fill), now)
        return fill

    # ---- settlement -----------------------------------------------------------------------------
    def settle(self) -> list[Transition[tuple[Order, Fill]]]:
        """Move every trade whose time has come; a CONFIRMED trade moves the balances."""
        now = self.now()
        moved = self.settlement.advance(now)
        for t in moved:
            order, fill = t.trade
            fill.status, fill.updated = t.status, now
            if t.status == CONFIRMED:
                self._apply(order, fill)
        self.settled.extend(moved)
        return moved

    def _settle_if_instant(self) -> None:
        if self.settlement.lag_s <= 0:
            self.settle()

    def _apply(self, order: Order, fill: Fill) -> None:
        acct = self.account(order.maker_address)
        pos = acct.positions.get(order.token_id, 0.0)
        if order.side == "BUY":
            acct.cash = round(acct.cash - fill.price * fill.size - fill.fee, 6)
            acct.positions[order.token_id] = px(pos + fill.size)
        else:
            acct.cash = round(acct.cash + fill.price * fill.size - fill.fee, 6)
            acct.positions[order.token_id] = px(pos - fill.size)

    def sweep(self, token_id: str) -> list[tuple[Order, Fill]]:
        """Fill our resting orders the crowd book now crosses (as maker, at the order's price)."""
        if self.halted():
            return []
        book = self.sim.by_token[token_id]
        out: list[tuple[Order, Fill]] = []
        for order in self.open_orders(token_id):
            for price, size in self.crossing(book, order.side, order.price):
                take = min(size, order.remaining)
                if take <= EPS:
                    break
                out.append((order, self._fill(order, book, order.price, take, "MAKER", 0.0)))
                consume(book.asks if order.side == "BUY" else book.bids, price, take)
        self._settle_if_instant()
        return out

    # ---- cancels --------------------------------------------------------------------------------
    def _cancel(self, order: Order, reason: str) -> None:
        order.status, order.cancel_reason = "CANCELED", reason
        self.cancelled.append(order)

    def cancel(self, order_id: str, maker: str | None = None, reason: str = "user") -> str | None:
        """Cancel a LIVE or DELAYED order; returns None when canceled, else the reason it was not."""
        order = self.orders.get(order_id)
        if order is None or (maker is not None and order.maker_address != maker.lower()):
            return "order not found"
        if order.status not in WORKING:
            return "order already canceled or matched" if order.status == "CANCELED" else "order already matched"
        self._cancel(order, reason)
        return None

    def cancel_owned(self, owner: str | None, reason: str) -> list[Order]:
        """Cancel every working order of an API key (``None``: of everyone)."""
        gone = [o for o in self.working_orders() if owner is None or o.owner == owner]
        for o in gone:
            self._cancel(o, reason)
        return gone

    def expire(self) -> list[Order]:
        """Cancel GTD orders whose expiration (seconds) has passed."""
        now = self.now()
        gone = [o for o in self.working_orders() if o.order_type == "GTD" and 0 < o.expiration <= now]
        for o in gone:
            self._cancel(o, "expired")
        return gone


def _other(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"
