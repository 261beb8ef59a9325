"""Decoder for the CLOB market-channel websocket (reference §4.2).

A text frame is one JSON object or a JSON array of them (the subscribe dump is an array). Every
number is a string and ``timestamp`` is epoch ms as a string. :func:`decode_frame` turns a frame
into typed events (read-only by convention; the per-frame ones are not frozen, for speed):

* ``book``              -> :class:`BookSnapshot` (levels in wire order: best is LAST, never index 0)
* ``price_change``      -> :class:`PriceChangeBatch`, from the current form (``price_changes``
  array, one message may cover both tokens of a market), the legacy form (top-level ``asset_id``
  with a ``changes`` array) and the oldest form (top-level ``price``/``side``/``size``)
* ``last_trade_price``  -> :class:`LastTrade`
* ``tick_size_change``  -> :class:`TickSizeChange`
* ``best_bid_ask``      -> :class:`BestBidAsk`
* ``market_resolved``   -> :class:`MarketResolved` (the market's outcome ids and the winner)

``best_bid_ask``, ``new_market`` and ``market_resolved`` are sent only to a subscription that asked
with ``custom_feature_enabled: true`` (docs/venue.md M1), which :func:`subscribe_message` and
:func:`operation_message` always do.

This decoder is hand-written, not the SDK's ``parse_market_event``: it runs once per frame on the
gateway's hot path, where the SDK's pydantic models cost several times as much per frame
(docs/benchmarks.md, "WS gateway: the frame decoder against the SDK's").

Prices must lie in [0, 1] and sizes must not be negative. ``PONG`` and unknown event types
decode to nothing. Anything else that does not fit raises
:class:`MarketFrameError` -- the one exception a caller catches, counts and skips; it carries the
events of the frame that did decode, so one bad element does not drop a whole book dump.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from shared.input_errors import InputError

Side = Literal["BUY", "SELL"]


class MarketFrameError(InputError):
    """A frame (or an element of it) that is not a valid market-channel message."""

    def __init__(self, message: str, events: tuple[MarketEvent, ...] = ()) -> None:
        super().__init__(message)
        self.events = events  # what did decode; the caller may still apply it


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 2x, and this is built per frame
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
    last_trade_price: float | None = None  # REST books carry it; None when absent


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 2x, and this is built per frame
class PriceChange:
    asset_id: str
    price: float
    size: float  # the new aggregate size at that level; 0 removes it
    side: Side  # BUY = bid side, SELL = ask side
    best_bid: float | None = None
    best_ask: float | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 2x, and this is built per frame
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


@dataclass(frozen=True, slots=True)
class MarketResolved:
    """A market resolved (docs/venue.md Z2): ``market`` is its condition id, ``asset_ids`` its
    outcome ids, ``winning_asset_id`` the one that pays $1 ("" when the event does not say)."""

    market: str
    market_id: str  # Gamma market id ("" when absent)
    asset_ids: tuple[str, ...]
    winning_asset_id: str
    winning_outcome: str
    timestamp: int


MarketEvent = BookSnapshot | PriceChangeBatch | LastTrade | TickSizeChange | BestBidAsk | MarketResolved


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
    if not isinstance(kind, str):
        raise MarketFrameError("event without event_type" if kind is None else f"bad event_type {kind!r}")
    decoder = _DECODERS.get(kind)
    if decoder is None:
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


def _price(value: Any) -> float:
    out = _num(value)
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"price {value!r} is outside [0, 1]")
    return out


def _size(value: Any) -> float:
    out = _num(value)
    if out < 0:
        raise ValueError(f"negative size {value!r}")
    return out


def _opt_price(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    return None if value is None or value == "" else _price(value)


def _ts(obj: dict[str, Any]) -> int:
    value = obj.get("timestamp")
    return 0 if value is None or value == "" else int(_num(value))


def _text(obj: dict[str, Any], key: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise KeyError(key)
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
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
            out.append(Level(_price(lvl["price"]), _size(lvl["size"])))
        elif isinstance(lvl, (list, tuple)) and len(lvl) == 2:
            out.append(Level(_price(lvl[0]), _size(lvl[1])))
        else:
            raise TypeError(f"bad level {lvl!r}")
    return tuple(out)


def _book(obj: dict[str, Any]) -> BookSnapshot:
    tick = _opt_num(obj, "tick_size")
    if tick is not None and not 0 < tick < 1:
        raise ValueError(f"bad tick_size {tick}")
    return BookSnapshot(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        bids=_levels(obj.get("bids", obj.get("buys"))), asks=_levels(obj.get("asks", obj.get("sells"))),
        timestamp=_ts(obj), hash=_text(obj, "hash", required=False), tick_size=tick,
        last_trade_price=_opt_price(obj, "last_trade_price"),
    )


def decode_rest_book(obj: Any) -> BookSnapshot:
    """A REST ``GET /book`` / ``POST /books`` entry (same fields as the ``book`` event, no event_type)."""
    if not isinstance(obj, dict):
        raise MarketFrameError(f"book is not an object: {str(obj)[:80]!r}")
    try:
        return _book(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise MarketFrameError(f"bad REST book: {type(exc).__name__}: {exc}") from exc


def _change(obj: dict[str, Any], asset_id: str | None = None) -> PriceChange:
    return PriceChange(
        asset_id=asset_id or _text(obj, "asset_id"), price=_price(obj["price"]), size=_size(obj["size"]),
        side=_side(obj["side"]), best_bid=_opt_price(obj, "best_bid"), best_ask=_opt_price(obj, "best_ask"),
    )


def _price_change(obj: dict[str, Any]) -> PriceChangeBatch:
    market = _text(obj, "market", required=False)
    if "price_changes" in obj:  # current form (since 2025-09-15)
        raw = obj["price_changes"]
        if not isinstance(raw, list):
            raise TypeError("price_changes is not a list")
        changes = tuple(_change(_obj(c)) for c in raw)
    elif "changes" in obj:  # legacy: one message per asset
        asset = _text(obj, "asset_id")
        raw = obj["changes"]
        if not isinstance(raw, list):
            raise TypeError("changes is not a list")
        changes = tuple(_change(_obj(c), asset) for c in raw)
    else:  # oldest: a single level at the top
        changes = (_change(obj),)
    return PriceChangeBatch(market=market, timestamp=_ts(obj), changes=changes)


def _obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"change is not an object: {str(value)[:40]!r}")
    return value


def _last_trade(obj: dict[str, Any]) -> LastTrade:
    side = obj.get("side")
    size = obj.get("size")
    return LastTrade(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        price=_price(obj["price"]), size=0.0 if size is None or size == "" else _size(size),
        side=_side(side) if side else None, timestamp=_ts(obj),
    )


def _tick_size(obj: dict[str, Any]) -> TickSizeChange:
    new = _num(obj["new_tick_size"])
    if not 0 < new < 1:
        raise ValueError(f"bad new_tick_size {new}")
    return TickSizeChange(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        old_tick_size=_opt_num(obj, "old_tick_size"), new_tick_size=new, timestamp=_ts(obj),
    )


def _best_bid_ask(obj: dict[str, Any]) -> BestBidAsk:
    return BestBidAsk(
        asset_id=_text(obj, "asset_id"), market=_text(obj, "market", required=False),
        best_bid=_opt_price(obj, "best_bid"), best_ask=_opt_price(obj, "best_ask"), timestamp=_ts(obj),
    )


def _resolved(obj: dict[str, Any]) -> MarketResolved:
    raw = obj.get("assets_ids", obj.get("asset_ids"))
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise TypeError("assets_ids is not a list")
    if any(isinstance(a, bool) or not isinstance(a, (str, int)) or a == "" for a in raw):
        raise TypeError(f"assets_ids holds a non-id: {str(raw)[:80]!r}")
    assets = tuple(str(a) for a in raw)
    winner = _text(obj, "winning_asset_id", required=False)
    if winner and assets and winner not in assets:
        raise ValueError(f"winning_asset_id {winner[:16]}... is not one of the market's assets_ids")
    return MarketResolved(
        market=_text(obj, "market"), market_id=_text(obj, "id", required=False), asset_ids=assets,
        winning_asset_id=winner, winning_outcome=_text(obj, "winning_outcome", required=False), timestamp=_ts(obj),
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], MarketEvent]] = {
    "book": _book,
    "price_change": _price_change,
    "last_trade_price": _last_trade,
    "tick_size_change": _tick_size,
    "best_bid_ask": _best_bid_ask,
    "market_resolved": _resolved,
}


def subscribe_message(asset_ids: list[str]) -> str:
    """The first message on a new connection: subscribe and ask for the initial book dump, with
    the custom features (``best_bid_ask``, ``market_resolved``; docs/venue.md M1)."""
    return json.dumps({"assets_ids": asset_ids, "type": "market", "custom_feature_enabled": True},
                      separators=(",", ":"))


def operation_message(operation: Literal["subscribe", "unsubscribe"], asset_ids: list[str]) -> str:
    """Live subscription change on an open connection (current AsyncAPI). A subscribe carries the
    custom-feature flag too, as the SDK's does: the venue keeps one flag per subscription."""
    body: dict[str, Any] = {"operation": operation, "assets_ids": asset_ids}
    if operation == "subscribe":
        body["custom_feature_enabled"] = True
    return json.dumps(body, separators=(",", ":"))
