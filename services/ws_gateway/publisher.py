"""Ticks out to Redis: PUBLISH on ``tick:{token}`` and HSET of ``book:{token}``, pipelined (B3).

Why not redis-py's pipeline: at thousands of ticks a second its per-command Python work (~40 us a
tick for PUBLISH + HSET, measured) would be most of the gateway's CPU. This writes on one raw
connection of its own (same server, credentials and database as the service's client), with
commands packed by hiredis and replies parsed by hiredis -- ~6 us a tick.

Batching: :meth:`submit` only queues; the run loop sends whatever accumulated while the previous
batch was on the wire, so at low rates a tick costs one round trip and at high rates the batches
grow by themselves. Every tick is published (seq stays contiguous for subscribers); the hash gets
only the newest tick of each token in a batch.

Backpressure: the frame path is cheaper to run than to publish, and asyncio would let the sockets
starve this task (a backlog of seconds, measured). :attr:`room` is cleared above ``HIGH_WATER``
queued ticks and set again below ``LOW_WATER``; the sockets wait on it, so the venue's TCP stream
slows down instead of our queue growing. While Redis is unreachable, room stays open (the books
must stay current) and the oldest queued ticks are dropped past ``max_pending``.

Ticks are lossy by design when Redis is down (a later change carries the whole top again); after a
reconnect :attr:`reconnected` is set so the service rewrites every token's latest tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from loguru import logger

from shared.backoff import Backoff
from shared.keys import Keys
from shared.ticks import Tick

_OPTIONAL = ("bid", "ask", "last")  # absent from the hash when None: stale values are deleted
BATCH_MAX = 2_000  # ticks per write: bounds one batch's latency and memory
HIGH_WATER = 500  # queued ticks: above, the sockets stop reading until the queue is below LOW_WATER
LOW_WATER = 100


def _pack(*args: str) -> bytes:
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # stub says 1-tuple; any length works
    return packed


class TickPublisher:
    def __init__(self, redis: aioredis.Redis, keys: Keys, backoff: Backoff | None = None,
                 on_published: Callable[[list[tuple[Tick, int]], int], None] | None = None) -> None:
        self._conn_kwargs: dict[str, Any] = dict(redis.connection_pool.connection_kwargs)
        self._ssl = "ssl" in redis.connection_pool.connection_class.__name__.lower()
        self.keys = keys
        self.backoff = backoff or Backoff(initial_backoff_sec=0.1, max_backoff_sec=2.0)
        self.on_published = on_published  # (batch of (tick, receive ns), ns when Redis acknowledged it)
        self._pending: deque[tuple[Tick, int]] = deque()
        self._wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = hiredis.Reader()
        self.published = 0
        self.batches = 0
        self.errors = 0  # failed batches (their ticks are lost) and error replies
        self.dropped = 0
        self.reconnected = False
        self.max_pending = 200_000  # beyond this Redis cannot keep up: drop the oldest

    def submit(self, ticks: list[Tick], recv_ns: int = 0) -> None:
        """Queue ticks; ``recv_ns`` (``time.perf_counter_ns()`` when their frame arrived) times the hop."""
        self._pending.extend((t, recv_ns) for t in ticks)
        if len(self._pending) > self.max_pending:
            over = len(self._pending) - self.max_pending
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
        if len(self._pending) > HIGH_WATER and self._writer is not None:
            self.room.clear()
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connect()
                attempt = 0
                while True:
                    if not self._pending:
                        self._wake.clear()
                        await self._wake.wait()
                    await self._send_batch()
            except (OSError, ConnectionError, hiredis.ProtocolError, _ReplyError) as exc:
                attempt += 1
                self.errors += 1
                self.reconnected = True
                self.room.set()
                delay = self.backoff.delay(min(attempt, 30))
                logger.warning("tick publisher: {}: {}; reconnecting in {:.2f}s", type(exc).__name__, exc, delay)
                await self._close()
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                await self._close()
                raise

    async def _connect(self) -> None:
        kw = self._conn_kwargs
        if kw.get("path"):
            reader, writer = await asyncio.open_unix_connection(kw["path"])
        else:
            ctx = ssl.create_default_context() if self._ssl else None
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(kw.get("host", "127.0.0.1"), int(kw.get("port", 6379)), ssl=ctx), 10)
        self._reader, self._writer = reader, writer
        self._parser = hiredis.Reader()
        setup: list[bytes] = []
        if kw.get("password"):
            user = kw.get("username")
            setup.append(_pack("AUTH", user, kw["password"]) if user else _pack("AUTH", kw["password"]))
        if int(kw.get("db") or 0):
            setup.append(_pack("SELECT", str(kw["db"])))
        if setup:
            writer.write(b"".join(setup))
            await self._replies(len(setup), strict=True)

    async def _close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _send_batch(self) -> None:
        writer = self._writer
        if writer is None:
            raise ConnectionError("not connected")
        n = min(len(self._pending), BATCH_MAX)
        batch = [self._pending.popleft() for _ in range(n)]
        if len(self._pending) < LOW_WATER:
            self.room.set()
        newest: dict[str, Tick] = {}
        parts: list[bytes] = []
        tick_channel, book_key = self.keys.tick, self.keys.book
        for t, _ in batch:
            parts.append(_pack("PUBLISH", tick_channel(t.token_id), t.to_json()))
            newest[t.token_id] = t
        commands = n
        for t in newest.values():
            key = book_key(t.token_id)
            gone = [f for f, v in zip(_OPTIONAL, (t.bid, t.ask, t.last), strict=True) if v is None]
            if gone:
                parts.append(_pack("HDEL", key, *gone))
                commands += 1
            parts.append(_pack("HSET", key, *t.hash_args()))
            commands += 1
        writer.write(b"".join(parts))
        try:
            await self._replies(commands, strict=False)
        except BaseException:
            self._requeue_front(batch)  # unknown fate: send again after the reconnect (seq dedups)
            raise
        self.published += n
        self.batches += 1
        if self.on_published is not None:
            self.on_published(batch, time.perf_counter_ns())

    def _requeue_front(self, batch: list[tuple[Tick, int]]) -> None:
        self._pending.extendleft(reversed(batch))

    async def _replies(self, count: int, strict: bool) -> None:
        reader = self._reader
        if reader is None:
            raise ConnectionError("not connected")
        parser = self._parser
        while count:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            parser.feed(data)
            while count and (reply := parser.gets()) is not False:
                count -= 1
                if isinstance(reply, hiredis.ReplyError):
                    if strict:
                        raise _ReplyError(str(reply))
                    self.errors += 1
                    logger.warning("tick publisher: Redis replied {}", reply)


class _ReplyError(Exception):
    """AUTH/SELECT refused: reconnecting with backoff is all we can do (and the log says why)."""
