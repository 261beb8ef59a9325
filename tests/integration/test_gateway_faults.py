"""The gateway against a misbehaving venue (the sim's market socket): every price_change form,
array frames, garbage, data-only stalls, REST reseeds, stale marking, many tokens (B1-B5)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually
from services.ws_gateway.service import WsGatewayService
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.ticks import Tick
from tests.integration.test_gateway import TickListener, _async, put_book, start_gateway, stopper, want

__all__ = ["stopper"]  # the fixture, imported so pytest finds it here

Running = list[tuple[WsGatewayService, asyncio.Task[None]]]


def fault(sim: SimExchangeProcess, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{sim.url}/_sim/fault", json=body, timeout=5)
    resp.raise_for_status()
    out: dict[str, Any] = resp.json()
    return out


def all_tokens(sim: SimExchangeProcess) -> list[str]:
    markets = httpx.get(f"{sim.url}/_sim/markets", timeout=10).json()
    return [str(t["token_id"]) for m in markets for t in m["tokens"]]


def rest_tops(sim: SimExchangeProcess, tokens: list[str]) -> dict[str, tuple[float | None, float | None]]:
    books = httpx.post(f"{sim.url}/books", json=[{"token_id": t} for t in tokens], timeout=10).json()
    out = {}
    for b in books:
        bids = [float(lv["price"]) for lv in b["bids"]]
        asks = [float(lv["price"]) for lv in b["asks"]]
        out[b["asset_id"]] = (max(bids) if bids else None, min(asks) if asks else None)
    return out


async def hash_tops(r: aioredis.Redis, keys: Keys, tokens: list[str]) -> dict[str, tuple[float | None, float | None]]:
    out = {}
    for t in tokens:
        tick = Tick.from_hash(await r.hgetall(keys.book(t)))  # type: ignore[misc]
        out[t] = (tick.bid, tick.ask) if tick else (None, None)
    return out


@pytest.fixture
def quiet_sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    """No random walk: only what a test does moves a book."""
    return start_sim({"sim_exchange": {"tick_interval_ms": 600_000, "markets": 4}})


async def test_mixed_forms_arrays_and_garbage_keep_every_book_exact(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess],
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = start_sim({"sim_exchange": {"tick_interval_ms": 600_000, "markets": 10, "ws_price_change_form": "mixed",
                                      "ws_batch": 3, "ws_garbage_every": 7}})
    tokens = all_tokens(sim)
    svc, task = await start_gateway(tmp_path, sim, r, {"stale_after_sec": 60})
    stopper.append((svc, task))
    await want(r, keys, REQUESTER_ORCHESTRATOR, *tokens)
    await eventually(lambda: _async(all(svc.books.ready(t) for t in tokens)), what="every book seeded")
    fault(sim, kind="ws_load", rate_per_sec=400)
    await eventually(lambda: _async(svc.frames > 150 and svc.parse_errors > 10), timeout=20, what="load + garbage")
    stopped = fault(sim, kind="ws_load", rate_per_sec=0)
    assert stopped["changes"] > 0
    assert stopped["frames_sent"] > 0
    assert stopped["frames_dropped"] == 0
    frames = svc.frames
    await eventually(lambda: _async(svc.frames == frames), what="load drained")  # no frame for one poll
    await asyncio.sleep(0.3)
    # every token's published top equals the venue's REST book: nothing lost, nothing misapplied
    want_tops = rest_tops(sim, tokens)
    got = await eventually(lambda: _same(hash_tops(r, keys, tokens), want_tops), what="hash tops == REST tops")
    assert got
    assert svc.books.drift == 0  # current-form best_bid/best_ask always agreed with our book
    assert svc.conns[0].connects == 1  # garbage never cost the connection
    assert svc.parse_errors > 10
    assert svc.reseeds == 0


async def _same(current: Any, expected: dict[str, Any]) -> bool:
    return bool(await current == expected)


async def test_drop_then_reconnect_resubscribes_and_reseeds_from_the_fresh_book(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, quiet_sim: SimExchangeProcess,
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = quiet_sim
    a, b = all_tokens(sim)[:2]
    put_book(sim, a, bids=[(0.30, 10)], asks=[(0.35, 10)])
    listener = await TickListener(r, keys, [a]).start()
    cfg: dict[str, Any] = {}
    svc, task = await start_gateway(tmp_path, sim, r, cfg)
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a, b)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        # Hold the reconnect back (a slow backoff), and move the book while nobody listens: the
        # deltas are lost for good; only the resubscription's book dump can bring the change.
        svc._backoff = svc.conns[0].backoff = type(svc._backoff)(initial_backoff_sec=1.0, jitter_fraction=0)
        assert fault(sim, kind="ws_drop")["closed"] == 1
        await eventually(lambda: _async(not svc.conns[0].connected), what="disconnected")
        put_book(sim, a, bids=[(0.31, 7)], asks=[(0.34, 9)])
        after = await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.31]), what="reseeded tick")
        assert (after[0].ask, after[0].bid_size, after[0].ask_size) == (0.34, 7.0, 9.0)
        assert svc.conns[0].connects == 2
        assert svc.conns[0].tokens == {a, b}
        assert svc.books.ready(b)  # every token of the connection was resubscribed and reseeded
        assert svc.reseeds == 0  # the socket's own dump did it, not REST
    finally:
        await listener.close()


async def test_data_only_stall_is_found_through_rest_and_the_socket_replaced(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, quiet_sim: SimExchangeProcess,
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = quiet_sim
    a = all_tokens(sim)[0]
    put_book(sim, a, bids=[(0.40, 10)], asks=[(0.45, 10)])
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"ping_interval_sec": 0.3, "stale_after_sec": 1.0,
                                                       "reseed_min_interval_sec": 0.2})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        # PONGs keep coming, data does not: the ping watchdog alone cannot see this
        fault(sim, kind="ws_stall", seconds=3.0, pong=True)
        put_book(sim, a, bids=[(0.41, 3)], asks=[(0.45, 10)])
        moved = await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.41]), timeout=10,
                                 what="the change, through REST")
        assert moved[0].stale is False
        await eventually(lambda: _async(svc.silent_reconnects >= 1), what="socket replaced")
        assert svc.conns[0].stalls == 0  # not the no-PONG watchdog: the REST check found it
        # after the stall, the new socket delivers again
        fault(sim, kind="ws_stall", seconds=0)
        put_book(sim, a, bids=[(0.42, 3)], asks=[(0.45, 10)])
        await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.42]), what="socket data again")
    finally:
        await listener.close()


async def test_missed_delta_shows_as_drift_and_is_reseeded_from_rest(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, quiet_sim: SimExchangeProcess,
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = quiet_sim
    a = all_tokens(sim)[0]
    put_book(sim, a, bids=[(0.40, 10), (0.39, 5)], asks=[(0.45, 10)])
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"stale_after_sec": 60})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        await eventually(lambda: _async(listener.of(a)), what="first tick")
        before = fault(sim, kind="ws_stall", seconds=600, pong=True)["withheld"]
        put_book(sim, a, bids=[(0.43, 2), (0.39, 5)], asks=[(0.45, 10)])  # lost: the top moved to 0.43
        await eventually(lambda: _async(fault(sim, kind="ws_stall", seconds=600, pong=True)["withheld"] > before),
                         what="the change withheld by the stall")
        fault(sim, kind="ws_stall", seconds=0)  # the stall ends
        # the next delta (a deep level) says best_bid 0.43; our book still says 0.40
        put_book(sim, a, bids=[(0.43, 2), (0.39, 6)], asks=[(0.45, 10)])
        fixed = await eventually(lambda: _async([t for t in listener.of(a) if t.bid == 0.43]), what="reseeded top")
        assert fixed[0].bid_size == 2.0
        assert svc.books.drift >= 1
        assert svc.reseeds >= 1
        assert svc.books.drifted == set()
    finally:
        await listener.close()


async def test_token_is_marked_stale_when_neither_socket_nor_rest_answers(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, quiet_sim: SimExchangeProcess,
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = quiet_sim
    a = all_tokens(sim)[0]
    listener = await TickListener(r, keys, [a]).start()
    svc, task = await start_gateway(tmp_path, sim, r, {"ping_interval_sec": 0.3, "stale_after_sec": 1.0,
                                                       "reseed_min_interval_sec": 0.2})
    stopper.append((svc, task))
    try:
        await want(r, keys, REQUESTER_ORCHESTRATOR, a)
        first = await eventually(lambda: _async(listener.of(a)), what="first tick")
        fault(sim, kind="ws_stall", seconds=4.0)
        fault(sim, kind="http_429", count=1000, retry_after=1, path_prefix="/books")
        stale = await eventually(lambda: _async([t for t in listener.of(a) if t.stale]), timeout=10, what="stale tick")
        assert stale[0].seq > first[-1].seq
        assert (stale[0].bid, stale[0].ask) == (first[-1].bid, first[-1].ask)  # the last known top, flagged
        assert (await r.hget(keys.book(a), "stale")) == "1"  # type: ignore[misc]

        async def health() -> dict[str, Any]:
            raw = await r.get(keys.health("ws_gateway", "g1"))
            body: dict[str, Any] = json.loads(raw) if raw else {}
            return body if body.get("stale_tokens") == 1 else {}
        summary = await eventually(health, what="stale token in the heartbeat")
        assert summary["stale_marked"] >= 1
        httpx.post(f"{sim.url}/_sim/reset", timeout=5).raise_for_status()  # faults off: stall and 429s end
        fresh = await eventually(lambda: _async([t for t in listener.of(a) if t.seq > stale[0].seq and not t.stale]),
                                 timeout=15, what="fresh again")
        assert fresh[0].bid is not None
    finally:
        await listener.close()


async def test_more_than_200_tokens_spread_over_several_connections(
        tmp_path: Path, r: aioredis.Redis, keys: Keys, start_sim: Callable[..., SimExchangeProcess],
        stopper: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    sim = start_sim({"sim_exchange": {"tick_interval_ms": 600_000, "markets": 260}})
    tokens = all_tokens(sim)
    assert len(tokens) == 520
    svc, task = await start_gateway(tmp_path, sim, r, {"connect_stagger_sec": 0.2})
    stopper.append((svc, task))
    await want(r, keys, REQUESTER_ORCHESTRATOR, *tokens)
    await eventually(lambda: _async(all(svc.books.ready(t) for t in tokens)), timeout=30, what="every book seeded")
    assert sorted(len(c.tokens) for c in svc.conns) == [120, 200, 200]
    assert set().union(*(c.tokens for c in svc.conns)) == set(tokens)
    assert all(c.connects == 1 for c in svc.conns)
    expected = rest_tops(sim, tokens)

    async def written() -> bool:  # a book is ready in memory a moment before its hash is written
        return await hash_tops(r, keys, tokens) == expected

    await eventually(written, timeout=30, what="every book's top in its hash")
    # a token leaving the wanted set is unsubscribed on its live connection; the others stay put
    gone = sorted(svc.conns[1].tokens)[:50]
    await want(r, keys, REQUESTER_ORCHESTRATOR, *gone, remove=True)
    await eventually(lambda: _async(len(svc.wanted) == 470), what="50 tokens dropped")
    assert sorted(len(c.tokens) for c in svc.conns) == [120, 150, 200]
    assert all(c.connects == 1 for c in svc.conns)  # live unsubscribe, no reconnect
