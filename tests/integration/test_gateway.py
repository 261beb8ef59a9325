"""The gateway against a real redis-server and the sim exchange's market socket (B1-B4)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, write_config
from services.ws_gateway.service import WsGatewayService
from shared.config import load_settings
from shared.keys import REQUESTER_ARB_SCANNER, REQUESTER_ORCHESTRATOR, Keys
from shared.messages import Resolution, decode, stable_id
from shared.ticks import Tick


class TickListener:
    """Collects every tick published on the given tokens' channels."""

    def __init__(self, r: aioredis.Redis, keys: Keys, tokens: list[str]) -> None:
        self.pubsub = r.pubsub()
        self.channels = [keys.tick(t) for t in tokens]
        self.ticks: list[Tick] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TickListener:
        await self.pubsub.subscribe(*self.channels)
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for msg in self.pubsub.listen():
            if msg["type"] == "message":
                self.ticks.append(Tick.from_json(msg["data"]))

    def of(self, token: str) -> list[Tick]:
        return [t for t in self.ticks if t.token_id == token]

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.pubsub.aclose()


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim()


@pytest.fixture
def tokens(sim: SimExchangeProcess) -> list[str]:
    """One token of each of three different markets."""
    markets = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    return [str(m["tokens"][0]["token_id"]) for m in markets[:3]]


async def start_gateway(tmp_path: Path, sim: SimExchangeProcess, r: aioredis.Redis,
                        gateway: dict[str, Any] | None = None) -> tuple[WsGatewayService, asyncio.Task[None]]:
    cfg = write_config(tmp_path / "polyfleet.yaml", sim.port, {
        "gateway": {"reconcile_interval_sec": 30, "ping_interval_sec": 1.0, **(gateway or {})},
        "retry_strategy": {"initial_backoff_sec": 0.1, "max_backoff_sec": 1.0},
    })
    svc = WsGatewayService(load_settings(cfg, environ={}), "g1", redis=r)
    return svc, asyncio.create_task(svc.run())


@pytest.fixture
async def stopper() -> AsyncIterator[list[tuple[WsGatewayService, asyncio.Task[None]]]]:
    running: list[tuple[WsGatewayService, asyncio.Task[None]]] = []
    yield running
    for svc, task in running:
        svc.stop()
        await asyncio.wait_for(task, 10)


def put_book(sim: SimExchangeProcess, token: str, bids: list[tuple[float, float]],
             asks: list[tuple[float, float]]) -> None:
    body = {"bids": [{"price": str(p), "size": str(s)} for p, s in bids],
            "asks": [{"price": str(p), "size": str(s)} for p, s in asks]}
    httpx.put(f"{sim.url}/_sim/book/{token}", json=body, timeout=5).raise_for_status()


async def want(r: aioredis.Redis, keys: Keys, requester: str, *tokens: str, remove: bool = False) -> None:
    if remove:
        await r.srem(keys.gw_want(requester), *tokens)  # type: ignore[misc]
    else:
        await r.sadd(keys.gw_want(requester), *tokens)  # type: ignore[misc]
    await r.publish(keys.gw_notify(), "changed")


async def test_wanted_token_streams_ticks_that_follow_the_book(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tokens: list[str],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    a, b = tokens[0], tokens[1]
    put_book(sim, a, bids=[(0.40, 100), (0.42, 50), (0.41, 70)], asks=[(0.47, 30), (0.45, 10), (0.50, 5)])
    put_book(sim, b, bids=[(0.20, 10)], asks=[(0.30, 10)])
    listener = await TickListener(r, keys, [a, b]).start()
    svc, task = await start_gateway(tmp_path, sim, r)
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await want(r, keys, REQUESTER_ARB_SCANNER, b)  # the union of every requester's set

        async def a_hash() -> dict[str, str]:
            h: dict[str, str] = await r.hgetall(keys.book(a))  # type: ignore[misc]
            return h
        h = await eventually(a_hash, what="book hash of a")
        first = Tick.from_hash(h)
        assert first is not None
        assert (first.bid, first.bid_size, first.ask, first.ask_size) == (0.42, 50.0, 0.45, 10.0)
        assert first.ts_recv >= first.ts_event > 0
        published = await eventually(lambda: _async(listener.of(a)), what="tick on the channel")
        assert (published[-1].bid, published[-1].ask, published[-1].seq) == (0.42, 0.45, first.seq)
        await eventually(lambda: _async(listener.of(b)), what="tick of b")

        # a book change -> a new tick with a higher seq, and the hash follows
        put_book(sim, a, bids=[(0.43, 25)], asks=[(0.44, 15)])
        changed = await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.43]), what="new top")
        assert (changed[0].ask, changed[0].bid_size, changed[0].ask_size) == (0.44, 25.0, 15.0)
        assert changed[0].seq > first.seq
        seqs = [t.seq for t in listener.of(a)]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        h = await a_hash()
        assert (h["bid"], h["ask"], h["seq"]) == ("0.43", "0.44", str(changed[-1].seq))

        # removing b unsubscribes it; a keeps streaming on the same connection
        await want(r, keys, REQUESTER_ARB_SCANNER, b, remove=True)
        await eventually(lambda: _async(svc.wanted == {a}), what="b dropped")
        assert [c.tokens for c in svc.conns] == [{a}]
        # Barrier: two more frames (PONGs, a is frozen) mean a PING sent after the unsubscribe was
        # answered, so the sim has read the unsubscribe before we change b's book.
        frames = svc.conns[0].frames
        await eventually(lambda: _async(svc.conns[0].frames >= frames + 2), what="two PONGs")
        b_seq = listener.of(b)[-1].seq
        put_book(sim, b, bids=[(0.25, 10)], asks=[(0.26, 10)])
        put_book(sim, a, bids=[(0.39, 1)], asks=[(0.44, 15)])  # same socket, after b's change
        await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.39]), what="a after b's change")
        assert listener.of(b)[-1].seq == b_seq
        assert svc.books.untracked == 0  # the venue stopped sending b: the unsubscribe reached it
        assert (await r.hget(keys.book(b), "stale")) == "1"  # type: ignore[misc]
        assert svc.parse_errors == 0
    finally:
        await listener.close()


async def test_ws_drop_reconnects_and_ticks_resume(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tokens: list[str],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    a = tokens[0]
    put_book(sim, a, bids=[(0.30, 10)], asks=[(0.35, 10)])
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r)
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        before = listener.of(a)[-1].seq
        resp = httpx.post(f"{sim.url}/_sim/fault", json={"kind": "ws_drop"}, timeout=5).json()
        assert resp["closed"] == 1
        await eventually(lambda: _async(svc.conns[0].connects == 2 and svc.conns[0].connected), what="reconnect")
        put_book(sim, a, bids=[(0.31, 10)], asks=[(0.35, 10)])
        after = await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.31]), what="tick after drop")
        assert after[0].seq > before

        async def beat() -> dict[str, Any]:
            raw = await r.get(keys.health("ws_gateway", "g1"))
            summary: dict[str, Any] = json.loads(raw) if raw else {}
            return summary if summary.get("reconnects") == 1 else {}
        summary = await eventually(beat, what="heartbeat after the reconnect")
        assert (summary["connections"], summary["connected"], summary["tokens"]) == (1, 1, 1)
        assert summary["ticks"] >= 2
        assert summary["parse_errors"] == 0
    finally:
        await listener.close()


async def test_silent_stall_is_detected_and_the_connection_replaced(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tokens: list[str],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    a = tokens[0]
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"ping_interval_sec": 0.5})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        # the venue keeps the socket open but sends nothing, not even PONG
        httpx.post(f"{sim.url}/_sim/fault", json={"kind": "ws_stall", "seconds": 2.0}, timeout=5).raise_for_status()
        await eventually(lambda: _async(svc.conns[0].connects >= 2), timeout=10, what="stall detected")
        put_book(sim, a, bids=[(0.33, 3)], asks=[(0.36, 4)])
        await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.33]), what="tick after the stall")
    finally:
        await listener.close()


async def test_tick_size_change_reaches_subscribers_and_the_book_is_reseeded(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tokens: list[str],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    a = tokens[0]
    put_book(sim, a, bids=[(0.40, 10)], asks=[(0.45, 10)])
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"ping_interval_sec": 0.5})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        httpx.post(f"{sim.url}/_sim/fault", json={"kind": "tick_size_change", "token_id": a, "new_tick_size": 0.001},
                   timeout=5).raise_for_status()
        cleared = await eventually(lambda: _async([t for t in listener.of(a) if t.tick_size == 0.001]),
                                   what="tick with the new tick size")
        assert (cleared[0].bid, cleared[0].ask) == (None, None)  # the old grid's book is dropped
        reseeded = await eventually(
            lambda: _async([t for t in listener.of(a) if t.tick_size == 0.001 and t.bid is not None]),
            what="book reseeded on the new grid")
        assert (reseeded[0].bid, reseeded[0].ask) == (0.40, 0.45)
        assert "bid" in await r.hgetall(keys.book(a))  # type: ignore[misc]
    finally:
        await listener.close()


async def test_tokens_are_sharded_over_connections(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, tokens: list[str],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    listener = await TickListener(r, keys, tokens).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"max_tokens_per_connection": 2})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, *tokens)
        await eventually(lambda: _async(all(listener.of(t) for t in tokens)), what="ticks of every token")
        assert sorted(len(c.tokens) for c in svc.conns) == [1, 2]
        assert set().union(*(c.tokens for c in svc.conns)) == set(tokens)
        await want(r, keys, REQUESTER_ORCHESTRATOR, *tokens, remove=True)
        await eventually(lambda: _async(svc.conns == []), what="every connection closed")
    finally:
        await listener.close()


async def _async(value: Any) -> Any:
    return value


async def test_a_book_without_tick_size_takes_the_tick_from_the_rest_book(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess],
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    # the venue's socket book may carry no tick_size (docs/venue.md M2): a 0.001 market must not be
    # streamed with the default 0.01 tick
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = start_sim({"sim_exchange": {"ws_book_tick_size": False}})
    a = str(httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()[0]["tokens"][0]["token_id"])
    httpx.post(f"{sim.url}/_sim/fault", json={"kind": "tick_size_change", "token_id": a, "new_tick_size": 0.001},
               timeout=5).raise_for_status()  # before anyone subscribed: no tick_size_change reaches the gateway
    put_book(sim, a, bids=[(0.402, 10)], asks=[(0.407, 10)])
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r)
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        fine = await eventually(lambda: _async([t for t in listener.of(a) if t.tick_size == 0.001]),
                                what="a tick with the market's own tick size")
        assert (fine[0].bid, fine[0].ask) == (0.402, 0.407)
        assert float(await r.hget(keys.book(a), "tick_size")) == 0.001  # type: ignore[misc,arg-type]
        assert a not in svc.books.tick_unknown
    finally:
        await listener.close()


async def test_market_resolved_reaches_the_resolutions_stream(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess,
        stopper: list[tuple[WsGatewayService, asyncio.Task[None]]], monkeypatch: pytest.MonkeyPatch) -> None:
    # the venue sends market_resolved only to a subscription made with custom_feature_enabled (M1)
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    market = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()[0]
    yes, no = (str(t["token_id"]) for t in market["tokens"])
    svc, task = await start_gateway(tmp_path, sim, r)
    stopper.append((svc, task))
    await want(r, keys, REQUESTER_ORCHESTRATOR, no)
    await eventually(lambda: _async(svc.books.ready(no)), what="subscribed and seeded")
    httpx.post(f"{sim.url}/_sim/resolve", json={"condition_id": market["condition_id"], "winner": "Yes"},
               timeout=5).raise_for_status()
    entries = await eventually(lambda: r.xrange(keys.resolutions()), what="a resolution on pf:resolutions")
    (_, fields), = entries
    msg = decode(fields)
    assert isinstance(msg, Resolution)
    assert (msg.condition_id, msg.market_id, msg.token_ids, msg.winning_token, msg.winning_outcome) == (
        market["condition_id"], market["gamma_id"], [yes, no], yes, "Yes")
    assert msg.id == stable_id("resolution", market["condition_id"])
