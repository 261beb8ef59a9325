"""The order side of the venue room: place, cancel and read orders, trades and balances of one
account (:class:`~shared.venue.account.VenueAccount`) through the official SDK.

* Every order is built from amounts computed here (shared/venue/amounts.py: limit orders exact,
  FOK/FAK within 2/4 decimals, the market's minimum checked) and signed by the SDK's own signer
  (shared/venue/sdk_private.py), then posted with ``post_order``. Never ``place_*_order``: on an
  allowance refusal it sends an on-chain approval and waits for it in the middle of a trade
  (sdk-wire.md §4.7); approvals are the doctor's and the setup's business.
* ``may_send`` (the caller's send gate) is asked right before the POST; False raises
  :class:`VenueNotSent` and nothing leaves.
* With a :class:`~shared.venue.rate_budget.RateBudget`, every order and cancel first waits for the
  signer's budget the whole fleet shares (before the send gate, which is asked last), and the
  answer's ``Poly-RateLimit-*`` report and any 429 go back into it under the call's own bucket.
* Every SDK error comes out as a :mod:`shared.venue.errors` class (sdk_errors.py): an ambiguous
  send carries the order's EIP-712 hash (order_hash.py), so the caller asks the venue about that
  very order; ``order {id} is invalid. Duplicated.`` means the venue holds this very order
  (docs/venue.md P6) and counts as placed.
* Positions are read with the outcome's own asset type (``CONDITIONAL`` / ``CONDITIONAL-V2``, V3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeVar

from polymarket.errors import OrderHeartbeatMismatchError, RequestRejectedError, UnexpectedResponseError
from polymarket.models import AcceptedOrder, ClobTrade, OpenOrder, RejectedOrder
from polymarket.models.clob.orders import SignedOrder

from shared.venue.account import VenueAccount
from shared.venue.amounts import UNITS, OrderAmounts, check_minimum, limit_amounts, marketable_amounts
from shared.venue.errors import VenueError, VenueNotSent, VenueRejected, VenueUnavailable
from shared.venue.fees import FeeSchedule
from shared.venue.ids import OutcomeId
from shared.venue.order_hash import exchange_domain, order_hash
from shared.venue.rate_budget import CANCELS, ORDERS, Bucket, RateBudget, metered
from shared.venue.sdk_errors import VENUE_FAILURES, venue_error
from shared.venue.sdk_private import draft, order_json, platform_fees, sign
from shared.venue.views import OrderView, TradeView, order_view, trade_view

Side = Literal["BUY", "SELL"]
Marketable = Literal["FOK", "FAK"]
SendGate = Callable[[], bool]
DUPLICATED = "Duplicated"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderMarket:
    """What an order needs of its market: the outcome (with its system), whether it is neg-risk
    (a v1 neg-risk market is signed for the neg-risk exchange), and its minimum order size."""

    outcome: OutcomeId
    neg_risk: bool = False
    min_size: float = 5.0


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """The venue's own view of an outcome's market (its REST book)."""

    neg_risk: bool
    tick_size: float
    min_size: float


@dataclass(frozen=True, slots=True)
class OrderAck:
    """An order the venue accepted (``live``, ``matched`` or ``delayed``), with what filled at once."""

    order_id: str
    status: str
    shares: float = 0.0  # filled at placement
    avg_price: float = 0.0
    trade_ids: tuple[str, ...] = ()
    note: str = ""  # the venue's text when the acceptance was a "Duplicated" answer


def fill_of(side: Side, making: Decimal, taking: Decimal) -> tuple[float, float]:
    """(shares, average price) from an answer's making/taking amounts. BUY: making = collateral,
    taking = shares; SELL the reverse."""
    shares, cash = (taking, making) if side == "BUY" else (making, taking)
    return float(shares), (float(cash / shares) if shares > 0 else 0.0)


def order_amounts(market: OrderMarket, side: Side, price: float, size: float | None, tick_size: float,
                  order_type: str, *, budget: float | None = None, held: float | None = None) -> OrderAmounts:
    """The amounts of one order, checked against the market's minimum (nothing is sent when they are
    refused): GTC/GTD exact limit amounts, FOK/FAK within 2/4 decimals (amounts.py)."""
    if order_type in ("GTC", "GTD"):
        if size is None:
            raise VenueRejected("a limit order needs a size")
        amounts = limit_amounts(side, price, size, tick_size)
    else:
        amounts = marketable_amounts(side, price, size, tick_size, budget=budget, held=held)
    check_minimum(amounts, order_type, market.min_size)
    return amounts


class VenueOrders:
    def __init__(self, account: VenueAccount, budget: RateBudget | None = None) -> None:
        self.account = account
        self.client = account.client
        self.budget = budget  # the signer's fleet-wide rate budget (None: the venue's 429s only)

    def metered(self, bucket: Bucket) -> AbstractAsyncContextManager[None]:
        return metered(self.budget, self.account.rate, bucket)

    # --- placing ---------------------------------------------------------------------------------

    async def place_limit(self, market: OrderMarket, side: Side, price: float, size: float, tick_size: float, *,
                          post_only: bool = False, may_send: SendGate | None = None) -> OrderAck:
        """A GTC order of ``size`` shares at ``price`` (on the tick grid), optionally post-only."""
        amounts = order_amounts(market, side, price, size, tick_size, "GTC")
        return await self.send(market, amounts, "GTC", post_only, may_send)

    async def place_marketable(self, market: OrderMarket, side: Side, price: float, size: float | None,
                               tick_size: float, *, order_type: Marketable = "FAK", budget: float | None = None,
                               held: float | None = None, may_send: SendGate | None = None) -> OrderAck:
        """A FOK/FAK order at limit ``price``: BUY ``size`` shares spending at most ``budget``
        (default size x price; ``size`` None spends the budget), SELL ``size`` shares but never
        more than ``held``. Amounts within the venue's precision (amounts.py)."""
        amounts = order_amounts(market, side, price, size, tick_size, order_type, budget=budget, held=held)
        return await self.send(market, amounts, order_type, False, may_send)

    async def sign(self, market: OrderMarket, amounts: OrderAmounts, order_type: str,
                   post_only: bool = False) -> SignedOrder:
        exchange, _ = exchange_domain(self.account.env, market.outcome.system, market.neg_risk)
        unsigned = draft(self.client, asset_id=market.outcome.value, side=amounts.side, maker=amounts.maker,
                         taker=amounts.taker, order_type=order_type,  # type: ignore[arg-type]
                         exchange=exchange, chain_id=self.account.env.chain_id)
        try:
            return await sign(self.client, unsigned, post_only)
        except VENUE_FAILURES as exc:  # SigningError: nothing was sent
            raise venue_error(exc, sent=False, what="signing") from exc

    async def send(self, market: OrderMarket, amounts: OrderAmounts, order_type: str, post_only: bool = False,
                   may_send: SendGate | None = None) -> OrderAck:
        signed = await self.sign(market, amounts, order_type, post_only)
        return await self.post(market, signed, may_send)

    async def post(self, market: OrderMarket, signed: SignedOrder, may_send: SendGate | None = None) -> OrderAck:
        """POST one signed order (the rate budget waited for, then the send gate asked)."""
        async with self.metered(ORDERS):
            if may_send is not None and not may_send():
                raise VenueNotSent()
            try:
                answer = await self.client.post_order(signed)
            except RequestRejectedError as exc:
                if DUPLICATED in str(exc):
                    return OrderAck(self.order_id(market, signed), "live", note=str(exc))
                raise self._throttled(venue_error(exc, sent=True, order_id=self.order_id(market, signed),
                                                  what="POST /order")) from exc
            except VENUE_FAILURES as exc:
                raise self._throttled(venue_error(exc, sent=True, order_id=self.order_id(market, signed),
                                                  what="POST /order")) from exc
        if isinstance(answer, RejectedOrder):
            if DUPLICATED in answer.message:
                return OrderAck(self.order_id(market, signed), "live", note=answer.message)
            if answer.code == "post_only_mode":
                raise VenueUnavailable(answer.message, restriction="post_only")
            raise VenueRejected(answer.message)
        assert isinstance(answer, AcceptedOrder)
        shares, avg = fill_of(signed.side, answer.making_amount, answer.taking_amount)
        return OrderAck(str(answer.order_id), answer.status, shares, avg, tuple(answer.trade_ids))

    def order_id(self, market: OrderMarket, signed: SignedOrder) -> str:
        """The id the venue keys ``signed`` by (its EIP-712 hash), computed here."""
        exchange, version = exchange_domain(self.account.env, market.outcome.system, market.neg_risk)
        return order_hash(order_json(signed), exchange=exchange, version=version, chain_id=self.account.env.chain_id)

    def _throttled(self, err: VenueError) -> VenueError:
        if isinstance(err, VenueUnavailable) and err.status == 429:
            self.account.rate.on_throttled(err.retry_after)
        return err

    # --- cancels -------------------------------------------------------------------------------

    async def cancel(self, order_id: str) -> bool:
        """Cancel one order; True when the venue says it cancelled it."""
        async with self.metered(CANCELS):
            answer = await self._call(lambda: self.client.cancel_order(order_id=order_id), sent=True,
                                      what="DELETE /order")
        return order_id in answer.canceled

    async def cancel_outcome(self, outcome: OutcomeId) -> tuple[str, ...]:
        """Cancel every open order of this account on one outcome; the ids cancelled (it costs 1 +
        the orders cancelled: the budget is asked for 1, the venue's report says the rest)."""
        async with self.metered(CANCELS):
            answer = await self._call(lambda: self.client.cancel_market_orders(asset_id=outcome.value), sent=True,
                                      what="DELETE /cancel-market-orders")
        return tuple(answer.canceled)

    # --- reads -----------------------------------------------------------------------------------

    async def market_info(self, outcome: OutcomeId) -> MarketInfo:
        """neg-risk, tick and minimum size of the outcome's market, from its REST book (one read)."""
        book = await self._call(lambda: self.client.get_order_book(asset_id=outcome.value), what="GET /book")
        return MarketInfo(bool(book.neg_risk), float(book.tick_size), float(book.min_order_size))

    async def fee_schedule(self, condition_id: str) -> FeeSchedule:
        """The market's taker fee (``/clob-markets`` ``fd``, docs/venue.md F1), for a token whose
        signal did not carry Gamma's ``feeSchedule``."""
        rate, exponent = await self._call(lambda: platform_fees(self.client, condition_id),
                                          what="GET /clob-markets")
        return FeeSchedule(rate, exponent if exponent > 0 else 1.0)

    async def open_orders(self, outcome: OutcomeId) -> list[OrderView]:
        async def read() -> list[OpenOrder]:
            return [o async for o in self.client.list_open_orders(asset_id=outcome.value).iter_items()]
        return [order_view(o) for o in await self._call(read, what="GET /data/orders")]

    async def order(self, order_id: str) -> OrderView | None:
        """One order by id (any status); None when the venue does not know it."""
        try:
            return order_view(await self.client.get_order(order_id=order_id))
        except UnexpectedResponseError:  # an unknown id may come back as null (sdk-wire §6.2)
            return None
        except RequestRejectedError as exc:
            if exc.status == 404:
                return None
            raise self._throttled(venue_error(exc, sent=False, what="GET /data/order")) from exc
        except VENUE_FAILURES as exc:
            raise self._throttled(venue_error(exc, sent=False, what="GET /data/order")) from exc

    async def trades(self, outcome: OutcomeId | None = None, trade_id: str | None = None) -> list[TradeView]:
        """The account's trades (on one outcome, or one trade by id), newest first as the venue lists them."""
        async def read() -> list[ClobTrade]:
            rows = self.client.list_account_trades(asset_id=outcome.value if outcome else None, id=trade_id)
            return [t async for t in rows.iter_items()]
        wallet = self.account.wallet.lower()
        return [trade_view(t, wallet) for t in await self._call(read, what="GET /data/trades")]

    async def trades_by_id(self, trade_ids: Iterable[str], strict: bool = False) -> dict[str, TradeView | None]:
        """Each trade as the venue reports it now (with its settlement status), read concurrently;
        None for one the venue does not list (yet) or that could not be read this time. ``strict``:
        a venue that is only unavailable (throttled, restarting) raises VenueUnavailable instead, for
        a caller that must tell "not listed yet" from "not read" (and waits the window out)."""
        ids = list(dict.fromkeys(trade_ids))

        async def one(trade_id: str) -> TradeView | None:
            try:
                rows = await self.trades(trade_id=trade_id)
            except VenueUnavailable:
                if strict:
                    raise
                return None  # unread this time: still unsettled as far as the caller knows
            except VenueError:
                return None
            return next((t for t in rows if t.trade_id == trade_id), None)

        return dict(zip(ids, await asyncio.gather(*(one(t) for t in ids)), strict=True))

    async def position(self, outcome: OutcomeId) -> float:
        """Shares of ``outcome`` the wallet holds (settled), as the CLOB reports them."""
        reply = await self._call(lambda: self.client.get_balance_allowance(asset_type=outcome.asset_type,
                                                                           asset_id=outcome.value),
                                 what="GET /balance-allowance")
        return reply.balance / UNITS

    async def cash(self) -> float:
        """pUSD the wallet holds."""
        reply = await self._call(lambda: self.client.get_balance_allowance(asset_type="COLLATERAL"),
                                 what="GET /balance-allowance")
        return reply.balance / UNITS

    async def collateral(self) -> tuple[int, dict[str, int]]:
        """(pUSD balance, allowance per spender), both in base units, as the CLOB reports them."""
        reply = await self._call(lambda: self.client.get_balance_allowance(asset_type="COLLATERAL"),
                                 what="GET /balance-allowance")
        return reply.balance, dict(reply.allowances)

    async def heartbeat(self, heartbeat_id: str = "") -> str:
        """One order heartbeat (docs/venue.md H1); the id to send next. A stale id is answered with
        the expected one, which is sent once more."""
        try:
            return (await self.client.send_order_heartbeat(heartbeat_id=heartbeat_id)).heartbeat_id
        except OrderHeartbeatMismatchError as exc:
            expected = exc.heartbeat_id
        except VENUE_FAILURES as exc:
            raise self._throttled(venue_error(exc, sent=True, what="POST /v1/heartbeats")) from exc
        answer = await self._call(lambda: self.client.send_order_heartbeat(heartbeat_id=expected), sent=True,
                                  what="POST /v1/heartbeats")
        return answer.heartbeat_id

    async def _call(self, call: Callable[[], Awaitable[T]], *, sent: bool = False, what: str = "") -> T:
        try:
            return await call()
        except VENUE_FAILURES as exc:
            raise self._throttled(venue_error(exc, sent=sent, what=what)) from exc
