"""The collector's chain source against a real redis-server and a real sim_exchange process.

The sim puts every trade of its Data API on its chain (OrderFilled logs, docs/venue.md K1-K4); the
collector reads them over JSON-RPC: eth_getLogs sweeps over HTTP, eth_subscribe over a websocket.
The poller is held back (one poll an hour) where a test wants the chain alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, running, write_config
from services.signal_collector.service import SignalCollectorService
from services.signal_collector.signals import signal_id
from shared.config import load_settings
from shared.keys import Keys
from shared.venue.data_api import parse_trade
from tests.integration.collector_support import signals

W1 = "0x1111111111111111111111111111111111111111"
W2 = "0x2222222222222222222222222222222222222222"
ALONE = {"poll_interval_sec": 3600}  # the poller's first poll only: what follows comes from the chain


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    monkeypatch.delenv("PF_POLYGON_RPC_URL", raising=False)


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim({"sim_exchange": {"rpc_max_log_blocks": 4}})  # as tight as a small provider plan


@pytest.fixture
def tokens(sim: SimExchangeProcess) -> dict[str, str]:
    """A YES token of a v1 (CTF exchange) and of a v2 (ExchangeV3) market."""
    markets = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    return {v: next(m["tokens"][0]["token_id"] for m in markets if m["version"] == v) for v in ("v1", "v2")}


def ws_url(sim: SimExchangeProcess) -> str:
    return f"ws://127.0.0.1:{sim.port}/_sim/rpc"


def collector(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis, copytrade: dict[str, Any],
              name: str = "polyfleet.yaml") -> SignalCollectorService:
    cfg = {"chain_enabled": True, "chain_poll_interval_sec": 0.2, "targets": [{"account": W1}, {"account": W2}],
           **copytrade}
    settings = load_settings(write_config(tmp_path / name, sim.port, {"copytrade": cfg}), {})
    return SignalCollectorService(settings, "t", redis=r)


def burst(sim: SimExchangeProcess, wallet: str, token: str, count: int, **kw: Any) -> None:
    body = {"wallet": wallet, "token": token, "count": count, "same_second": False, "spread_sec": 1, **kw}
    httpx.post(f"{sim.url}/_sim/burst", json=body, timeout=30).raise_for_status()


def rows(sim: SimExchangeProcess, wallet: str) -> list[dict[str, Any]]:
    """Every Data API row of the wallet, maker rows included (what the poller reads)."""
    got: list[dict[str, Any]] = httpx.get(f"{sim.url}/data-api/trades", timeout=10,
                                          params={"user": wallet, "takerOnly": "false", "limit": 10_000}).json()
    return got


def expected_ids(sim: SimExchangeProcess, *wallets: str) -> set[str]:
    """The ids the poller would give those rows."""
    return {signal_id(w, parse_trade(row)) for w in wallets for row in rows(sim, w)}


async def chain_ready(r: aioredis.Redis, keys: Keys, svc: SignalCollectorService | None = None) -> None:
    """The chain's first sweep has stored its block; with ``svc``, the poller's first poll of both
    targets is over too (what is posted afterwards is not the poller's for an hour under ``ALONE``)."""
    await eventually(lambda: r.exists(keys.chain_cursor()), timeout=20, what="the chain source's first sweep")
    if svc is not None:
        async def polled() -> bool:
            return svc.counters.polls >= 2
        await eventually(polled, timeout=20, what="the poller's first poll")


def head(sim: SimExchangeProcess) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    return int(httpx.post(f"{sim.url}/_sim/rpc", json=body, timeout=5).json()["result"], 16)


async def chain_cursor(r: aioredis.Redis, keys: Keys) -> int:
    return int(await r.hget(keys.chain_cursor(), "block") or 0)  # type: ignore[misc]


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_chain_alone_turns_maker_and_taker_fills_on_both_market_systems_into_signals(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, tokens: dict[str, str],
        transport: str) -> None:
    url = {"chain_rpc_url": ws_url(sim)} if transport == "ws" else {}  # http: the environment's rpc_url
    async with running(collector(tmp_path, sim, r, {**ALONE, **url})) as svc:
        await chain_ready(r, keys, svc)
        burst(sim, W1, tokens["v1"], 3)  # W1 took liquidity: the crowd's maker log names W1 as taker
        burst(sim, W2, tokens["v2"], 2, maker=True, side="SELL")  # W2's resting orders: its own maker logs
        burst(sim, W1, tokens["v2"], 2, maker=True)
        want = expected_ids(sim, W1, W2)
        assert len(want) == 7

        async def all_in() -> bool:
            return {s.id for s in await signals(r, keys)} == want
        await eventually(all_in, timeout=20, what="every fill as a chain signal")
        got = await signals(r, keys)
        assert {s.source for s in got} == {"chain"}
        assert sorted((s.account, s.side) for s in got) == sorted([(W1, "BUY")] * 5 + [(W2, "SELL")] * 2)
        assert {s.market_version for s in got} == {"v1", "v2"}  # token metadata found for both systems
        assert svc.chain is not None
        assert svc.chain.counters.subscribed is (transport == "ws")
        assert (svc.chain.counters.notifications > 0) is (transport == "ws")


async def test_all_three_sources_emit_each_trade_once(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, tokens: dict[str, str]) -> None:
    svc = collector(tmp_path, sim, r, {"poll_interval_sec": 0.2, "rtds_enabled": True, "chain_rpc_url": ws_url(sim)})
    async with running(svc):
        await chain_ready(r, keys)

        async def live() -> bool:
            return svc.live is not None and svc.live.connected
        await eventually(live, timeout=20, what="live-data socket")
        for i in range(4):
            burst(sim, W1 if i % 2 else W2, tokens["v1" if i < 2 else "v2"], 10, maker=i % 3 == 0, same_tx=i == 1)
        want = expected_ids(sim, W1, W2)
        assert len(want) == 40

        last_second = max(int(row["timestamp"]) for w in (W1, W2) for row in rows(sim, w))
        top = head(sim)

        async def every_source_offered_every_trade() -> bool:
            polled = [int(await r.hget(keys.cursor(w), "ts") or 0) for w in (W1, W2)]  # type: ignore[misc]
            assert svc.live is not None
            return (min(polled) >= last_second and await chain_cursor(r, keys) >= top
                    and svc.live.counters.trade_events >= 2 * len(want) and svc.counters.signals == len(want))
        await eventually(every_source_offered_every_trade, timeout=30, what="every source offering every trade")
        assert svc.counters.duplicates_dropped >= 2 * len(want)
        got = await signals(r, keys)
        assert len(got) == len(want)
        assert {s.id for s in got} == want
        by_source = {src: sum(1 for s in got if s.source == src) for src in ("poll", "rtds", "chain")}
        assert sum(by_source.values()) == len(want)


async def test_a_restart_resumes_from_the_stored_block(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, tokens: dict[str, str]) -> None:
    async with running(collector(tmp_path, sim, r, ALONE)) as svc:
        await chain_ready(r, keys, svc)
        burst(sim, W1, tokens["v1"], 3)
        first = expected_ids(sim, W1)

        async def taken() -> bool:
            return {s.id for s in await signals(r, keys)} == first
        await eventually(taken, timeout=20, what="the first burst")
        top = head(sim)

        async def past_it() -> bool:  # stopped before the cursor moved, the range would be read again
            return await chain_cursor(r, keys) >= top
        await eventually(past_it, timeout=20, what="the cursor past the first burst")
    stopped_at = await chain_cursor(r, keys)
    burst(sim, W1, tokens["v1"], 4, timestamp=int(time.time()) - 10)  # while no collector runs: 4 more blocks
    for w in (W1, W2):  # the poller starts afresh at "now": only the stored block can bring these back
        await r.delete(keys.cursor(w))
    async with running(collector(tmp_path, sim, r, ALONE, name="again.yaml")) as svc:
        both = expected_ids(sim, W1)
        assert len(both) == 7
        top = head(sim)

        async def all_taken() -> bool:
            return {s.id for s in await signals(r, keys)} == both and await chain_cursor(r, keys) >= top
        await eventually(all_taken, timeout=20, what="the fills made while the collector was down")
        assert svc.chain is not None
        assert svc.chain.counters.logs == 4 * 2  # the new blocks only: 2 logs name W1 in each, none re-read
        assert svc.chain.counters.cursor > stopped_at
    got = await signals(r, keys)
    assert len(got) == 7
    assert [s.source for s in got] == ["chain"] * 7


async def test_a_block_range_the_node_refuses_is_asked_in_smaller_pieces(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tmp_path: Path, tokens: dict[str, str]) -> None:
    async with running(collector(tmp_path, sim, r, {**ALONE, "chain_max_block_range": 100,
                                                     "chain_poll_interval_sec": 1.0})) as svc:
        await chain_ready(r, keys, svc)
        burst(sim, W1, tokens["v1"], 30)  # 30 transactions, 30 blocks, before the next sweep
        want = expected_ids(sim, W1)

        async def all_in() -> bool:
            return {s.id for s in await signals(r, keys)} == want
        await eventually(all_in, timeout=30, what="30 blocks through a node that serves 4 at a time")
        assert {s.source for s in await signals(r, keys)} == {"chain"}
        assert svc.chain is not None
        assert svc.chain.counters.range_refusals >= 1
        assert svc.chain.counters.span <= 4
        assert svc.chain.counters.errors == 0
