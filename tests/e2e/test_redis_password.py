"""Redis with a password, end to end (H4): every service authenticates from PF_REDIS_URL (the
gateway's own publishing connection too), and the password never reaches a log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Signal, stable_id
from shared.redisio import add_message
from shared.redisio.health import healthy_instances

pytestmark = pytest.mark.e2e

PASSWORD = "s3cret-Pf-redis-pw"
SERVICES = ("signal_collector", "ws_gateway", "orchestrator", "maker_worker")


async def test_services_authenticate_and_never_log_the_password(
    start_sim: Callable[..., SimExchangeProcess], tmp_path: Path,
) -> None:
    server = RedisServer(password=PASSWORD).start()
    r = aioredis.from_url(server.url, decode_responses=True)
    keys = Keys("pf")
    sim = start_sim({"sim_exchange": {"markets": 1, "volatility": 0.0}, "scheduler": {"poll_interval_sec": 0.1}})
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": server.url, "PF_NAMESPACE": "pf"}
    procs = [ServiceProcess(n, {**env, "PF_INSTANCE": n}, tmp_path).start() for n in SERVICES]
    try:
        for name in SERVICES:
            await eventually(lambda n=name: healthy_instances(r, keys, n), timeout=30, what=f"{name} heartbeat")
        async with httpx.AsyncClient(base_url=sim.url, timeout=5) as http:
            token = (await http.get("/_sim/markets")).json()[0]["tokens"][0]["token_id"]
        await add_message(r, keys.signals(), Signal(
            id=stable_id("pw", token), ts_event=now_ms(), ts_init=now_ms(), producer="test", side="BUY",
            token_id=token, account="0x" + "d" * 40, size=10, price=0.5, source="manual"))
        await eventually(lambda: _state_is(r, keys, token, "running"), timeout=20, what="session running")
        await eventually(lambda: r.hget(keys.book(token), "seq"), timeout=20, what="gateway tick written")
        check = ServiceProcess("orchestrator", env, tmp_path, args=["--check"]).start()
        assert check.proc is not None
        assert check.proc.wait(20) == 0
        check.stop()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(f"== {p.name}\n{p.log()[-2000:]}" for p in procs)) from exc
    finally:
        for p in procs:
            p.stop()
        await r.aclose()
        server.stop()
    for p in procs:
        assert PASSWORD not in p.log(), f"{p.name} logged the Redis password"


async def _state_is(r: aioredis.Redis, keys: Keys, token: str, state: str) -> bool:
    return await r.hget(keys.token(token), "state") == state
