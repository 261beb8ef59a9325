"""A minimal RTDS ("live-data") socket: topic ``activity`` / type ``trades`` pushes Data-API trade rows.

Subscribe with ``{"action":"subscribe","subscriptions":[{"topic":"activity","type":"trades",
"filters":"{\\"event_slug\\":\\"...\\"}"}]}`` (filters optional; ``market_slug`` also works).
Frames: ``{"topic","type","timestamp"(ms),"payload":<trade row>,"connection_id"}``. Text ``ping``/``PING``
is answered with ``pong``/``PONG``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect


@dataclass(eq=False)
class LiveClient:
    ws: WebSocket
    conn_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    filters: list[dict[str, str]] = field(default_factory=list)  # one per activity subscription
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(10_000))

    def wants(self, row: dict[str, Any]) -> bool:
        for f in self.filters:
            if ("event_slug" not in f or f["event_slug"] == row.get("eventSlug")) and \
                    ("market_slug" not in f or f["market_slug"] == row.get("slug")):
                return True
        return False


class LiveHub:
    def __init__(self) -> None:
        self.clients: set[LiveClient] = set()

    def push(self, row: dict[str, Any]) -> None:
        for c in self.clients:
            if c.wants(row) and not c.queue.full():
                frame = {"topic": "activity", "type": "trades", "timestamp": int(time.time() * 1000),
                         "payload": row, "connection_id": c.conn_id}
                c.queue.put_nowait(json.dumps(frame, separators=(",", ":")))

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        client = LiveClient(ws)
        self.clients.add(client)
        sender = asyncio.create_task(self._sender(client))
        try:
            while True:
                text = await ws.receive_text()
                if text.strip().lower() == "ping":
                    client.queue.put_nowait("PONG" if text.strip() == "PING" else "pong")
                    continue
                self._on_message(client, text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    @staticmethod
    def _on_message(client: LiveClient, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        for sub in msg.get("subscriptions") or []:
            if not isinstance(sub, dict) or sub.get("topic") != "activity" or sub.get("type") not in ("trades", "*"):
                continue
            raw = sub.get("filters") or "{}"
            try:
                filt = json.loads(raw) if isinstance(raw, str) else dict(raw)
            except ValueError:
                filt = {}
            filt = {k: str(v) for k, v in filt.items() if k in ("event_slug", "market_slug")}
            if msg.get("action") == "unsubscribe":
                client.filters = [f for f in client.filters if f != filt]
            else:
                client.filters.append(filt)

    @staticmethod
    async def _sender(client: LiveClient) -> None:
        while True:
            text = await client.queue.get()
            try:
                await client.ws.send_text(text)
            except Exception:
                return


async def serve(ws: WebSocket, hub: LiveHub) -> None:
    await hub.serve(ws)
