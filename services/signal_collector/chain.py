"""The chain source: followed wallets' fills from the exchanges' ``OrderFilled`` logs (Polygon JSON-RPC).

Two queries cover a wallet: the logs whose indexed ``maker`` is it and those whose ``taker`` is it
(topics AND across positions, so "maker OR taker" is two filters), on the three exchanges of the
environment (CTF, neg-risk CTF, ExchangeV3), both event shapes. :mod:`shared.venue.chain_fills`
turns them into the very :class:`Trade` rows the Data API lists, so the signal id is the poller's
and the live-data socket's and the seen-set emits each trade once, whichever source is first.

* **Sweeps** (always): every ``chain_poll_interval_sec``, ``eth_getLogs`` from the stored cursor + 1
  to the head less ``chain_confirmations``, at most ``chain_max_block_range`` blocks a request. A
  range the node refuses (too wide, too many logs) is halved and asked again; a node that says the
  range passes its head (a provider's nodes disagree on the head) is asked again next sweep. After
  each range is handed over whole, ``pf:chain:cursor`` moves to its last block: a restart resumes
  there, neither losing a block nor reading one twice (a crash between the two re-reads one range,
  which the seen-set absorbs). The first run starts at the head (history is not copied, A2).
* **Subscription** (a ``ws://``/``wss://`` URL, ``chain_confirmations: 0``): ``eth_subscribe``
  on the same two filters; each notification batch (a block's logs arrive together) becomes signals
  at once, and the sweeps stay as the backstop and the cursor. A node that does not offer
  subscriptions leaves the sweeps alone on that socket. The filters follow config reloads.

A block's time comes from ``eth_getBlockByNumber`` (logs carry no timestamp on every node), cached.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError
from websockets.exceptions import InvalidURI

from services.signal_collector.chain_rpc import HttpRpc, RpcError, RpcUnavailable, WsRpc, open_rpc
from services.signal_collector.targets import active
from shared.backoff import Backoff, honour_retry_after
from shared.clock import now_ms
from shared.config import CopytradeSection
from shared.keys import Keys
from shared.venue.chain_fills import (
    EXCHANGE_FIELDS,
    TOPICS,
    BadLog,
    OnchainFill,
    address_topic,
    decode_log,
    wallet_trades,
)
from shared.venue.data_api import Trade
from shared.venue.environment import VenueEnvironment

TradesHandler = Callable[[list[Trade], int], Awaitable[None]]
WALLETS_PER_FILTER = 1000  # a node's limit on the entries of one topic position (geth)
BLOCK_TIMES_KEPT = 4096
Rpc = HttpRpc | WsRpc


@dataclass
class ChainCounters:
    sweeps: int = 0
    logs: int = 0
    bad_logs: int = 0
    removed_logs: int = 0  # a reorg took them back after a notification (a signal cannot be)
    notifications: int = 0
    range_refusals: int = 0
    errors: int = 0
    head: int = 0
    cursor: int = 0
    span: int = 0  # the block range asked now
    subscribed: bool = False
    last_error: str = ""


def log_filters(exchanges: list[str], wallets: Sequence[str]) -> list[dict[str, Any]]:
    """The ``eth_getLogs``/``eth_subscribe`` filters of ``wallets`` as maker, then as taker."""
    out: list[dict[str, Any]] = []
    ordered = sorted(wallets)
    for i in range(0, len(ordered), WALLETS_PER_FILTER):
        chunk = [address_topic(w) for w in ordered[i:i + WALLETS_PER_FILTER]]
        out.append({"address": exchanges, "topics": [list(TOPICS), None, chunk]})
        out.append({"address": exchanges, "topics": [list(TOPICS), None, None, chunk]})
    return out


class ChainSource:
    def __init__(self, url: str, env: VenueEnvironment, config: Callable[[], CopytradeSection], backoff: Backoff,
                 redis: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, on_trades: TradesHandler) -> None:
        self.url = url
        self.exchanges = [env.address(f).lower() for f in EXCHANGE_FIELDS if env.config.get(f)]
        self.config = config  # read on every use: a reload applies without a reconnect
        self.backoff = backoff
        self.redis, self.keys, self.http = redis, keys, http
        self.on_trades = on_trades
        self.counters = ChainCounters(span=config().chain_max_block_range)
        self._max_range = config().chain_max_block_range
        self._closing = asyncio.Event()
        self._times: dict[int, int] = {}
        self._subs: dict[str, frozenset[str]] = {}  # subscription id -> the wallets it was made for
        self._offered = True

    @property
    def endpoint(self) -> str:
        """Scheme and host only: providers put their key in the URL's path or query."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}"

    async def close(self) -> None:
        self._closing.set()

    async def run(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            delay = 0.0
            try:
                rpc = await open_rpc(self.url, self.http)
                try:
                    await self._session(rpc)
                finally:
                    await rpc.close()
            except InvalidURI:
                raise  # configuration error: retrying cannot help
            except Exception as exc:  # a node, network, Redis error (or a bug) must not end the source
                attempt += 1
                self.counters.errors += 1
                self.counters.last_error = f"{type(exc).__name__}: {exc}"
                delay = self.backoff.delay(min(attempt, 30))
                if isinstance(exc, RpcUnavailable):
                    delay = honour_retry_after(delay, exc.retry_after, self.backoff.max_backoff_sec)
                expected = isinstance(exc, (RpcUnavailable, RpcError, RedisError, OSError))
                (logger.warning if expected else logger.exception)("chain: {}; again in {:.2f}s",
                                                                   self.counters.last_error, delay)
            else:
                attempt = 0
            finally:
                self._subs.clear()
                self.counters.subscribed = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)

    async def _session(self, rpc: Rpc) -> None:
        listener = asyncio.create_task(self._listen(rpc)) if isinstance(rpc, WsRpc) else None
        self._offered = True  # until the node refuses eth_subscribe on this socket
        try:
            while not self._closing.is_set():
                if isinstance(rpc, WsRpc) and self._offered:
                    await self._follow(rpc)
                await self.sweep(rpc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.config().chain_poll_interval_sec)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    # ---- subscriptions ----------------------------------------------------------------------------
    async def _follow(self, rpc: WsRpc) -> None:
        """Subscribe to the followed wallets' filters (again, when the wallets changed)."""
        cfg = self.config()
        wallets = frozenset(active(cfg.targets))
        if cfg.chain_confirmations > 0 or not wallets:
            wallets = frozenset()
        if set(self._subs.values()) == ({wallets} if wallets else set()):
            return
        for sid in list(self._subs):
            with contextlib.suppress(RpcError):
                await rpc.call("eth_unsubscribe", [sid])
            self._subs.pop(sid)
        self.counters.subscribed = False
        for flt in log_filters(self.exchanges, sorted(wallets)):
            try:
                self._subs[await rpc.subscribe(flt)] = wallets
            except RpcError as exc:  # the node offers no subscriptions: the sweeps carry on alone
                logger.warning("chain: eth_subscribe refused ({}); polling eth_getLogs only", exc)
                self._offered = False
                self._subs.clear()
                return
        self.counters.subscribed = bool(self._subs)

    async def _listen(self, rpc: WsRpc) -> None:
        """Notifications -> signals, a batch at a time (a block's logs come back to back)."""
        while True:
            batch = [await rpc.notifications.get()]
            await asyncio.sleep(0)
            while not rpc.notifications.empty():
                batch.append(rpc.notifications.get_nowait())
            recv = now_ms()
            logs = [log for sid, log in batch if sid in self._subs]
            self.counters.notifications += len(logs)
            try:
                await self._deliver(rpc, logs, recv)
            except (RpcUnavailable, RpcError, RedisError, OSError) as exc:  # the sweep takes these logs again
                logger.warning("chain: {} notified log(s) left to the sweep: {}", len(logs), exc)

    # ---- sweeps -----------------------------------------------------------------------------------
    async def _cursor(self, head: int) -> int:
        raw = await self.redis.hget(self.keys.chain_cursor(), "block")  # type: ignore[misc]
        if raw is not None:
            return int(raw)
        await self._store(head)  # first run: from now on (stored, so a restart does not skip ahead)
        logger.info("chain: first run, starting after block {}", head)
        return head

    async def _store(self, block: int) -> None:
        await self.redis.hset(self.keys.chain_cursor(), mapping={"block": str(block),  # type: ignore[misc]
                                                                 "updated_ms": str(now_ms())})
        self.counters.cursor = block

    async def sweep(self, rpc: Rpc) -> None:
        """Every block from the cursor to the head (less the confirmations), taken whole, in order."""
        cfg = self.config()
        if cfg.chain_max_block_range != self._max_range:  # a reload may widen it again
            self._max_range = self.counters.span = cfg.chain_max_block_range
        head = int(await rpc.call("eth_blockNumber", []), 16)
        self.counters.head = head
        last = head - cfg.chain_confirmations
        start = await self._cursor(last) + 1
        self.counters.sweeps += 1
        wallets = sorted(active(cfg.targets))
        while start <= last and not self._closing.is_set():
            end = min(last, start + self.counters.span - 1)
            try:
                logs = [log for flt in log_filters(self.exchanges, wallets)
                        for log in await rpc.call("eth_getLogs", [{**flt, "fromBlock": hex(start),
                                                                  "toBlock": hex(end)}])]
            except RpcError as exc:
                if "head" in exc.message.lower():
                    return  # this node is behind the one that gave the head: next sweep
                if end == start:
                    raise
                self.counters.range_refusals += 1
                self.counters.span = max(1, (end - start + 1) // 2)
                logger.info("chain: eth_getLogs over {} blocks refused ({}); asking {} at a time",
                            end - start + 1, exc.message, self.counters.span)
                continue
            await self._deliver(rpc, logs, now_ms())
            await self._store(end)
            start = end + 1

    # ---- logs -> trades ---------------------------------------------------------------------------
    async def _block_times(self, rpc: Rpc, blocks: set[int]) -> dict[int, int]:
        for b in sorted(blocks - set(self._times)):
            got = await rpc.call("eth_getBlockByNumber", [hex(b), False])
            if not isinstance(got, dict) or "timestamp" not in got:
                raise RpcUnavailable(f"block {b} is not known to the node yet")
            self._times[b] = int(str(got["timestamp"]), 16)
        while len(self._times) > BLOCK_TIMES_KEPT:
            self._times.pop(next(iter(self._times)))
        return {b: self._times[b] for b in blocks}

    async def _deliver(self, rpc: Rpc, logs: list[dict[str, Any]], recv_ms: int) -> None:
        fills: dict[tuple[str, int], OnchainFill] = {}
        for log in logs:
            try:
                fill = decode_log(log)
            except BadLog as exc:
                self.counters.bad_logs += 1
                logger.warning("chain: unreadable log skipped: {}", exc)
                continue
            fills[(fill.tx_hash, fill.log_index)] = fill  # a log of two followed wallets comes twice
        self.counters.logs += len(fills)
        self.counters.removed_logs += sum(f.removed for f in fills.values())
        followed = set(active(self.config().targets))
        ordered = sorted(fills.values(), key=lambda f: (f.block, f.log_index))
        involved = sorted({a for f in ordered for a in (f.maker, f.taker)} & followed)
        if not involved:
            return
        times = await self._block_times(rpc, {f.block for f in ordered})
        trades = [t for account in involved for t in wallet_trades(account, ordered, times)]
        if trades:
            await self.on_trades(trades, recv_ms)
