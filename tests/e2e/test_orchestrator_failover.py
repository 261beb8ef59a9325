"""Ownership under failure, with the services as real processes (C1, C7).

* kill -9 of a worker: its tokens move to another worker within lease + 2 s, under a new epoch;
* kill -9 of the orchestrator in the middle of a burst: a new instance takes over, no signal is
  lost and none is applied twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from harness import RedisServer, ServiceProcess, SimExchangeProcess, eventually, worker_ready, write_config
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Signal, stable_id
from shared.redisio import add_message

pytestmark = pytest.mark.e2e

LEASE_MS = 2000


def buy(token: str, n: int = 0, market_version: str | None = None) -> Signal:
    """A BUY as the collector writes it: with its market's Gamma version (None reads as v1)."""
    return Signal(id=stable_id("e2e-buy", token, n), ts_event=now_ms(), ts_init=now_ms(), producer="test",
                  side="BUY", token_id=token, account="0x" + "c" * 40, size=10, price=0.5, source="poll",
                  market_version=market_version)


def orchestrator(env: dict[str, str], tmp_path: Path, instance: str) -> ServiceProcess:
    return ServiceProcess("orchestrator", {**env, "PF_INSTANCE": instance}, tmp_path).start()


async def test_kill_9_of_a_worker_moves_its_tokens_within_lease_plus_2s(
    start_sim: Callable[..., SimExchangeProcess], redis_server: RedisServer, r: aioredis.Redis, keys: Keys,
    tmp_path: Path,
) -> None:
    sim = start_sim({
        "sim_exchange": {"markets": 2, "volatility": 0.0},
        "workers": {"lease_ms": LEASE_MS, "heartbeat_interval_sec": 0.3, "capacity": 10},
        "scheduler": {"poll_interval_sec": 0.1},
        "cooldown": {"cooldown_sec_per_token": 0},
    })
    env = {"PF_CONFIG": sim.env["PF_CONFIG"], "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    procs = [orchestrator(env, tmp_path, "orch-1")]
    workers = {w: ServiceProcess("maker_worker", {**env, "PF_INSTANCE": w}, tmp_path).start() for w in ("wa", "wb")}
    procs += workers.values()
    try:
        for w in workers:
            await eventually(lambda w=w: worker_ready(r, keys, w), timeout=30, what=f"{w} ready")
        async with httpx.AsyncClient(base_url=sim.url, timeout=5) as http:
            markets = (await http.get("/_sim/markets")).json()
        version = {t["token_id"]: m["version"] for m in markets for t in m["tokens"]}
        tokens = [t["token_id"] for m in markets for t in m["tokens"]][:4]
        for t in tokens:
            await add_message(r, keys.signals(), buy(t, market_version=version[t]))

        async def all_running() -> bool:
            states = [await r.hget(keys.token(t), "state") for t in tokens]
            return all(s == "running" for s in states)

        await eventually(all_running, timeout=30, what="4 sessions running")
        owners = {t: await r.hget(keys.token(t), "owner") for t in tokens}
        assert Counter(owners.values()) == {"wa": 2, "wb": 2}  # least-loaded assignment

        workers["wa"].kill()
        killed_at = time.monotonic()
        moved = [t for t, o in owners.items() if o == "wa"]

        async def moved_to_wb() -> bool:
            return all([await r.hmget(keys.token(t), ["owner", "epoch"]) == ["wb", "2"] for t in moved])

        await eventually(moved_to_wb, timeout=LEASE_MS / 1000 + 5, interval=0.02, what="tokens reassigned")
        elapsed = time.monotonic() - killed_at
        print(f"\nworker kill -9 -> {len(moved)} token(s) reassigned in {elapsed:.2f}s (lease {LEASE_MS} ms)")
        assert elapsed <= LEASE_MS / 1000 + 2, f"reassignment took {elapsed:.2f}s"

        # The new owner really runs them (its session reports started at the new epoch), and the
        # old owner's epoch is fenced: pf:token no longer names it, which every order checks first.
        await eventually(all_running, timeout=15, what="moved sessions running on wb")
        for t in moved:
            reassigned = [f for _, f in await r.xrange(keys.events()) if f["kind"] == "token.reassigned"
                          and f["token_id"] == t]
            assert len(reassigned) == 1
            assert "wa lease expired" in reassigned[0]["reason"]
    except AssertionError as exc:
        logs = "\n".join(f"===== {p.name}\n{p.log()[-3000:]}" for p in procs)
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        for p in procs:
            p.stop()


async def test_kill_9_of_the_orchestrator_mid_burst_loses_nothing_and_doubles_nothing(
    redis_server: RedisServer, r: aioredis.Redis, keys: Keys, tmp_path: Path,
) -> None:
    n_signals = 3000
    config = write_config(tmp_path / "polyfleet.yaml", 1, {
        "scheduler": {"max_concurrent_jobs": 10_000, "poll_interval_sec": 0.2},
        "risk": {"max_notional_total": 1_000_000, "max_notional_per_token": 1_000},
        "workers": {"lease_ms": 60_000},
        "logging": {"level": "INFO"},
    })
    env = {"PF_CONFIG": str(config), "PF_REDIS_URL": redis_server.url, "PF_NAMESPACE": "pf"}
    # Two registered workers with long leases stand in for the fleet: only decisions matter here.
    for w in ("w1", "w2"):
        await r.hset(keys.worker(w), mapping={"capacity": 10_000, "load": 0})
        await r.sadd(keys.workers(), w)
        await r.set(keys.worker_lease(w), "1", px=120_000)
    tokens = [f"tok{i:05d}" for i in range(n_signals)]
    async with r.pipeline(transaction=False) as p:
        for t in tokens:
            p.xadd(keys.signals(), buy(t).encode())
        await p.execute()

    first = orchestrator(env, tmp_path, "orch-a")
    second: ServiceProcess | None = None
    try:
        async def some_decided() -> bool:
            return await r.scard(keys.tokens_in_state("queued")) + await r.scard(
                keys.tokens_in_state("starting")) >= 300

        await eventually(some_decided, timeout=30, interval=0.01, what="300 decisions")
        first.kill()
        decided_at_kill = await r.scard(keys.tokens_in_state("starting")) + await r.scard(
            keys.tokens_in_state("queued"))
        assert decided_at_kill < n_signals, "the burst finished before the kill; make it bigger"
        second = orchestrator(env, tmp_path, "orch-b")
        restarted_at = time.monotonic()

        async def all_started() -> bool:
            return await r.scard(keys.tokens_in_state("starting")) == n_signals

        await eventually(all_started, timeout=90, interval=0.2, what="every token started")
        print(f"\norchestrator kill -9 after {decided_at_kill}/{n_signals} decisions; the new instance finished "
              f"the burst {time.monotonic() - restarted_at:.2f}s after it was started")
        # Anything still to be (wrongly) applied twice would come from an entry not acked yet: wait
        # until none is pending, then for two more steps of the leader (each renews its lease).
        await eventually(lambda: _none_pending(r, keys), timeout=30, what="every signal acked")
        for _ in range(2):
            lowest = [await r.pttl(keys.orchestrator_leader())]
            await eventually(lambda lowest=lowest: _renewed(r, keys, lowest), timeout=30, what="a leader step")
        queued = Counter(f["token_id"] for _, f in await r.xrange(keys.events()) if f["kind"] == "token.queued")
        starts = Counter()
        for w in ("w1", "w2"):
            for _, f in await r.xrange(keys.cmd(w)):
                assert f["action"] == "START"
                assert f["epoch"] == "1"
                starts[f["token_id"]] += 1
        assert set(queued) == set(tokens)
        assert max(queued.values()) == 1, [t for t, c in queued.items() if c > 1][:5]
        assert set(starts) == set(tokens)
        assert max(starts.values()) == 1, [t for t, c in starts.items() if c > 1][:5]
        pending = await r.xpending(keys.signals(), "orchestrator")
        assert pending["pending"] == 0
        assert await r.get(keys.orchestrator_leader()) == "orch-b"
    except AssertionError as exc:
        logs = "\n".join(f"===== {p.name}\n{p.log()[-3000:]}" for p in (first, second) if p)
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        first.stop()
        if second:
            second.stop()


async def _none_pending(r: aioredis.Redis, keys: Keys) -> bool:
    return bool((await r.xpending(keys.signals(), "orchestrator"))["pending"] == 0)


async def _renewed(r: aioredis.Redis, keys: Keys, lowest: list[int]) -> bool:
    """The leader lease's TTL went up since its lowest reading: a renewal (a leader step) happened.
    The lowest, not the first, reading: a first read just after a renewal would never be exceeded."""
    ttl = int(await r.pttl(keys.orchestrator_leader()))
    if ttl > lowest[0]:
        return True
    lowest[0] = ttl
    return False
