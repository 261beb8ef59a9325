"""Order execution behind one interface (D7). :class:`ClobExecutor` is a thin adapter over the venue
room (shared/venue: the official SDK, exact amounts, errors by what to do), pointed at Polymarket
live or at sim_exchange, so sim and live share this code; the paper executor is in :mod:`paper`.

The venue client is async: no call holds a thread. Per-token market facts are known before the
first order: the session's START params name the market system (``market_version``) and its
minimum order size (``min_order_size``) (:class:`MarketFacts`); :meth:`ClobExecutor.prepare` reads
the rest once per token from the venue (its REST book: neg-risk, which picks the exchange a v1
order is signed for; and the taker fee schedule when the params did not carry Gamma's). Every
order then uses the live tick size from the tick feed, and creating one makes no request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from services.maker_worker.execution import DEFAULT_MIN_SIZE
from shared.venue.errors import VenueAmbiguous, VenueNotSent, VenueRejected, VenueUnavailable
from shared.venue.fees import FeeSchedule
from shared.venue.ids import OutcomeId, outcome, system_of
from shared.venue.orders import OrderMarket, VenueOrders, order_amounts
from shared.venue.views import OrderView, TradeView

Side = Literal["BUY", "SELL"]
NOT_SENT = "not sent: ownership no longer certain"  # the send gate said no at the last moment
SendGate = Callable[[], bool]  # asked just before the POST; False: do not send


@dataclass(frozen=True)
class OrderResult:
    ok: bool
    order_id: str = ""
    status: str = ""  # live | matched | delayed | rejected | unknown
    filled_size: float = 0.0
    avg_price: float = 0.0
    error: str = ""
    ambiguous: bool = False  # the request may or may not have reached the venue
    trade_ids: tuple[str, ...] = ()  # the venue trades of what filled at once (the answer's tradeIDs)
    # Refused because the venue is in a trading window (docs/venue.md O1-O2: ``restarting`` 425,
    # ``post_only``, ``cancel_only``): nothing happened, and the same order may go once it is over.
    restriction: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class OrderStatus:
    """One order as the venue now reports it."""

    order_id: str
    status: str  # LIVE | MATCHED | CANCELED (upper case, as the venue writes it)
    size_matched: float
    price: float
    trade_ids: tuple[str, ...] = ()  # the venue trades it matched in so far

    @property
    def live(self) -> bool:
        return self.status.upper() == "LIVE"


@dataclass(frozen=True)
class MarketFacts:
    """What a session knows of its token's market from its START params (the orchestrator writes
    them from the signal and ``pf:meta``; anything without them is a v1 market with minimum 5)."""

    version: str = "v1"
    min_order_size: float = DEFAULT_MIN_SIZE
    neg_risk: bool = False
    condition_id: str = ""
    fees: FeeSchedule | None = None  # the market's taker fee; None: not in the params (read from the venue)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> MarketFacts:
        """Raises ``ValueError`` (or :class:`~shared.venue.errors.UnknownMarketVersion`) on a bad value."""
        version = system_of(str(params.get("market_version") or "v1"))
        raw = params.get("min_order_size")
        min_size = DEFAULT_MIN_SIZE if raw in (None, "") else float(raw)  # type: ignore[arg-type]
        if not min_size > 0:
            raise ValueError(f"min_order_size must be positive, got {raw!r}")
        fees = None
        if params.get("fee_rate") not in (None, ""):
            rate, exponent = float(params["fee_rate"]), float(params.get("fee_exponent") or 1.0)
            if not (0.0 <= rate <= 1.0 and exponent > 0):
                raise ValueError(f"fee schedule rate {rate!r} exponent {exponent!r} is not a fee")
            fees = FeeSchedule(rate, exponent)
        return cls(version, min_size, bool(params.get("neg_risk", False)), str(params.get("condition_id") or ""),
                   fees)


class Executor(Protocol):
    venue_is_truth: bool  # False: positions do not survive a restart (paper); the snapshot is adopted

    def describe(self, token_id: str, facts: MarketFacts) -> None: ...
    def fees_of(self, token_id: str) -> FeeSchedule:
        """The token's taker fee schedule, as known after :meth:`prepare` (no fee when unknown)."""
    async def prepare(self, token_id: str, tick_size: float | None = None) -> None: ...
    async def place(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                    order_type: str = "FAK", may_send: SendGate | None = None) -> OrderResult: ...
    async def order_status(self, order_id: str) -> OrderStatus | None: ...
    async def trades(self, trade_ids: Iterable[str], strict: bool = False) -> dict[str, TradeView | None]:
        """Each trade's view (None: not listed yet, or unread); ``strict``: VenueUnavailable when unread."""
    async def cancel_order(self, order_id: str) -> None: ...
    async def open_orders(self, token_id: str) -> list[dict[str, Any]]: ...
    async def cancel_token_orders(self, token_id: str) -> None: ...
    async def position(self, token_id: str) -> float: ...
    async def cash(self) -> float: ...
    async def adopt_position(self, token_id: str, size: float) -> None: ...


def is_transient(exc: BaseException) -> bool:
    """A venue error worth retrying after a pause: throttled (429), restarting (425), a trading
    window, the venue's own trouble (5xx) or no answer at all. Anything else is an answer to act on."""
    return isinstance(exc, VenueUnavailable | VenueAmbiguous | OSError | TimeoutError | ConnectionError)


def _status(view: OrderView) -> OrderStatus:
    return OrderStatus(view.order_id, view.status, view.size_matched, view.price, view.trade_ids)


def _unavailable(exc: VenueUnavailable) -> OrderResult:
    """Refused, nothing happened: throttled, or a trading window the caller waits out."""
    return OrderResult(False, status="rejected", error=exc.text, restriction=exc.restriction,
                       retry_after=exc.retry_after)


def _row(view: OrderView) -> dict[str, Any]:
    return {"id": view.order_id, "side": view.side, "price": view.price, "original_size": view.original_size,
            "size_matched": view.size_matched, "status": view.status}


class ClobExecutor:
    venue_is_truth = True

    def __init__(self, venue: VenueOrders) -> None:
        self.venue = venue
        self.facts: dict[str, MarketFacts] = {}
        self.outcomes: dict[str, OutcomeId] = {}
        self.markets: dict[str, OrderMarket] = {}
        self.fees: dict[str, FeeSchedule] = {}
        self.prepared = 0  # market-info reads (one per token)

    def describe(self, token_id: str, facts: MarketFacts) -> None:
        """The market facts of ``token_id``; refuses (UnknownMarketVersion, a setup error naming the
        fix) an id that contradicts its market's version before any order is signed."""
        self.outcomes[token_id] = outcome(token_id, facts.version)
        self.facts[token_id] = facts
        known = self.markets.get(token_id)
        if known is not None and known.min_size != facts.min_order_size:
            self.markets[token_id] = OrderMarket(known.outcome, known.neg_risk, facts.min_order_size)

    def outcome_of(self, token_id: str) -> OutcomeId:
        """The outcome of a token this executor was told about (a v1 token if it was not)."""
        found = self.outcomes.get(token_id)
        if found is None:
            self.describe(token_id, MarketFacts())
            found = self.outcomes[token_id]
        return found

    async def prepare(self, token_id: str, tick_size: float | None = None) -> None:
        """Read the token's market info once (neg-risk: the exchange a v1 order is signed for)."""
        if token_id in self.markets:
            return
        oc = self.outcome_of(token_id)
        info = await self.venue.market_info(oc)
        facts = self.facts.get(token_id, MarketFacts())
        if facts.fees is not None:
            self.fees[token_id] = facts.fees
        elif facts.condition_id:  # a signal without Gamma's feeSchedule: the venue's own (F1)
            self.fees[token_id] = await self.venue.fee_schedule(facts.condition_id)
        self.markets[token_id] = OrderMarket(oc, info.neg_risk, facts.min_order_size)
        self.prepared += 1

    def fees_of(self, token_id: str) -> FeeSchedule:
        return self.fees.get(token_id, FeeSchedule())

    async def place(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                    order_type: str = "FAK", may_send: SendGate | None = None) -> OrderResult:
        """One order: GTC/GTD as a limit order, FOK/FAK as a marketable one with exact amounts
        (shared/venue/amounts.py; a BUY spends at most size x price). Refused before sending (off
        the grid, under the market's minimum) or by the venue: ``rejected``."""
        try:
            signed = await self.sign(token_id, side, price, size, tick_size, order_type)
        except VenueUnavailable as exc:  # nothing was sent; the market info read met a trading window
            return _unavailable(exc)
        except (VenueRejected, VenueAmbiguous) as exc:  # nothing was sent
            return OrderResult(False, status="rejected", error=str(exc))
        return await self.post_signed(token_id, signed, may_send)

    async def sign(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                   order_type: str = "FAK") -> Any:
        """A signed order (the SDK's type, kept opaque here), its market info read first if need be."""
        try:
            await self.prepare(token_id)
        except VenueUnavailable as exc:
            if exc.restriction:  # the weekly restart: the caller waits it out
                raise
            raise VenueRejected(f"market info unavailable: {exc}") from exc
        except (VenueRejected, VenueAmbiguous) as exc:
            raise VenueRejected(f"market info unavailable: {exc}") from exc
        market = self.markets[token_id]
        return await self.venue.sign(market, order_amounts(market, side, price, size, tick_size, order_type),
                                     order_type)

    async def post_signed(self, token_id: str, signed: Any, may_send: SendGate | None = None) -> OrderResult:
        """POST one signed order. ``may_send`` is asked right before the POST: an order whose sender
        lost the token meanwhile is never sent (``NOT_SENT``). "Duplicated" means the venue already
        holds this very order (a retried POST): it counts as placed. No answer / 5xx is ambiguous and
        carries the order's own id (its EIP-712 hash), so the caller can ask the venue about it."""
        try:
            ack = await self.venue.post(self.markets[token_id], signed, may_send)
        except VenueNotSent:
            return OrderResult(False, status="rejected", error=NOT_SENT)
        except VenueAmbiguous as exc:
            return OrderResult(False, order_id=exc.order_id, status="unknown", error=exc.text, ambiguous=True)
        except VenueUnavailable as exc:
            return _unavailable(exc)
        except VenueRejected as exc:
            return OrderResult(False, status="rejected", error=exc.text)
        return OrderResult(True, order_id=ack.order_id, status=ack.status, filled_size=ack.shares,
                           avg_price=ack.avg_price, error=ack.note, trade_ids=ack.trade_ids)

    async def order_status(self, order_id: str) -> OrderStatus | None:
        view = await self.venue.order(order_id)
        return None if view is None else _status(view)

    async def trades(self, trade_ids: Iterable[str], strict: bool = False) -> dict[str, TradeView | None]:
        return await self.venue.trades_by_id(trade_ids, strict)

    async def cancel_order(self, order_id: str) -> None:
        await self.venue.cancel(order_id)

    async def open_orders(self, token_id: str) -> list[dict[str, Any]]:
        return [_row(v) for v in await self.venue.open_orders(self.outcome_of(token_id))]

    async def cancel_token_orders(self, token_id: str) -> None:
        await self.venue.cancel_outcome(self.outcome_of(token_id))

    async def position(self, token_id: str) -> float:
        return await self.venue.position(self.outcome_of(token_id))

    async def cash(self) -> float:
        return await self.venue.cash()

    async def adopt_position(self, token_id: str, size: float) -> None:
        """The venue holds the position; nothing to adopt."""

