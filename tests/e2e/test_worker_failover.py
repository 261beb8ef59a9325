"""A worker killed mid-order, and a gateway that goes away, with every service a real process.

* kill -9 of the worker whose BUY is half filled and resting: the orchestrator moves the token, the
  new owner cancels the orphan order at the venue first and resumes with the position the venue
  holds — nothing bought twice, nothing left resting (D8).
* the gateway stops: sessions poll REST /book (within orderbook.*), trade on it, and go back to
  ticks when the gateway returns (B6).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually, worker_ready
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Signal, stable_id
from shared.redisio import add_message

pytestmark = pytest.mark.e2e


def buy(token: str) -> Signal:
    return Signal(id=stable_id("e2e-worker-buy", token), ts_event=now_ms(), ts_init=now_ms(), producer="test",
                  side="BUY", token_id=token, account="0x" + "d" * 40, size=10, price=0.5, source="poll")


async def orders(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return list((await http.get("/_sim/orders", params={"token_id": token})).json())


async def test_kill_9_mid_order_resumes_with_the_venue_position_and_no_orphan(
    start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer, r: aioredis.Redis, keys: Keys,
    tmp_path: Path,
) -> None:
    sim = start_sim({
        "sim_exchange": {"markets": 1, "volatility": 0.0},
        "workers": {"lease_ms": 2000, "heartbeat_interval_sec": 0.3, "capacity": 10},
        "scheduler": {"poll_interval_sec": 0.1},
        "cooldown": {"cooldown_sec_per_token": 0},
        "orderbook": {"refresh_sec": 0.3},  # no gateway here: sessions run on REST books (B6)
        "maker_strategy": {"order_size": 10, "drop_pct": 0, "profit_pct": 0.5, "disable_duplicate_signal": True},
        "execution": {"wait_sec": 120, "poll_interval_sec": 0.2},  # the rest stays out
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    http = httpx.AsyncClient(base_url=sim.url, timeout=5)
    token = (await http.get("/_sim/markets")).json()[0]["tokens"][0]["token_id"]
    # 4 shares on offer at 0.50: a BUY of 10 fills 4 and rests 6.
    resp = await http.put(f"/_sim/book/{token}", json={"bids": [{"price": 0.30, "size": 100}],
                                                       "asks": [{"price": 0.50, "size": 4}]})
    assert resp.status_code == 200
    procs = [ServiceProcess("orchestrator", {**env, "PF_INSTANCE": "orch"}, tmp_path).start()]
    workers = {w: ServiceProcess("maker_worker", {**env, "PF_INSTANCE": w}, tmp_path).start() for w in ("wa", "wb")}
    procs += workers.values()
    try:
        for w in workers:
            await eventually(lambda w=w: worker_ready(r, keys, w), timeout=30, what=f"{w} ready")
        await add_message(r, keys.signals(), buy(token))

        async def resting() -> dict[str, Any] | None:
            return next((o for o in await orders(http, token) if o["status"] == "LIVE" and o["size_matched"] == 4),
                        None)

        await eventually(resting, timeout=30, what="BUY 4 filled, 6 resting")
        owner = await r.hget(keys.token(token), "owner")
        other = "wb" if owner == "wa" else "wa"
        workers[str(owner)].kill()

        async def resumed() -> dict[str, str] | None:
            h = await r.hgetall(keys.session(token))
            return h if h.get("worker") == other and h.get("epoch") == "2" and h.get("state") == "LONG" else None

        h = await eventually(resumed, timeout=20, what="resumed by the other worker")
        assert float(h["position"]) == pytest.approx(4)
        rows = await orders(http, token)
        assert [o["status"] for o in rows if o["status"] == "LIVE"] == []  # the orphan was cancelled
        assert len([o for o in rows if o["side"] == "BUY"]) == 1  # never bought again
        address = rows[0]["maker_address"]
        held = (await http.get("/_sim/positions", params={"address": address})).json()[address]["positions"][token]
        assert held == pytest.approx(4)
    except BaseException:
        for p in procs:
            print(f"===== {p.name}\n{p.log()[-3000:]}")
        raise
    finally:
        for p in procs:
            p.stop()
        await http.aclose()


async def test_gateway_down_moves_sessions_to_rest_polling_and_back(
    start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer, r: aioredis.Redis, keys: Keys,
    tmp_path: Path,
) -> None:
    sim = start_sim({
        "sim_exchange": {"markets": 1, "volatility": 0.0},
        "scheduler": {"poll_interval_sec": 0.1},
        "monitoring": {"heartbeat_interval_sec": 0.5},  # pf:gw:alive lives 1.5 s after the gateway's last beat
        "orderbook": {"refresh_sec": 0.5, "max_fetch_per_loop": 1},
        "maker_strategy": {"order_size": 10, "drop_pct": 0.04, "profit_pct": 0.5},
        "execution": {"poll_interval_sec": 0.2, "wait_sec": 1},
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    http = httpx.AsyncClient(base_url=sim.url, timeout=5)
    token = (await http.get("/_sim/markets")).json()[0]["tokens"][0]["token_id"]
    gateway = ServiceProcess("ws_gateway", {**env, "PF_INSTANCE": "gw"}, tmp_path).start()
    procs = [gateway, ServiceProcess("orchestrator", {**env, "PF_INSTANCE": "orch"}, tmp_path).start(),
             ServiceProcess("maker_worker", {**env, "PF_INSTANCE": "w1"}, tmp_path).start()]

    async def source(want: str) -> bool:
        return (await r.hget(keys.session(token), "source")) == want

    try:
        await eventually(lambda: r.exists(keys.worker_lease("w1")), timeout=30, what="worker lease")
        await add_message(r, keys.signals(), buy(token))
        await eventually(lambda: source("ticks"), timeout=30, what="session on gateway ticks")
        await http.put(f"/_sim/price/{token}", json={"path": [0.60], "interval_ms": 10})
        await eventually(lambda: _ask(r, keys, token, 0.61), timeout=10, what="the 0.61 ask seen on ticks")
        gateway.kill()
        await eventually(lambda: source("rest"), timeout=10, what="REST fallback")
        # The market drops while only REST books are seen: the session still buys the drop.
        await http.put(f"/_sim/price/{token}", json={"path": [0.48, 0.47], "interval_ms": 300})
        await eventually(lambda: _long(r, keys, token), timeout=15, what="BUY on REST books")
        async def polled() -> dict[str, Any] | None:  # the worker's heartbeat reports the REST polling
            health = json.loads(await r.get(keys.health("maker_worker", "w1")) or "{}")
            return health if health.get("rest_tokens") == 1 and health.get("rest_fetches", 0) >= 1 else None

        await eventually(polled, timeout=5, what="REST polling in the heartbeat")
        gateway = ServiceProcess("ws_gateway", {**env, "PF_INSTANCE": "gw"}, tmp_path).start()
        procs.append(gateway)
        await eventually(lambda: source("ticks"), timeout=20, what="back on ticks")
    except BaseException:
        for p in procs:
            print(f"===== {p.name}\n{p.log()[-3000:]}")
        raise
    finally:
        for p in procs:
            p.stop()
        await http.aclose()


async def _ask(r: aioredis.Redis, keys: Keys, token: str, ask: float) -> bool:
    raw = await r.hget(keys.session(token), "strategy")
    return raw is not None and abs((json.loads(raw).get("window_high") or 0) - ask) < 1e-9


async def _long(r: aioredis.Redis, keys: Keys, token: str) -> bool:
    return (await r.hget(keys.session(token), "state")) == "LONG"
