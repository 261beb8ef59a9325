"""Decoder for the CLOB market-channel websocket (reference §4.2).

A text frame is one JSON object or a JSON array of them (the subscribe dump is an array). Every
number is a string and ``timestamp`` is epoch ms as a string. :func:`decode_frame` turns a frame
into frozen, typed events:

* ``book``              -> :class:`BookSnapshot` (levels in wire order: best is LAST, never index 0)
* ``price_change``      -> :class:`PriceChangeBatch`, from the current form (``price_changes``
  array, one message may cover both tokens of a market), the legacy form (top-level ``asset_id``
  with a ``changes`` array) and the oldest form (top-level ``price``/``side``/``size``)
* ``last_trade_price``  -> :class:`LastTrade`
* ``tick_size_change``  -> :class:`TickSizeChange`
* ``best_bid_ask``      -> :class:`BestBidAsk`

``PONG`` and unknown event types decode to nothing. Anything else that does not fit raises
:class:`MarketFrameError` -- the one exception a caller catches, counts and skips; it carries the
events of the frame that did decode, so one bad element does not drop a whole book dump.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["BUY", "SELL"]


class MarketFrameError(ValueError):
    """A frame (or an element of it) that is not a valid market-channel message."""

    def __init__(self, message: str, events: tuple[MarketEvent, ...] = ()) -> None:
        super().__init__(message)
        self.events = events  # what did decode; the caller may still apply it


@dataclass(frozen=True, slots=True)
class Level:
    price: float
    size: float


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    asset_id: str
    market: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    timestamp: int  # venue ms, 0 when absent
    hash: str = ""
    tick_size: float | None = None  # some captures carry it; None when absent


@dataclass(frozen=True, slots=True)
class PriceChange:
    asset_id: str
    price: float
    size: float  # the new aggregate size at that level; 0 removes it
    side: Side  # BUY = bid side, SELL = ask side
    best_bid: float | None = None
    best_ask: float | None = None


@dataclass(frozen=True, slots=True)
class PriceChangeBatch:
    market: str
    timestamp: int
    changes: tuple[PriceChange, ...]


@dataclass(frozen=True, slots=True)
class LastTrade:
    asset_id: str
    market: str
    price: float
    size: float
    side: Side | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class TickSizeChange:
    asset_id: str
    market: str
    old_tick_size: float | None
    new_tick_size: float
    timestamp: int


@dataclass(frozen=True, slots=True)
class BestBidAsk:
    asset_id: str
    market: str
    best_bid: float | None
    best_ask: float | None
    timestamp: int


MarketEvent = BookSnapshot | PriceChangeBatch | LastTrade | TickSizeChange | BestBidAsk


def decode_frame(text: str | bytes) -> list[MarketEvent]:
    """Decode one websocket text frame. Raises :class:`MarketFrameError` for a bad frame."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise MarketFrameError("frame is not UTF-8") from exc
    stripped = text.strip()
    if stripped in ("PONG", "PING", ""):
        return []
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise MarketFrameError(f"frame is not JSON: {stripped[:80]!r}") from exc
    items = data if isinstance(data, list) else [data]
    events: list[MarketEvent] = []
    errors: list[str] = []
    for item in items:
        try:
            event = decode_event(item)
        except MarketFrameError as exc:
            errors.append(str(exc))
            continue
        if event is not None:
            events.append(event)
    if errors:
        raise MarketFrameError(f"{len(errors)} bad event(s) in frame: {errors[0]}", tuple(events))
    return events


def decode_event(obj: Any) -> MarketEvent | None:
    """One event object -> typed event; None for an event type we do not use."""
    if not isinstance(obj, dict):
        raise MarketFrameError(f"event is not an object: {str(obj)[:80]!r}")
    kind = obj.get("event_type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        if kind is None:
            raise MarketFrameError("event without event_type")
        return None
    try:
        return decoder(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise MarketFrameError(f"bad {kind} event: {type(exc).__name__}: {exc}") from exc


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"not a number: {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"not a finite number: {value!r}")
    return out


def _opt_num(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    return None if value is None or value == "" else _num(value)


def _ts(obj: dict[str, Any]) -> int:
    value = obj.get("timestamp")
    return 0 if value is None or value == "" else int(_num(value))


def _text(obj: dict[str, Any], key: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise KeyError(key)
        return ""
    if not isinstance(value, (str, int)):
        raise TypeError(f"{key} is not a string: {value!r}")
    return str(value)


def _side(value: Any) -> Side:
    side = str(value).upper()
    if side in ("BUY", "BID"):
        return "BUY"
    if side in ("SELL", "ASK"):
        return "SELL"
    raise ValueError(f"bad side {value!r}")


def _levels(raw: Any) -> tuple[Level, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TypeError("levels are not a list")
    out = []
    for lvl in raw:
        if isinstance(lvl, dict):
            out.append(Level(_num(lvl["price"]), _num(lvl["size"])))
        elif isinstance(lvl, (list, tuple)) and len(lvl) == 2:
            out.append(Level(_num(lvl[0]), _num(lvl[1])))
        else:
            raise TypeError(f"bad level {lvl!r}")
    return tuple(out)


def _book(obj: dict[str, Any]) -> BookSnapshot:
    return BookSnapshot(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        bids=_levels(obj.get("bids", obj.get("buys"))), asks=_levels(obj.get("asks", obj.get("sells"))),
        timestamp=_ts(obj), hash=_text(obj, "hash", required=False), tick_size=_opt_num(obj, "tick_size"),
    )


def _change(obj: dict[str, Any], asset_id: str | None = None) -> PriceChange:
    return PriceChange(
        asset_id=asset_id or _text(obj, "asset_id"), price=_num(obj["price"]), size=_num(obj["size"]),
        side=_side(obj["side"]), best_bid=_opt_num(obj, "best_bid"), best_ask=_opt_num(obj, "best_ask"),
    )


def _price_change(obj: dict[str, Any]) -> PriceChangeBatch:
    market = _text(obj, "market", required=False)
    if "price_changes" in obj:  # current form (since 2025-09-15)
        raw = obj["price_changes"]
        if not isinstance(raw, list):
            raise TypeError("price_changes is not a list")
        changes = tuple(_change(c) for c in raw)
    elif "changes" in obj:  # legacy: one message per asset
        asset = _text(obj, "asset_id")
        raw = obj["changes"]
        if not isinstance(raw, list):
            raise TypeError("changes is not a list")
        changes = tuple(_change(c, asset) for c in raw)
    else:  # oldest: a single level at the top
        changes = (_change(obj),)
    return PriceChangeBatch(market=market, timestamp=_ts(obj), changes=changes)


def _last_trade(obj: dict[str, Any]) -> LastTrade:
    side = obj.get("side")
    return LastTrade(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        price=_num(obj["price"]), size=_opt_num(obj, "size") or 0.0,
        side=_side(side) if side else None, timestamp=_ts(obj),
    )


def _tick_size(obj: dict[str, Any]) -> TickSizeChange:
    new = _num(obj["new_tick_size"])
    if new <= 0:
        raise ValueError(f"bad new_tick_size {new}")
    return TickSizeChange(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        old_tick_size=_opt_num(obj, "old_tick_size"), new_tick_size=new, timestamp=_ts(obj),
    )


def _best_bid_ask(obj: dict[str, Any]) -> BestBidAsk:
    return BestBidAsk(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        best_bid=_opt_num(obj, "best_bid"), best_ask=_opt_num(obj, "best_ask"), timestamp=_ts(obj),
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], MarketEvent]] = {
    "book": _book,
    "price_change": _price_change,
    "last_trade_price": _last_trade,
    "tick_size_change": _tick_size,
    "best_bid_ask": _best_bid_ask,
}


def subscribe_message(asset_ids: list[str]) -> str:
    """The first message on a new connection: subscribe and ask for the initial book dump."""
    return json.dumps({"assets_ids": asset_ids, "type": "market"}, separators=(",", ":"))


def operation_message(operation: Literal["subscribe", "unsubscribe"], asset_ids: list[str]) -> str:
    """Live subscription change on an open connection (current AsyncAPI)."""
    return json.dumps({"operation": operation, "assets_ids": asset_ids}, separators=(",", ":"))
