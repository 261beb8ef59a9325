"""Order execution behind one interface (D7). The sim executor is the live client pointed at
sim_exchange, so sim and live share this code; the paper executor is in :mod:`paper`.

py-clob-client-v2 is synchronous: every call runs in a thread so a slow venue never blocks the
event loop (and with it other sessions and the lease renewal).

Per-token market facts are fetched once, not per order: :meth:`ClobExecutor.prepare` reads the
condition id (``/markets-by-token``) and the compact market info (``/clob-markets``), which fills
the client's caches of tick size, neg-risk and fee info; every order then passes the live tick
size (from the tick feed) and the cached neg-risk flag, so creating an order makes no request.
A tick size that differs from the prepared one refreshes the market info once (the client
refuses a tick smaller than the one it cached).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from py_clob_client_v2 import (
    AssetType,
    BalanceAllowanceParams,
    OpenOrderParams,
    OrderArgs,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PartialCreateOrderOptions,
)
from py_clob_client_v2.exceptions import PolyApiException, PolyException
from py_clob_client_v2.http_helpers import get as http_get
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

from shared.venue.order_hash import order_hash

Side = Literal["BUY", "SELL"]
UNITS = 1_000_000  # amounts and balances are 6-decimal integers on the wire
NOT_SENT = "not sent: ownership no longer certain"  # the send gate said no at the last moment
SendGate = Callable[[], bool]  # asked on the venue thread just before the POST; False: do not send


class _NotSent(Exception):
    pass


@dataclass(frozen=True)
class OrderResult:
    ok: bool
    order_id: str = ""
    status: str = ""  # live | matched | delayed | rejected | unknown
    filled_size: float = 0.0
    avg_price: float = 0.0
    error: str = ""
    ambiguous: bool = False  # the request may or may not have reached the venue


@dataclass(frozen=True)
class OrderStatus:
    """One order as the venue now reports it."""

    order_id: str
    status: str  # LIVE | MATCHED | CANCELED (upper case, as the venue writes it)
    size_matched: float
    price: float

    @property
    def live(self) -> bool:
        return self.status.upper() == "LIVE"


class Executor(Protocol):
    venue_is_truth: bool  # False: positions do not survive a restart (paper); the snapshot is adopted

    async def prepare(self, token_id: str, tick_size: float | None = None) -> None: ...
    async def place(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                    order_type: str = OrderType.FAK, may_send: SendGate | None = None) -> OrderResult: ...
    async def order_status(self, order_id: str) -> OrderStatus | None: ...
    async def cancel_order(self, order_id: str) -> None: ...
    async def open_orders(self, token_id: str) -> list[dict[str, Any]]: ...
    async def cancel_token_orders(self, token_id: str) -> None: ...
    async def position(self, token_id: str) -> float: ...
    async def cash(self) -> float: ...
    async def adopt_position(self, token_id: str, size: float) -> None: ...


def is_transient(exc: BaseException) -> bool:
    """A venue error worth retrying after a pause: throttling (429), the venue's own trouble (5xx,
    425) or no answer at all (transport error, timeout). Anything else is an answer to act on."""
    if isinstance(exc, PolyApiException):
        code = exc.status_code
        return code is None or code in (425, 429) or code >= 500
    return isinstance(exc, OSError | TimeoutError | ConnectionError | PolyException)


def tick_str(tick_size: float) -> str:
    """The SDK's TickSize literal for a float tick ("0.01", "0.001", ...)."""
    return f"{tick_size:.6f}".rstrip("0").rstrip(".")


def fill_from_response(side: Side, resp: dict[str, Any]) -> tuple[float, float]:
    """(shares filled, average price) from a POST /order reply's making/taking amounts.

    BUY: making = collateral paid, taking = shares received; SELL: the other way round.
    """
    try:
        making = float(resp.get("makingAmount") or 0)
        taking = float(resp.get("takingAmount") or 0)
    except (TypeError, ValueError):
        return 0.0, 0.0
    shares, cash = (taking, making) if side == "BUY" else (making, taking)
    return shares, (cash / shares if shares > 0 else 0.0)


def status_from_order(raw: Any) -> OrderStatus | None:
    """A ``GET /data/order/{id}`` object (strings for numbers) as an :class:`OrderStatus`."""
    if not isinstance(raw, dict) or not raw.get("id"):
        return None
    try:
        return OrderStatus(str(raw["id"]), str(raw.get("status", "")).upper(), float(raw.get("size_matched") or 0),
                           float(raw.get("price") or 0))
    except (TypeError, ValueError):
        return None


@dataclass
class TokenInfo:
    condition_id: str
    tick_size: str
    neg_risk: bool


class ClobExecutor:
    venue_is_truth = True

    def __init__(self, client: Any) -> None:
        self.client = client
        self.info: dict[str, TokenInfo] = {}
        self.prepared = 0  # market-info fetches (one per token, plus one per tick size change)

    async def prepare(self, token_id: str, tick_size: float | None = None) -> None:
        """Warm the client's tick size / neg-risk / fee caches for ``token_id`` (once per token, and
        again when the live tick size differs from the cached one)."""
        info = self.info.get(token_id)
        if info is not None and (tick_size is None or tick_str(tick_size) == info.tick_size):
            return

        def call() -> TokenInfo:
            cid = info.condition_id if info else str(
                http_get(f"{self.client.host}/markets-by-token/{token_id}")["condition_id"])
            self.client.get_clob_market_info(cid)
            return TokenInfo(cid, str(self.client.get_tick_size(token_id)), bool(self.client.get_neg_risk(token_id)))

        self.info[token_id] = await asyncio.to_thread(call)
        self.prepared += 1

    async def place(self, token_id: str, side: Side, price: float, size: float, tick_size: float,
                    order_type: str = OrderType.FAK, may_send: SendGate | None = None) -> OrderResult:
        try:
            await self.prepare(token_id, tick_size)
        except (PolyException, KeyError, TypeError) as exc:  # nothing was sent
            return OrderResult(False, status="rejected", error=f"market info unavailable: {exc}")
        info = self.info[token_id]

        def sign() -> Any:
            return self.client.create_order(
                OrderArgs(token_id=token_id, price=price, size=size, side=side),
                PartialCreateOrderOptions(tick_size=tick_str(tick_size), neg_risk=info.neg_risk),  # type: ignore[arg-type]
            )

        try:
            signed = await asyncio.to_thread(sign)
        except PolyException as exc:  # refused before sending (bad price, tick): nothing reached the venue
            return OrderResult(False, status="rejected", error=str(exc.msg))
        return await self.post_signed(signed, order_type, side, info.neg_risk, may_send)

    async def post_signed(self, signed: Any, order_type: str, side: Side, neg_risk: bool = False,
                          may_send: SendGate | None = None) -> OrderResult:
        """POST one signed order. "Duplicated" means the venue already holds this very order (a
        retried POST): it counts as placed. No answer / 5xx is ambiguous: the caller must ask the
        venue before doing anything else; the result then carries the order id (the order's EIP-712
        hash, computed here) so the venue can be asked about this very order.

        ``may_send`` is asked on the venue thread right before the POST, after any wait for a free
        thread: an order whose sender lost the token meanwhile is never sent (result ``NOT_SENT``)."""
        expected_id = order_hash(order_to_json_v2(signed, "", order_type)["order"], neg_risk)

        def post() -> Any:
            if may_send is not None and not may_send():
                raise _NotSent()
            return self.client.post_order(signed, order_type)

        try:
            resp = await asyncio.to_thread(post)
        except _NotSent:
            return OrderResult(False, status="rejected", error=NOT_SENT)
        except PolyApiException as exc:
            status = exc.status_code
            msg = _error_text(exc.error_msg)
            if "Duplicated" in msg:
                return OrderResult(True, order_id=expected_id, status="live", error=msg)
            ambiguous = status is None or status >= 500
            return OrderResult(False, order_id=expected_id if ambiguous else "",
                               status="unknown" if ambiguous else "rejected", error=msg, ambiguous=ambiguous)
        except PolyException as exc:
            return OrderResult(False, status="rejected", error=str(exc.msg))
        if not isinstance(resp, dict) or not resp.get("success", False):
            err = _error_text(resp.get("errorMsg") if isinstance(resp, dict) else resp)
            return OrderResult(False, status="rejected", error=err)
        shares, avg = fill_from_response(side, resp)
        return OrderResult(True, order_id=str(resp.get("orderID", "")), status=str(resp.get("status", "")),
                           filled_size=shares, avg_price=avg)

    async def order_status(self, order_id: str) -> OrderStatus | None:
        try:
            raw = await asyncio.to_thread(self.client.get_order, order_id)
        except PolyApiException as exc:
            if exc.status_code == 404:
                return None
            raise
        return status_from_order(raw)

    async def cancel_order(self, order_id: str) -> None:
        await asyncio.to_thread(self.client.cancel_order, OrderPayload(orderID=order_id))

    async def open_orders(self, token_id: str) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams(asset_id=token_id))
        return list(rows or [])

    async def cancel_token_orders(self, token_id: str) -> None:
        await asyncio.to_thread(self.client.cancel_market_orders, OrderMarketCancelParams(asset_id=token_id))

    async def position(self, token_id: str) -> float:
        resp = await asyncio.to_thread(
            self.client.get_balance_allowance,
            BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token_id),
        )
        return float(resp.get("balance", 0) or 0) / UNITS

    async def cash(self) -> float:
        resp = await asyncio.to_thread(self.client.get_balance_allowance,
                                       BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
        return float(resp.get("balance", 0) or 0) / UNITS

    async def adopt_position(self, token_id: str, size: float) -> None:
        """The venue holds the position; nothing to adopt."""


def _error_text(raw: Any) -> str:
    if isinstance(raw, dict):
        return str(raw.get("error") or raw.get("errorMsg") or raw)
    return str(raw)
