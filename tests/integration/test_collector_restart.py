"""The collector as a real process, killed with SIGKILL again and again while a burst lands:
no signal lost, none duplicated (A2, A3). The poller and the live-data socket both run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually, write_config
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Signal
from tests.integration.collector_support import signals

WALLETS = [f"0x{i:040x}" for i in range(0xA1, 0xA6)]
KILLS = int(os.environ.get("PF_COLLECTOR_KILLS", "4"))


async def test_sigkill_mid_burst_loses_and_repeats_nothing(
        r: aioredis.Redis, keys: Keys, redis_server: RedisServer, start_sim: Callable[..., SimExchangeProcess],
        tmp_path: Path) -> None:
    sim = start_sim()
    token = httpx.get(f"{sim.url}/_sim/markets", timeout=5).json()[0]["tokens"][0]["token_id"]
    cfg = write_config(tmp_path / "polyfleet.yaml", sim.port, {"copytrade": {
        "poll_interval_sec": 0.1, "page_size": 9, "rtds_enabled": True,
        "targets": [{"account": w} for w in WALLETS]}})
    env = {"PF_CONFIG": str(cfg), "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf", "PF_INSTANCE": "kill-test"}

    def start() -> ServiceProcess:
        return ServiceProcess("signal_collector", env, tmp_path).start()

    proc = start()
    try:
        async def cursors() -> bool:
            return all([await r.exists(keys.cursor(w)) for w in WALLETS])
        await eventually(cursors, timeout=20, what="first poll of every target")
        second = int(time.time()) + 1
        posted = 0
        for chunk in range(KILLS * 2):
            # every chunk lands in one of two seconds: equal timestamps across the kills
            body = {"wallets": WALLETS, "token": token, "count": 25, "timestamp": second + chunk % 2,
                    "same_tx": chunk % 3 == 0}
            posted += httpx.post(f"{sim.url}/_sim/burst", json=body, timeout=10).json()["trades"]
            if chunk % 2 == 1:
                time.sleep(0.05 * (chunk % 4))  # kill at varying points of the collector's work
                proc.stop(signal.SIGKILL)
                proc = start()
        try:
            got = await eventually(lambda: _enough(r, keys, posted), timeout=60, what=f"{posted} signals")
        except AssertionError as exc:
            have = await signals(r, keys)
            raise AssertionError(f"{exc}: {len(have)} of {posted} ({len({s.id for s in have})} distinct)\n"
                                 f"{proc.log()[-4000:]}") from exc
        # A late repeat would come from a later poll (each re-reads an overlap): wait until the
        # collector has polled every target twice more since every signal was in.
        in_at = now_ms()
        polls = (await eventually(lambda: _beat_since(r, keys, in_at), timeout=20, what="a fresh heartbeat"))["polls"]
        await eventually(lambda: _polled(r, keys, polls + 2 * len(WALLETS)), timeout=20, what="two more poll rounds")
        got = await signals(r, keys)
        assert len(got) == posted == KILLS * 2 * 25 * len(WALLETS)
        assert len({s.id for s in got}) == posted
        assert {s.source for s in got} <= {"poll", "rtds"}
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]


async def _beat_since(r: aioredis.Redis, keys: Keys, ts_ms: int) -> dict[str, Any] | None:
    raw = await r.get(keys.health("signal_collector", "kill-test"))
    body: dict[str, Any] = json.loads(raw) if raw else {}
    return body if body.get("ts", 0) > ts_ms else None


async def _polled(r: aioredis.Redis, keys: Keys, n: int) -> bool:
    body = await _beat_since(r, keys, 0)
    return body is not None and body["polls"] >= n


async def _enough(r: aioredis.Redis, keys: Keys, n: int) -> list[Signal] | None:
    got = await signals(r, keys)
    return got if len(got) >= n else None


pytestmark = pytest.mark.timeout(120)
