"""Live-data socket (RTDS, reference §5) frames -> typed events, and the subscribe frames (A6).

Envelope: ``{"topic","type","timestamp"(ms),"payload":{...},"connection_id"}``. The ``activity``
topic's ``trades`` and ``orders_matched`` payloads are Data-API trade rows (payload ``timestamp``
in seconds, sometimes as a string), so they go through :func:`shared.venue.data_api.parse_trade`.
The feed is a global firehose (its slug filters delivered nothing in practice): filtering by
``proxyWallet`` is the consumer's job. ``pong``/``PONG`` and frames without a payload are
keep-alive noise; anything else that does not fit is :class:`BadFrame` (log, count, skip).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.input_errors import InputError
from shared.venue.data_api import BadTrade, Trade, parse_trade

TRADE_TYPES = ("trades", "orders_matched")


class BadFrame(InputError):
    """A frame that is neither keep-alive nor a readable event."""


@dataclass(frozen=True, slots=True)
class LiveTrade:
    kind: str  # trades | orders_matched
    trade: Trade
    ts_ms: int  # envelope timestamp: when the socket sent it (0 if absent)


def subscribe_frame(action: str = "subscribe") -> str:
    """Both trade types of ``activity``, unfiltered (the only form observed to deliver)."""
    subs = [{"topic": "activity", "type": t} for t in TRADE_TYPES]
    return json.dumps({"action": action, "subscriptions": subs}, separators=(",", ":"))


def _envelopes(text: str) -> list[Any]:
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise BadFrame(f"not JSON: {text[:60]!r}") from exc
    return msg if isinstance(msg, list) else [msg]


def parse_frame(text: str) -> tuple[list[LiveTrade], list[str]]:
    """Trade events in a text frame (empty for keep-alive and other topics), and one reason per
    event in it that could not be read. Raises :class:`BadFrame` when the frame is not JSON."""
    stripped = text.strip()
    if not stripped or stripped.lower() in ("pong", "ping"):
        return [], []
    trades: list[LiveTrade] = []
    bad: list[str] = []
    for env in _envelopes(stripped):
        if not isinstance(env, dict):
            bad.append(f"event is not an object: {str(env)[:60]!r}")
            continue
        if env.get("topic") != "activity" or env.get("type") not in TRADE_TYPES or "payload" not in env:
            continue
        try:
            trade = parse_trade(env["payload"])
        except BadTrade as exc:
            bad.append(str(exc))
            continue
        try:
            ts_ms = int(env.get("timestamp") or 0)
        except (TypeError, ValueError):
            ts_ms = 0
        trades.append(LiveTrade(str(env["type"]), trade, ts_ms))
    return trades, bad
