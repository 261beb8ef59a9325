"""The market websocket hub: subscriptions, per-client send queues, drop and stall faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from loguru import logger

QUEUE_MAX = 10_000


@dataclass(eq=False)
class Client:
    ws: WebSocket
    assets: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))

    def put(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning("market socket client too slow: dropping a frame")


class Hub:
    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.stall_until = 0.0

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self.stall_until

    def emit(self, asset_id: str, frame: dict[str, Any]) -> None:
        text: str | None = None
        for c in self.clients:
            if asset_id in c.assets:
                text = text or json.dumps(frame, separators=(",", ":"))
                c.put(text)

    def stall(self, seconds: float) -> None:
        self.stall_until = time.monotonic() + seconds

    async def drop_all(self) -> int:
        clients = list(self.clients)
        for c in clients:
            if not c.queue.full():
                c.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await c.ws.close(code=1012)
        return len(clients)

    async def serve(self, ws: WebSocket, snapshot: Callable[[list[str]], list[dict[str, Any]]]) -> None:
        """One market-channel connection until it closes."""
        await ws.accept()
        client = Client(ws)
        self.clients.add(client)
        sender = asyncio.create_task(self._sender(client))
        try:
            while True:
                text = await ws.receive_text()
                if text.strip().upper() == "PING":
                    client.put("PONG")
                    continue
                self._on_message(client, text, snapshot)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _on_message(self, client: Client, text: str,
                    snapshot: Callable[[list[str]], list[dict[str, Any]]]) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            client.put(json.dumps({"error": "invalid json"}))
            return
        if not isinstance(msg, dict):
            return
        assets = [str(a) for a in msg.get("assets_ids") or msg.get("asset_ids") or []]
        op = str(msg.get("operation") or "").lower()
        if op == "unsubscribe":
            client.assets.difference_update(assets)
            return
        if op == "subscribe" or str(msg.get("type", "")).lower() == "market":
            new = [a for a in assets if a not in client.assets]
            client.assets.update(assets)
            if new and msg.get("initial_dump", True) is not False:
                books = snapshot(new)
                if books:
                    client.put(json.dumps(books, separators=(",", ":")))

    async def _sender(self, client: Client) -> None:
        while True:
            text = await client.queue.get()
            if text is None:
                return
            if self.stalled:
                continue  # a stalled venue sends nothing; what it would have sent is lost
            try:
                await client.ws.send_text(text)
            except Exception:
                return
