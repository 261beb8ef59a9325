"""LiveSource: the live-data (RTDS) socket as a signal source (A6). Owns the socket only.

Connect, subscribe to ``activity`` ``trades`` + ``orders_matched`` (the firehose; the caller
filters by ``proxyWallet``), send text ``ping`` every ``rtds_ping_interval_sec``, and let the
:class:`SilenceWatchdog` decide when a quiet socket is replaced: a frozen subscription is not
revived by resubscribing on the same socket, only by a new one (docs/venue.md L2).
Every loss reconnects with capped backoff and jitter. Frames are parsed here and handed over as
trades with their receive time; a bad frame is counted and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.signal_collector.watchdog import Action, SilenceWatchdog
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.config import CopytradeSection
from shared.venue.live_data import BadFrame, LiveTrade, parse_frame, subscribe_frame

TradesHandler = Callable[[list[LiveTrade], int], Awaitable[None]]
_NETWORK_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError)


@dataclass
class LiveCounters:
    connects: int = 0
    frames: int = 0
    trade_events: int = 0
    bad_events: int = 0
    silent_reconnects: int = 0  # sockets replaced because no data (or no pong) came
    last_data_ms: int = 0


class LiveSource:
    def __init__(self, url: str, config: Callable[[], CopytradeSection], backoff: Backoff,
                 on_trades: TradesHandler) -> None:
        self.url = url
        self.config = config  # read on every use: a config reload applies without a reconnect
        self.backoff = backoff
        self.on_trades = on_trades
        self.counters = LiveCounters()
        self.connected = False
        self._closing = asyncio.Event()
        self._ws: ClientConnection | None = None

    async def close(self) -> None:
        self._closing.set()
        if self._ws is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await self._ws.close()

    async def run(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            try:
                async with connect(self.url, ping_interval=20, ping_timeout=20, open_timeout=10,
                                   close_timeout=2, max_size=16 * 2**20) as ws:
                    self._ws, self.connected = ws, True
                    self.counters.connects += 1
                    await ws.send(subscribe_frame())
                    logger.info("live-data: connected to {}, subscribed to activity trades", self.url)
                    attempt = await self._read(ws, attempt)
            except InvalidURI:
                raise  # configuration error: retrying cannot help
            except _NETWORK_ERRORS as exc:
                logger.warning("live-data: connection lost: {}: {}", type(exc).__name__, exc)
            finally:
                self._ws, self.connected = None, False
            if self._closing.is_set():
                break
            attempt += 1
            delay = self.backoff.delay(min(attempt, 30))
            logger.info("live-data: reconnecting in {:.2f}s (attempt {})", delay, attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def _read(self, ws: ClientConnection, attempt: int) -> int:
        cfg = self.config()
        dog = SilenceWatchdog(cfg.rtds_silence_sec, cfg.rtds_ping_interval_sec)
        dog.connected(time.monotonic())
        keeper = asyncio.create_task(self._keep_alive(ws, dog))
        try:
            async for raw in ws:
                recv_ms = now_ms()
                self.counters.frames += 1
                text = raw if isinstance(raw, str) else raw.decode(errors="replace")
                try:
                    trades, bad = parse_frame(text)
                except BadFrame as exc:
                    self.counters.bad_events += 1
                    logger.warning("live-data: bad frame skipped: {}", exc)
                    dog.heard(time.monotonic())
                    continue
                self.counters.bad_events += len(bad)
                if trades or bad:
                    dog.data(time.monotonic())
                    attempt = 0  # data flows again: the next loss starts the backoff afresh
                    self.counters.last_data_ms = recv_ms
                else:
                    dog.heard(time.monotonic())
                if bad:
                    logger.warning("live-data: {} unreadable event(s) skipped, e.g. {}", len(bad), bad[0])
                if trades:
                    self.counters.trade_events += len(trades)
                    try:
                        await self.on_trades(trades, recv_ms)
                    except Exception:  # a handler bug must not take the socket down; the poller backs it up
                        logger.exception("live-data: trade handler failed")
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        return attempt

    async def _keep_alive(self, ws: ClientConnection, dog: SilenceWatchdog) -> None:
        last_ping = 0.0
        while True:
            cfg = self.config()
            dog.silence_sec, dog.ping_interval = cfg.rtds_silence_sec, cfg.rtds_ping_interval_sec
            await asyncio.sleep(min(cfg.rtds_ping_interval_sec, cfg.rtds_silence_sec / 4, 1.0))
            now = time.monotonic()
            action = dog.check(now)
            try:
                if action is Action.RECONNECT:
                    self.counters.silent_reconnects += 1
                    logger.warning("live-data: {}: replacing the socket", dog.why(now))
                    await ws.close()
                    return
                if now - last_ping >= cfg.rtds_ping_interval_sec:
                    last_ping = now
                    await ws.send("ping")
            except ConnectionClosed:
                return
