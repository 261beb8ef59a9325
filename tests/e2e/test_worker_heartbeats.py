"""Every worker killed at once, with every service a real process: nobody is left to cancel their
resting orders, and the venue's dead-man switch does it (docs/venue.md H1; issue 16 item 3: "if
every worker dies, their resting orders do not outlive them")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually, stopped_after
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Signal, stable_id
from shared.redisio import add_message

pytestmark = pytest.mark.e2e


def buy(token: str) -> Signal:
    return Signal(id=stable_id("e2e-heartbeat-buy", token), ts_event=now_ms(), ts_init=now_ms(), producer="test",
                  side="BUY", token_id=token, account="0x" + "e" * 40, size=10, price=0.5, source="poll")


async def test_when_every_worker_is_killed_the_venue_cancels_their_resting_orders(
    start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer, r: aioredis.Redis, keys: Keys,
    tmp_path: Path,
) -> None:
    sim = start_sim({
        "sim_exchange": {"markets": 2, "volatility": 0.0, "v2_share": 0.0, "fine_tick_share": 0.0,
                         "large_min_share": 0.0},
        "workers": {"lease_ms": 2000, "heartbeat_interval_sec": 0.3, "capacity": 1},  # one token per worker
        "scheduler": {"poll_interval_sec": 0.1},
        "cooldown": {"cooldown_sec_per_token": 0},
        "orderbook": {"refresh_sec": 0.3},  # no gateway: sessions run on REST books (B6)
        "maker_strategy": {"order_size": 10, "drop_pct": 0, "profit_pct": 0.5, "disable_duplicate_signal": True},
        "execution": {"wait_sec": 300, "poll_interval_sec": 0.2},  # the rest stays out
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    async with httpx.AsyncClient(base_url=sim.url, timeout=5) as http:
        await _run(http, env, r, keys, tmp_path)


async def _run(http: httpx.AsyncClient, env: dict[str, str], r: aioredis.Redis, keys: Keys, tmp_path: Path) -> None:
    tokens = [m["tokens"][0]["token_id"] for m in (await http.get("/_sim/markets")).json()]
    for token in tokens:  # 4 shares on offer at 0.50: a BUY of 10 fills 4 and rests 6
        resp = await http.put(f"/_sim/book/{token}", json={"bids": [{"price": 0.30, "size": 100}],
                                                           "asks": [{"price": 0.50, "size": 4}]})
        assert resp.status_code == 200
    procs = [ServiceProcess("orchestrator", {**env, "PF_INSTANCE": "orch"}, tmp_path).start()]
    workers = [ServiceProcess("maker_worker", {**env, "PF_INSTANCE": w}, tmp_path).start() for w in ("wa", "wb")]
    procs += workers

    async def orders() -> list[dict[str, Any]]:
        return [o for t in tokens for o in (await http.get("/_sim/orders", params={"token_id": t})).json()]

    with stopped_after(procs):
        for w in ("wa", "wb"):
            await eventually(lambda w=w: r.exists(keys.worker_lease(w)), timeout=30, what=f"{w} lease")
        for token in tokens:
            await add_message(r, keys.signals(), buy(token))

        async def resting() -> list[dict[str, Any]] | None:
            live = [o for o in await orders() if o["status"] == "LIVE" and o["size_matched"] == 4]
            return live if len(live) == 2 else None

        live = await eventually(resting, timeout=40, what="a BUY resting on each token")
        owners = {await r.hget(keys.token(t), "owner") for t in tokens}
        assert owners == {"wa", "wb"}  # each worker holds one of them
        for w in workers:
            w.kill()

        async def cancelled() -> list[dict[str, Any]] | None:
            rows = {o["id"]: o for o in await orders()}
            gone = [rows[o["id"]] for o in live if rows[o["id"]]["status"] == "CANCELED"]
            return gone if len(gone) == len(live) else None

        gone = await eventually(cancelled, timeout=30, interval=0.2, what="the venue cancels both resting orders")
        assert [o["cancel_reason"] for o in gone] == ["heartbeat_expired", "heartbeat_expired"]
        assert [o for o in await orders() if o["status"] == "LIVE"] == []
