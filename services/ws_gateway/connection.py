"""One market-channel websocket carrying a set of tokens (B1, B4).

It owns the socket's life: connect, subscribe to its tokens (the venue answers with a ``book``
dump, which reseeds the books), text ``PING`` every ``ping_interval``, live
subscribe/unsubscribe as its token set changes, and on any loss reconnect with backoff and
jitter. A connection that hears nothing at all (not even ``PONG``) for two ping intervals is
treated as stalled and reconnected; one that answers ``PONG`` but stopped delivering data is found
by the service (silent tokens checked against REST) and replaced with :meth:`reconnect`. Frames go
to ``on_frame(text, ts_recv_ms)``, a plain call (no await per frame); the socket never interprets
them, so a bad frame cannot kill it.

Every connect, first or re-, passes a shared :class:`ConnectGate`, which spaces connection opens
``gateway.connect_stagger_sec`` apart: opening ten sockets at once (or ten reconnecting after a
venue blip) is what trips the venue's rate limit.

A token whose book is still not seeded ``3 * ping_interval`` after we asked for it (the dump was
lost, e.g. sent into a stall, or a tick size change voided the book) is unsubscribed and
subscribed again on the open socket, which makes the venue send a fresh ``book``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from shared.backoff import Backoff
from shared.clock import now_ms
from shared.venue.market_ws import operation_message, subscribe_message

FrameHandler = Callable[[str, int], None]
LossHandler = Callable[[set[str]], None]
ReadyCheck = Callable[[str], bool]
_NETWORK_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError)


class ConnectGate:
    """Spaces connection opens at least ``stagger`` seconds apart, across every connection."""

    def __init__(self, stagger: float) -> None:
        self.stagger = stagger
        self._lock = asyncio.Lock()
        self._last = -1e9

    async def wait(self) -> None:
        async with self._lock:
            delay = self._last + self.stagger - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last = time.monotonic()


class MarketConnection:
    def __init__(self, name: str, url: str, ping_interval: float, backoff: Backoff,
                 on_frame: FrameHandler, on_loss: LossHandler, is_ready: ReadyCheck,
                 gate: ConnectGate | None = None, room: asyncio.Event | None = None) -> None:
        self.name = name
        self.url = url
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.on_frame = on_frame
        self.on_loss = on_loss
        self.is_ready = is_ready
        self.gate = gate or ConnectGate(0.0)
        self.room = room  # cleared while the tick publisher is backlogged: stop reading until set
        self.stalls = 0  # replaced for hearing nothing, not even PONG
        self.forced = 0  # replaced on the service's word (alive but not delivering data)
        self.snapshot_grace = 3 * ping_interval
        self.resyncs = 0
        self._asked: dict[str, float] = {}  # token -> when we last asked the venue for its book
        self.tokens: set[str] = set()
        self.connects = 0
        self.frames = 0
        self._ws: ClientConnection | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._last_heard = time.monotonic()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def set_tokens(self, tokens: set[str]) -> None:
        """Change the token set; on an open socket, tell the venue live."""
        add, remove = sorted(tokens - self.tokens), sorted(self.tokens - tokens)
        self.tokens = set(tokens)
        for t in remove:
            self._asked.pop(t, None)
        ws = self._ws
        if ws is None:
            self._wake.set()  # run() is waiting for tokens or will subscribe to the new set
            return
        # A failed send means the socket is going away; the reconnect subscribes to self.tokens.
        with contextlib.suppress(*_NETWORK_ERRORS):
            if remove:
                await ws.send(operation_message("unsubscribe", remove))
            if add:
                self._ask(add)
                await ws.send(operation_message("subscribe", add))

    async def reconnect(self, reason: str) -> None:
        """Drop the socket; run() reconnects, resubscribes and the venue's dump reseeds the books."""
        ws = self._ws
        if ws is None:
            return
        self.forced += 1
        logger.warning("{}: {}: reconnecting", self.name, reason)
        with contextlib.suppress(*_NETWORK_ERRORS):
            await ws.close()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await ws.close()

    async def run(self) -> None:
        attempt = 0
        while not self._closing:
            if not self.tokens:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.gate.wait()
            if self._closing:
                break
            try:
                async with connect(self.url, ping_interval=None, open_timeout=10, close_timeout=2,
                                   max_size=16 * 2**20) as ws:
                    self.connects += 1
                    # Published before the send, so a set_tokens() racing the send goes out after it.
                    self._ws = ws
                    self._ask(self.tokens)
                    await ws.send(subscribe_message(sorted(self.tokens)))
                    logger.info("{}: connected, subscribed to {} token(s)", self.name, len(self.tokens))
                    attempt = await self._read(ws, attempt)
            except InvalidURI:
                raise  # configuration error: retrying cannot help
            except _NETWORK_ERRORS as exc:
                logger.warning("{}: connection lost: {}: {}", self.name, type(exc).__name__, exc)
            finally:
                self._ws = None
                self.on_loss(set(self.tokens))
            if self._closing:
                break
            attempt += 1
            delay = self.backoff.delay(min(attempt, 30))
            logger.info("{}: reconnecting in {:.2f}s (attempt {})", self.name, delay, attempt)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)  # close() cuts the wait short

    async def _read(self, ws: ClientConnection, attempt: int) -> int:
        """Deliver frames until the socket ends; returns the backoff attempt count to go on with."""
        self._last_heard = time.monotonic()
        room = self.room
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for raw in ws:
                self._last_heard = time.monotonic()
                attempt = 0  # the venue talks to us again: the next loss starts the backoff afresh
                self.frames += 1
                text = raw if isinstance(raw, str) else raw.decode(errors="replace")
                try:
                    self.on_frame(text, now_ms())
                except Exception:  # a handler bug must not take the socket (and its tokens) down
                    logger.exception("{}: frame handler failed", self.name)
                if room is not None and not room.is_set():
                    await room.wait()
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
        return attempt

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if time.monotonic() - self._last_heard > 2 * self.ping_interval:
                logger.warning("{}: silent for {:.0f}s: reconnecting", self.name,
                               time.monotonic() - self._last_heard)
                self.stalls += 1
                await ws.close()
                return
            try:
                await ws.send("PING")
                await self._resync(ws)
            except ConnectionClosed:
                return

    def _ask(self, tokens: set[str] | list[str]) -> None:
        now = time.monotonic()
        for t in tokens:
            self._asked[t] = now

    async def _resync(self, ws: ClientConnection) -> None:
        now = time.monotonic()
        unseeded = sorted(t for t in self.tokens
                          if not self.is_ready(t) and now - self._asked.get(t, 0.0) > self.snapshot_grace)
        if not unseeded:
            return
        logger.info("{}: no book for {} token(s) since subscribing: asking again", self.name, len(unseeded))
        self.resyncs += len(unseeded)
        self._ask(unseeded)
        await ws.send(operation_message("unsubscribe", unseeded))
        await ws.send(operation_message("subscribe", unseeded))
