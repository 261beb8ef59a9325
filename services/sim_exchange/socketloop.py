"""The loop every sim socket runs: read text frames until the client goes, send from a queue beside it.

Each hub (market channel, live-data, user channel) keeps its own clients, subscriptions and
frames; this is only the part they share, so a socket closes the same way everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect


async def run_connection(ws: WebSocket, queue: asyncio.Queue[Any], on_text: Callable[[str], None],
                         may_send: Callable[[str], bool] = lambda _text: True) -> None:
    """Hand every received frame to ``on_text`` until the socket closes, while a task sends what is
    queued (``None`` ends it; a frame ``may_send`` refuses is dropped). Returns when the client is gone."""
    sender = asyncio.create_task(_send(ws, queue, may_send))
    try:
        while True:
            on_text(await ws.receive_text())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _send(ws: WebSocket, queue: asyncio.Queue[Any], may_send: Callable[[str], bool]) -> None:
    while True:
        text = await queue.get()
        if text is None:
            return
        if not may_send(text):
            continue
        try:
            await ws.send_text(text)
        except Exception:
            return


async def close_all(clients: Iterable[Any], code: int) -> int:
    """End every connection of a hub: its sender stops (``None`` queued) and the socket closes with
    ``code``. Each client has the ``ws`` and ``queue`` that :func:`run_connection` serves."""
    closing = list(clients)
    for c in closing:
        if not c.queue.full():
            c.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await c.ws.close(code=code)
    return len(closing)


def json_object(text: str) -> dict[str, Any] | None:
    """A frame's JSON object, or None when it is not one."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None
