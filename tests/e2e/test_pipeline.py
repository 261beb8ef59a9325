"""The walking skeleton end to end: every service as a real process, sim_exchange, real Redis.

wallet BUY at the exchange -> signal -> START on a worker -> ticks -> order through the official
SDK (shared/venue) -> fill -> wallet SELL -> EXIT -> position closed at the exchange -> released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually
from shared.keys import REQUESTER_ORCHESTRATOR, Keys
from shared.redisio.health import healthy_instances

pytestmark = pytest.mark.e2e

WALLET = "0xfeed000000000000000000000000000000000001"
WORKER = "worker-e2e"
SERVICES = ("signal_collector", "ws_gateway", "orchestrator", "maker_worker")


@pytest.fixture
def system(start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer,
           tmp_path: Path) -> Iterator[tuple[SimExchangeProcess, dict[str, ServiceProcess]]]:
    sim = start_sim({
        "sim_exchange": {"markets": 2, "volatility": 0.0},
        "copytrade": {"targets": [{"account": WALLET, "min_size": 1}], "poll_interval_sec": 0.3},
        "maker_strategy": {"order_size": 10, "drop_pct": 0},  # the book is static: buy at once
        "cooldown": {"cooldown_sec_per_token": 0},
        "scheduler": {"poll_interval_sec": 0.2},
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    procs = {
        name: ServiceProcess(name, {**env, "PF_INSTANCE": WORKER if name == "maker_worker" else name}, tmp_path)
        for name in SERVICES
    }
    for proc in procs.values():
        proc.start()
    yield sim, procs
    for proc in procs.values():
        proc.stop()


def dump_logs(procs: dict[str, ServiceProcess], sim: SimExchangeProcess) -> str:
    return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in [*procs.values(), sim])


async def test_wallet_buy_and_sell_flow_through_every_service(
    system: tuple[SimExchangeProcess, dict[str, ServiceProcess]], r: aioredis.Redis, keys: Keys,
) -> None:
    sim, procs = system
    http = httpx.AsyncClient(base_url=sim.url, timeout=5)
    try:
        await _run_flow(http, r, keys)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{dump_logs(procs, sim)}") from exc
    finally:
        await http.aclose()
    for name, proc in procs.items():
        assert proc.alive(), f"{name} died:\n{proc.log()[-3000:]}"
    for name, proc in procs.items():
        assert proc.stop() == 0, f"{name} did not stop cleanly on SIGTERM:\n{proc.log()[-3000:]}"


async def _run_flow(http: httpx.AsyncClient, r: aioredis.Redis, keys: Keys) -> None:
    # Everyone up: the worker registered with a lease; every service beating.
    await eventually(lambda: r.exists(keys.worker_lease(WORKER)), timeout=30, what="worker lease")
    for name in SERVICES:
        await eventually(lambda n=name: healthy_instances(r, keys, n), timeout=30, what=f"{name} heartbeat")

    markets = (await http.get("/_sim/markets")).json()
    token = _first_token(markets)
    book = {"bids": [{"price": "0.47", "size": "300"}, {"price": "0.48", "size": "200"}],
            "asks": [{"price": "0.52", "size": "300"}, {"price": "0.50", "size": "200"}]}
    assert (await http.put(f"/_sim/book/{token}", json=book)).status_code == 200

    # 1. The followed wallet buys at the exchange -> a BUY signal on pf:signals.
    resp = await http.post("/_sim/trades", json={"proxyWallet": WALLET, "side": "BUY", "asset": token,
                                                 "size": 25, "price": 0.5})
    assert resp.status_code == 200, resp.text

    async def buy_signal() -> dict[str, str] | None:
        return next((f for _, f in await r.xrange(keys.signals())
                     if f["token_id"] == token and f["side"] == "BUY"), None)

    signal = await eventually(buy_signal, timeout=15, what="BUY signal")
    assert signal["account"].lower() == WALLET
    assert float(signal["size"]) == 25.0

    # 2. The orchestrator starts a session on the worker with an epoch and merged params.
    async def start_cmd() -> dict[str, str] | None:
        return next((f for _, f in await r.xrange(keys.cmd(WORKER))
                     if f["action"] == "START" and f["token_id"] == token), None)

    start = await eventually(start_cmd, timeout=15, what="START command")
    assert int(start["epoch"]) == 1
    assert '"order_size":10' in start["params"].replace(" ", "")
    assert await r.sismember(keys.gw_want(REQUESTER_ORCHESTRATOR), token)

    # 3. The gateway streams the token's book: best bid/ask are the best levels, not index 0.
    async def book_tick() -> dict[str, str] | None:
        h = await r.hgetall(keys.book(token))
        return h if h.get("bid") == "0.48" and h.get("ask") == "0.5" else None

    await eventually(book_tick, timeout=15, what="tick in pf:book")
    state = await eventually(lambda: _state_is(r, keys, token, "running"), timeout=15, what="running")
    assert state["owner"] == WORKER

    # 4. The worker buys through the official SDK (shared/venue); the exchange received and matched it.
    async def sim_order(side: str) -> dict[str, Any] | None:
        orders = (await http.get("/_sim/orders")).json()
        return next((o for o in orders if o["token_id"] == token and o["side"] == side
                     and float(o["size_matched"]) > 0), None)

    buy = await eventually(lambda: sim_order("BUY"), timeout=15, what="BUY order at sim_exchange")
    assert float(buy["size_matched"]) == pytest.approx(10.0)

    async def fill(side: str) -> dict[str, str] | None:
        return next((f for _, f in await r.xrange(keys.fills()) if f["token_id"] == token and f["side"] == side), None)

    buy_fill = await eventually(lambda: fill("BUY"), timeout=10, what="BUY fill on pf:fills")
    assert float(buy_fill["size"]) == pytest.approx(10.0)
    assert float(buy_fill["price"]) == pytest.approx(0.5)
    await eventually(lambda: _hfield_is(r, keys.token(token), "position", 10.0), timeout=10, what="position 10")

    # 5. The wallet sells -> SELL signal -> EXIT -> liquidation at the exchange -> token released.
    resp = await http.post("/_sim/trades", json={"proxyWallet": WALLET, "side": "SELL", "asset": token,
                                                 "size": 25, "price": 0.49})
    assert resp.status_code == 200, resp.text

    async def exit_cmd() -> bool:
        return any(f["action"] == "EXIT" and f["token_id"] == token for _, f in await r.xrange(keys.cmd(WORKER)))

    await eventually(exit_cmd, timeout=15, what="EXIT command")
    sell = await eventually(lambda: sim_order("SELL"), timeout=15, what="SELL order at sim_exchange")
    assert float(sell["size_matched"]) == pytest.approx(10.0)
    await eventually(lambda: fill("SELL"), timeout=10, what="SELL fill on pf:fills")

    async def flat_at_exchange() -> bool:
        accounts = (await http.get("/_sim/positions")).json()
        held = [acct["positions"].get(token, 0.0) for acct in accounts.values()]
        return bool(held) and all(abs(float(h)) < 1e-9 for h in held) and any(
            token in acct["positions"] for acct in accounts.values())

    await eventually(flat_at_exchange, timeout=10, what="position closed at sim_exchange")
    done = await eventually(lambda: _state_is(r, keys, token, "done"), timeout=15, what="token done")
    assert float(done["position"]) == pytest.approx(0.0)
    assert not await r.sismember(keys.gw_want(REQUESTER_ORCHESTRATOR), token)
    assert await r.sismember(keys.handled(), token)
    kinds = [f["kind"] for _, f in await r.xrange(keys.events()) if f.get("token_id") == token]
    assert kinds[:1] == ["token.queued"]
    assert {"token.starting", "token.running", "token.exiting", "token.closed"} <= set(kinds)


def _first_token(markets: Any) -> str:
    rows = markets["markets"] if isinstance(markets, dict) else markets
    first = rows[0]
    tokens = first.get("tokens") or first.get("token_ids") or first.get("clobTokenIds")
    tok = tokens[0]
    return str(tok["token_id"] if isinstance(tok, dict) else tok)


async def _state_is(r: aioredis.Redis, keys: Keys, token: str, state: str) -> dict[str, str] | None:
    h: dict[str, str] = await r.hgetall(keys.token(token))
    return h if h.get("state") == state else None


async def _hfield_is(r: aioredis.Redis, key: str, field: str, value: float) -> bool:
    raw = await r.hget(key, field)
    return raw is not None and abs(float(raw) - value) < 1e-6
