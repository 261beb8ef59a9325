"""A minimal RTDS ("live-data") socket: topic ``activity``, types ``trades`` and ``orders_matched``.

Subscribe with ``{"action":"subscribe","subscriptions":[{"topic":"activity","type":"trades",
"filters":"{\\"event_slug\\":\\"...\\"}"}]}`` (``type`` ``trades``, ``orders_matched`` or ``*``;
filters optional; ``market_slug`` also works; no filter = the whole firehose). Every trade goes
out once per subscribed type as ``{"topic","type","timestamp"(ms),"payload":<trade row>,
"connection_id"}``, so a client on both types sees each trade twice, as on the real feed. Text
``ping``/``PING`` is answered with ``pong``/``PONG``.

Lapses, as the real feed has them (reference §5.3), are faults:

* :meth:`LiveHub.lapse` ``mode="silent"``: every current socket freezes: it stays open and keeps
  answering pings but delivers nothing more, resubscribing included; only a new socket gets data
  again (the venue's frozen connection, docs/venue.md L2);
* ``mode="mute"``: the given types deliver nothing for ``seconds`` (``trades`` stopped while
  ``orders_matched`` went on);
* :meth:`LiveHub.drop_all`: close every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket

from services.sim_exchange.socketloop import json_object, run_connection

TYPES = ("trades", "orders_matched")


@dataclass(eq=False)
class LiveClient:
    ws: WebSocket
    conn_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # (type, filter) per activity subscription; the filter has event_slug / market_slug or nothing
    subs: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(10_000))
    frozen: bool = False  # a silent lapse: open, answering pings, delivering nothing for good

    @property
    def filters(self) -> list[dict[str, str]]:
        return [f for _, f in self.subs]

    def wants(self, kind: str, row: dict[str, Any]) -> bool:
        for t, f in self.subs:
            if t != kind:
                continue
            if ("event_slug" not in f or f["event_slug"] == row.get("eventSlug")) and \
                    ("market_slug" not in f or f["market_slug"] == row.get("slug")):
                return True
        return False


class LiveHub:
    def __init__(self) -> None:
        self.clients: set[LiveClient] = set()
        self.muted_until: dict[str, float] = {}  # type -> monotonic time it delivers again
        self.dropped_frames = 0  # frames a full client queue could not take

    def push(self, row: dict[str, Any]) -> None:
        now = time.monotonic()
        stamp = int(time.time() * 1000)
        for kind in TYPES:
            if self.muted_until.get(kind, 0.0) > now:
                continue
            for c in self.clients:
                if c.frozen or not c.wants(kind, row):
                    continue
                if c.queue.full():
                    self.dropped_frames += 1
                    continue
                frame = {"topic": "activity", "type": kind, "timestamp": stamp, "payload": row,
                         "connection_id": c.conn_id}
                c.queue.put_nowait(json.dumps(frame, separators=(",", ":")))

    def lapse(self, mode: str, seconds: float = 0.0, types: list[str] | None = None) -> int:
        """Start a lapse; returns the clients (silent) or types (mute) affected."""
        if mode == "silent":
            for c in self.clients:
                c.frozen = True
            return len(self.clients)
        if mode == "mute":
            kinds = [t for t in (types or list(TYPES)) if t in TYPES]
            for t in kinds:
                self.muted_until[t] = time.monotonic() + seconds
            return len(kinds)
        raise ValueError(f"unknown lapse mode {mode!r}: expected silent or mute")

    async def drop_all(self) -> int:
        closed = 0
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001)
                closed += 1
        return closed

    def clear(self) -> None:
        self.muted_until.clear()

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        client = LiveClient(ws)
        self.clients.add(client)
        try:
            await run_connection(ws, client.queue, lambda text: self._on_message(client, text))
        finally:
            self.clients.discard(client)

    @staticmethod
    def _on_message(client: LiveClient, text: str) -> None:
        if text.strip().lower() == "ping":
            client.queue.put_nowait("PONG" if text.strip() == "PING" else "pong")
            return
        msg = json_object(text)
        if msg is None:
            return
        for sub in msg.get("subscriptions") or []:
            if not isinstance(sub, dict) or sub.get("topic") != "activity":
                continue
            kind = sub.get("type")
            kinds = list(TYPES) if kind == "*" else [kind] if kind in TYPES else []
            raw = sub.get("filters") or "{}"
            try:
                filt = json.loads(raw) if isinstance(raw, str) else dict(raw)
            except ValueError:
                filt = {}
            if not isinstance(filt, dict):
                filt = {}
            filt = {k: str(v) for k, v in filt.items() if k in ("event_slug", "market_slug")}
            for k in kinds:
                if msg.get("action") == "unsubscribe":
                    client.subs = [s for s in client.subs if s != (k, filt)]
                elif (k, filt) not in client.subs:
                    client.subs.append((k, filt))


async def serve(ws: WebSocket, hub: LiveHub) -> None:
    await hub.serve(ws)
