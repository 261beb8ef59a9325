"""The collector against a real redis-server and the sim exchange's Data API (A2-A4)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import SimExchangeProcess, eventually, write_config
from services.signal_collector.service import SignalCollectorService
from shared.config import Settings, load_settings
from shared.keys import Keys
from tests.integration.collector_support import signals

WALLET = "0x1111111111111111111111111111111111111111"
OTHER = "0x2222222222222222222222222222222222222222"


@pytest.fixture
def sim(start_sim: Callable[..., SimExchangeProcess]) -> SimExchangeProcess:
    return start_sim()


@pytest.fixture
def settings(tmp_path: Path, sim: SimExchangeProcess, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PF_NAMESPACE", "pf")
    cfg = write_config(tmp_path / "polyfleet.yaml", sim.port, {"copytrade": {
        "poll_interval_sec": 0.2, "page_size": 2,  # small pages so paging is exercised
        "targets": [{"account": WALLET, "min_size": 5}, {"account": OTHER, "enabled": False}],
    }})
    return load_settings(cfg, environ={})


@pytest.fixture
def token(sim: SimExchangeProcess) -> str:
    markets = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()
    return str(markets[0]["tokens"][0]["token_id"])


def inject(sim: SimExchangeProcess, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = httpx.post(f"{sim.url}/_sim/trades", json=rows, timeout=5)
    resp.raise_for_status()
    stored: list[dict[str, Any]] = resp.json()
    return stored


async def test_first_run_skips_history_then_turns_trades_into_signals(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, settings: Settings, token: str) -> None:
    now = int(time.time())
    inject(sim, [{"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": 50, "price": 0.4,
                  "timestamp": now - 120}])
    svc = SignalCollectorService(settings, "t1", redis=r)
    try:
        assert await svc.step() == 0
        stepped = int(time.time())
        assert await signals(r, keys) == []
        cursor = await r.hgetall(keys.cursor(WALLET))  # type: ignore[misc]
        assert now <= int(cursor["ts"]) <= stepped  # stored at once: a restart keeps "now"

        buy, sell, small, other = inject(sim, [
            {"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": 20, "price": 0.45},
            {"proxyWallet": WALLET, "side": "SELL", "asset": token, "size": 12.5, "price": 0.55},
            {"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": 1, "price": 0.45},  # below min_size
            {"proxyWallet": OTHER, "side": "BUY", "asset": token, "size": 99, "price": 0.45},  # disabled target
        ])
        assert await svc.step() == 2
        got = await signals(r, keys)
        assert [(s.side, s.size, s.price, s.token_id, s.account, s.source) for s in got] == [
            ("BUY", 20.0, 0.45, token, WALLET, "poll"), ("SELL", 12.5, 0.55, token, WALLET, "poll"),
        ]
        assert got[0].tx_hash == buy["transactionHash"].lower()
        assert got[1].tx_hash == sell["transactionHash"].lower()
        assert got[0].ts_event == buy["timestamp"] * 1000
        assert (got[0].condition_id, got[0].slug, got[0].outcome, got[0].title) == (
            buy["conditionId"], buy["slug"], buy["outcome"], buy["title"])
        assert got[0].condition_id
        assert got[0].slug
        assert svc.counters.below_min_size == 1
        assert small["size"] == 1
        assert other["proxyWallet"] == OTHER

        # re-polling does not duplicate
        assert await svc.step() == 0
        assert len(await signals(r, keys)) == 2
    finally:
        await svc.aclose()


async def test_restart_with_the_same_redis_does_not_duplicate(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, settings: Settings, token: str) -> None:
    first = SignalCollectorService(settings, "t1", redis=r)
    await first.step()
    inject(sim, [{"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": s, "price": 0.3} for s in (6, 7, 8)])
    assert await first.step() == 3
    await first.aclose()

    second = SignalCollectorService(settings, "t2", redis=r)  # a restart: state only in Redis
    try:
        assert await second.step() == 0
        inject(sim, [{"proxyWallet": WALLET, "side": "SELL", "asset": token, "size": 21, "price": 0.35}])
        assert await second.step() == 1
        got = await signals(r, keys)
        assert [(s.side, s.size) for s in got] == [("BUY", 6.0), ("BUY", 7.0), ("BUY", 8.0), ("SELL", 21.0)]
        assert len({s.id for s in got}) == 4
    finally:
        await second.aclose()


async def test_run_loop_backs_off_on_429_and_recovers(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, settings: Settings, token: str) -> None:
    svc = SignalCollectorService(settings, "t1", redis=r)
    await svc.step()  # first run: cursor at now
    # on /trades: the collector's other Data API reads (the leaders' venue stats) must not take them
    httpx.post(f"{sim.url}/_sim/fault", json={"kind": "http_429", "count": 2, "retry_after": 1,
                                                "path_prefix": "/data-api/trades"}, timeout=5).raise_for_status()
    inject(sim, [{"proxyWallet": WALLET, "side": "BUY", "asset": token, "size": 9, "price": 0.5}])
    task = asyncio.create_task(svc.run())
    try:
        async def one_signal() -> bool:
            return len(await signals(r, keys)) == 1
        started = time.monotonic()
        await eventually(one_signal, timeout=15, what="signal after the 429s")
        assert svc.counters.http_errors == 2
        assert time.monotonic() - started >= 1.5  # Retry-After: 1 honoured twice, not hammered
        beat = json.loads(await eventually(lambda: r.get(keys.health("signal_collector", "t1")), what="heartbeat"))
        assert beat["targets"] == 1
    finally:
        svc.stop()
        await asyncio.wait_for(task, 10)
    assert not task.exception()


async def test_a_followed_wallets_maker_fills_become_signals(
        r: aioredis.Redis, keys: Keys, sim: SimExchangeProcess, settings: Settings, token: str) -> None:
    # /trades serves taker rows only unless takerOnly=false (docs/venue.md D2); the sim keeps the
    # venue's default, so a poller that does not ask never sees a wallet's limit-order fills
    svc = SignalCollectorService(settings, "t1", redis=r)
    try:
        await svc.step()  # first run: cursor at now
        resp = httpx.post(f"{sim.url}/_sim/burst", json={"wallet": WALLET, "count": 2, "token": token, "side": "BUY",
                                                          "price": 0.42, "maker": True}, timeout=5)
        resp.raise_for_status()
        served = httpx.get(f"{sim.url}/data-api/trades", params={"user": WALLET}, timeout=5).json()
        assert served == []  # the venue's default hides them
        assert await svc.step() == 2
        got = await signals(r, keys)
        assert [(s.side, s.size, s.price, s.source) for s in got] == [("BUY", 5.0, 0.42, "poll"),
                                                                      ("BUY", 6.0, 0.42, "poll")]
    finally:
        await svc.aclose()
