"""The market websocket hub: subscriptions, per-client send queues, and the ways a venue misbehaves.

Shapes it can put on the wire (``sim_exchange.ws_*`` config, or ``POST /_sim/fault``):

* ``price_change`` in the current form (``price_changes`` array) or the legacy one (one message per
  asset with a ``changes`` array), or alternating (``mixed``): :meth:`Hub.price_changes`.
* frames of one event, or JSON arrays of up to ``batch`` events.
* garbage frames (:data:`GARBAGE`) between the good ones.
* ``book`` events with or without ``tick_size`` (``sim_exchange.ws_book_tick_size``).
* dropped connections, and stalls: nothing at all (not even ``PONG``), or data only (``PONG``
  keeps coming: the socket looks alive but delivers nothing).

``market_resolved`` (:meth:`Hub.market_resolved`) goes, as on the venue, only to a subscription
that asked with ``custom_feature_enabled: true`` and holds one of the market's assets
(docs/venue.md M1, Z2).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import WebSocket
from loguru import logger

from services.sim_exchange.socketloop import close_all, run_connection

QUEUE_MAX = 100_000
PriceChangeForm = Literal["current", "legacy", "mixed"]

# What a misbehaving venue or proxy has been seen to send; each must be skipped by a client.
GARBAGE: tuple[str, ...] = (
    "not json at all",
    '{"event_type": "book", "asset_id": "1", "bids": [',  # truncated
    "42",
    '{"no_event_type": true}',
    '{"event_type": "price_change", "price_changes": [{"asset_id": "1", "price": "x", "size": "1", "side": "BUY"}]}',
    '{"event_type": "book", "asset_id": "1", "bids": "oops", "asks": []}',
    '[{"event_type": "last_trade_price", "asset_id": "1", "price": "NaN"}]',
    '{"event_type": "tick_size_change", "asset_id": "1", "new_tick_size": "0"}',
)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass(eq=False)
class Client:
    ws: WebSocket
    assets: set[str] = field(default_factory=set)
    custom: bool = False  # subscribed with custom_feature_enabled: gets market_resolved
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    dropped: int = 0

    def put(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped in (1, 10) or self.dropped % 10_000 == 0:
                logger.warning("market socket client too slow: {} frame(s) dropped", self.dropped)


class Hub:
    def __init__(self, form: PriceChangeForm = "current", batch: int = 1, garbage_every: int = 0,
                 book_tick_size: bool = True) -> None:
        self.clients: set[Client] = set()
        self.book_tick_size = book_tick_size  # false: book events without tick_size (venue.md M2)
        self.stall_until = 0.0
        self.stall_pong = False  # during a stall, still answer PING (a data-only stall)
        self.form: PriceChangeForm = form
        self.batch = max(1, batch)
        self.garbage_every = garbage_every  # one garbage frame after every N good ones; 0 = never
        self.frames_sent = 0
        self.withheld = 0  # frames a stall dropped: a test waits for its change to be lost, not for time
        self._legacy_turn = itertools.cycle((False, True))
        self._garbage = itertools.cycle(GARBAGE)

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self.stall_until

    def subscribed(self) -> set[str]:
        out: set[str] = set()
        for c in self.clients:
            out |= c.assets
        return out

    # ---- sending ----------------------------------------------------------------------------------
    def emit(self, asset_id: str, frame: dict[str, Any]) -> None:
        self.emit_many([(asset_id, frame)])

    def emit_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Send each (asset, event) to the clients subscribed to the asset: one event per frame, or
        arrays of up to ``batch`` events per client."""
        if not events or not self.clients:
            return
        if self.batch == 1:
            for asset_id, ev in events:
                text: str | None = None
                for c in self.clients:
                    if asset_id in c.assets:
                        text = text or _dumps(ev)
                        self._put(c, text)
            return
        for c in self.clients:
            mine = [ev for asset_id, ev in events if asset_id in c.assets]
            for i in range(0, len(mine), self.batch):
                self._put(c, _dumps(mine[i:i + self.batch]))

    def _put(self, c: Client, text: str) -> None:
        c.put(text)
        self.frames_sent += 1
        if self.garbage_every and self.frames_sent % self.garbage_every == 0:
            c.put(next(self._garbage))

    def market_resolved(self, market_id: str, condition_id: str, assets: list[str], winner: str,
                        winning_outcome: str, ts: float) -> int:
        """A ``market_resolved`` event to every custom-feature subscription holding one of
        ``assets``; returns how many got it."""
        text = _dumps({"event_type": "market_resolved", "id": market_id, "market": condition_id,
                       "assets_ids": assets, "winning_asset_id": winner, "winning_outcome": winning_outcome,
                       "timestamp": str(int(ts * 1000)), "tags": []})
        sent = 0
        for c in self.clients:
            if c.custom and c.assets.intersection(assets):
                self._put(c, text)
                sent += 1
        return sent

    def send_garbage(self, count: int) -> int:
        """``count`` garbage frames to every client now; returns the number of clients."""
        for c in self.clients:
            for _ in range(count):
                c.put(next(self._garbage))
        return len(self.clients)

    def price_changes(self, market: str, entries: list[dict[str, str]], ts_ms: str) -> list[tuple[str, dict[str, Any]]]:
        """Level changes as ``price_change`` events in the configured form, one event per asset (so
        each goes only to that asset's subscribers)."""
        grouped: dict[str, list[dict[str, str]]] = {}
        for e in entries:
            grouped.setdefault(e["asset_id"], []).append(e)
        out: list[tuple[str, dict[str, Any]]] = []
        for asset, es in grouped.items():
            if not (self.form == "legacy" or (self.form == "mixed" and next(self._legacy_turn))):
                out.append((asset, {"event_type": "price_change", "market": market, "timestamp": ts_ms,
                                    "price_changes": es}))
                continue
            changes = [{"price": e["price"], "side": e["side"], "size": e["size"]} for e in es]
            digest = hashlib.sha1(_dumps(changes).encode()).hexdigest()
            out.append((asset, {"event_type": "price_change", "asset_id": asset, "market": market,
                                "changes": changes, "timestamp": ts_ms, "hash": "0x" + digest[:16]}))
        return out

    # ---- faults ----------------------------------------------------------------------------------
    def stall(self, seconds: float, pong: bool = False) -> None:
        self.stall_until = time.monotonic() + seconds
        self.stall_pong = pong

    async def drop_all(self) -> int:
        return await close_all(self.clients, code=1012)

    # ---- a connection ----------------------------------------------------------------------------
    async def serve(self, ws: WebSocket, snapshot: Callable[[list[str]], list[dict[str, Any]]]) -> None:
        """One market-channel connection until it closes."""
        await ws.accept()
        client = Client(ws)
        self.clients.add(client)
        try:
            await run_connection(ws, client.queue, lambda text: self._on_message(client, text, snapshot),
                                 self._may_send)
        finally:
            self.clients.discard(client)

    def _on_message(self, client: Client, text: str,
                    snapshot: Callable[[list[str]], list[dict[str, Any]]]) -> None:
        if text.strip().upper() == "PING":
            client.put("PONG")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            client.put(_dumps({"error": "invalid json"}))
            return
        if not isinstance(msg, dict):
            return
        assets = [str(a) for a in msg.get("assets_ids") or msg.get("asset_ids") or []]
        op = str(msg.get("operation") or "").lower()
        if "custom_feature_enabled" in msg and op != "unsubscribe":
            client.custom = msg.get("custom_feature_enabled") is True
        if op == "unsubscribe":
            client.assets.difference_update(assets)
            return
        if op == "subscribe" or str(msg.get("type", "")).lower() == "market":
            new = [a for a in assets if a not in client.assets]
            client.assets.update(assets)
            if new and msg.get("initial_dump", True) is not False:
                books = snapshot(new)
                if not self.book_tick_size:
                    books = [{k: v for k, v in b.items() if k != "tick_size"} for b in books]
                if books:
                    client.put(_dumps(books))

    def _may_send(self, text: str) -> bool:
        # a stalled venue sends nothing; what it would have sent is lost
        if self.stalled and not (self.stall_pong and text == "PONG"):
            self.withheld += 1
            return False
        return True
