"""The SDK's own decoders of the venue shapes polyfleet decodes by hand (polymarket-client 0.14.0).

polyfleet keeps a hand-written decoder where it sits on a hot path and the SDK's costs more there
(issue 15 item 2): the gateway's market-frame decoder (shared.venue.market_ws), the screener's
and metadata cache's Gamma keyset pages (shared.venue.gamma, gamma_keyset) and the collector's
trade rows (shared.venue.data_api). This module is the SDK's side of each comparison: the
benchmarks time it (docs/benchmarks.md) and the conformance tests check that both decoders read
the same documented fixtures alike. No service path calls it.

Some of the names are the SDK's private ones (``polymarket._internal``): polymarket-client is
pinned in uv.lock, and a conformance test breaks when an upgrade moves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from polymarket._internal.actions.gamma import _make_keyset_parser, _parse_list_market
from polymarket._internal.data_envelope import parse_data_page
from polymarket._internal.streams.clob.market_protocol import parse_events
from polymarket.models import Event, Market
from polymarket.models.data.activity import Trade

_MARKETS = _make_keyset_parser("markets", _parse_list_market)
_EVENTS = _make_keyset_parser("events", Event.parse_response)


@dataclass(frozen=True, slots=True)
class SdkMarket:
    """What polyfleet reads of a market, as the SDK reads it."""

    id: str
    version: str  # "v1" / "v2" ("v1" when Gamma gave none, as polyfleet reads it)
    outcome_ids: tuple[str, ...]  # YES, NO: token ids (v1) or position ids (v2)
    condition_id: str
    min_order_size: float | None
    tick_size: float | None
    neg_risk: bool


def markets_page(body: Any) -> tuple[list[Market], str | None]:
    """A ``/markets/keyset`` answer through the SDK's parser: (markets, next cursor)."""
    page = _MARKETS(body)
    return list(page.items), page.server_next_cursor


def events_page(body: Any) -> tuple[list[Event], str | None]:
    """An ``/events/keyset`` answer through the SDK's parser: (events, next cursor)."""
    page = _EVENTS(body)
    return list(page.items), page.server_next_cursor


def market_view(m: Market) -> SdkMarket:
    version = str(m.version.value if m.version is not None else "v1")
    ids = (m.outcomes.yes.position_id, m.outcomes.no.position_id) if version == "v2" else \
        (m.outcomes.yes.token_id, m.outcomes.no.token_id)
    min_size, tick = m.trading.minimum_order_size, m.trading.minimum_tick_size
    return SdkMarket(
        id=str(m.id), version=version, outcome_ids=tuple(str(i) for i in ids if i is not None),
        condition_id=str(m.condition_id or ""), min_order_size=float(min_size) if min_size is not None else None,
        tick_size=float(tick) if tick is not None else None, neg_risk=bool(m.state.neg_risk),
    )


def market_frame(text: str) -> list[Any]:
    """One market-channel text frame as the SDK's stream reads it (``json.loads`` + ``parse_events``)."""
    events, _dropped = parse_events(json.loads(text))
    return events


def trades_page(body: Any) -> list[Trade]:
    """A Data API v2 ``/v2/trades`` page (``{"data": [...], "pagination": {...}}``) through the SDK."""
    return list(parse_data_page(body, Trade.parse_response_list).items)
