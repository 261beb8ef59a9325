"""Websocket push: one reader task per API process follows the streams with plain XREAD (no
consumer group: every API process, and every client, sees everything) and fans each entry out to
the connected clients' queues.

Messages (JSON): ``{"type": "event" | "fill" | "order" | "opportunity", "entry": {...}}`` for each
stream entry, and ``{"type": "token", "token": {...}}`` (the token's current view, as
``GET /api/tokens/{id}`` minus the detail) after every ``token.*`` event, i.e. every lifecycle
change. A client that cannot keep up loses its oldest queued messages and gets a
``{"type": "lagged", "dropped": N}`` notice instead of slowing everyone down.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from services.api.reads import entry, token_view
from shared.keys import Keys

QUEUE_MAX = 1000


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self.dropped = 0

    def offer(self, msg: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(msg)

    async def next(self) -> dict[str, Any]:
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            return {"type": "lagged", "dropped": dropped}
        return await self.queue.get()


class LiveHub:
    def __init__(self, r: aioredis.Redis, k: Keys, poll_ms: int = 500, max_clients: int = 50) -> None:
        self.r = r
        self.k = k
        self.poll_ms = poll_ms
        self.max_clients = max_clients
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._streams = {k.events(): "event", k.fills(): "fill", k.orders(): "order",
                         k.opportunities(): "opportunity"}
        self.ready = asyncio.Event()

    def subscribe(self) -> Subscriber | None:
        if len(self.subscribers) >= self.max_clients:
            return None
        sub = Subscriber()
        self.subscribers.add(sub)
        if self._task is None or self._task.done():
            self.ready.clear()
            self._task = asyncio.create_task(self._run())
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _publish(self, msg: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            sub.offer(msg)

    async def _start_ids(self) -> dict[str, str]:
        pipe = self.r.pipeline(transaction=False)
        for stream in self._streams:
            pipe.xrevrange(stream, count=1)
        rows = await pipe.execute()
        return {stream: (row[0][0] if row else "0-0") for stream, row in zip(self._streams, rows, strict=True)}

    async def _run(self) -> None:
        ids: dict[str, str] | None = None
        while True:
            try:
                if ids is None:
                    ids = await self._start_ids()
                    self.ready.set()
                if not self.subscribers:
                    await asyncio.sleep(self.poll_ms / 1000)
                    continue
                reply = await self.r.xread(ids, count=200, block=self.poll_ms)  # type: ignore[arg-type]
                for stream, rows in reply or []:
                    for entry_id, fields in rows:
                        ids[stream] = entry_id
                        await self._fan_out(self._streams[stream], entry_id, fields)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("websocket feed: Redis error {}; retrying", exc)
                await asyncio.sleep(1.0)

    async def _fan_out(self, kind: str, entry_id: str, fields: dict[str, str]) -> None:
        self._publish({"type": kind, "entry": entry(entry_id, fields)})
        token_id = fields.get("token_id", "")
        if kind == "event" and token_id and fields.get("kind", "").startswith("token."):
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(self.k.token(token_id))
            pipe.hgetall(self.k.book(token_id))
            h, book = await pipe.execute()
            if h:
                self._publish({"type": "token", "token": token_view(token_id, h, book)})
