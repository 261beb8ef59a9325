"""Orchestrator benchmark (issue 5): decisions per second, and signal-to-START latency.

1. Throughput: N BUY signals for distinct tokens are queued in pf:signals, then one
   OrchestratorService (this process, one core) decides them with every check on: a config
   blacklist with ids and keyword entries, runtime blacklist entries, handled set, cooldowns,
   ignored list, daily loss, halt, the Lua risk reservation and the duplicate-id check. A tenth
   of the tokens hit a rule (blacklisted, handled, cooling down, ignored), the rest are admitted
   and started. Reported: signals decided per second, and with the START commands included.
2. Latency: signals arrive at a steady rate (default 200/s) while the orchestrator runs as a real
   process; a reader timestamps each START on the workers' command streams. Reported: p50/p90/
   p99/max of XADD(signal) -> START visible, in ms.

Run: ``uv run python -m bench.bench_orchestrator [--signals 20000] [--rate 200] [--seconds 15]``.
It starts its own redis-server on a free port (never the one on 6379).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.machine import describe, percentiles
from harness import RedisServer, ServiceProcess, write_config
from services.orchestrator.service import OrchestratorService
from shared.clock import now_ms
from shared.config import Settings
from shared.keys import Keys
from shared.messages import Signal, stable_id
from shared.redisio.client import make_client

WORKERS = ("w1", "w2", "w3", "w4")
SETTINGS: dict[str, object] = {
    "scheduler": {"max_concurrent_jobs": 1_000_000, "poll_interval_sec": 0.05},
    "risk": {"max_notional_total": 1e9, "max_notional_per_token": 1_000,
             "blacklist_token_keys": ["kw:forbidden", "0xdeadbeef", "some-banned-slug", "re:^never"]},
    "workers": {"capacity": 1_000_000, "lease_ms": 600_000},
    "cooldown": {"cooldown_sec_per_token": 60},
}


def buy(token: str, slug: str = "a-market", title: str = "Will it happen?") -> Signal:
    return Signal(id=stable_id("bench", token), ts_event=now_ms(), ts_init=now_ms(), producer="bench", side="BUY",
                  token_id=token, account="0x" + "b" * 40, size=10, price=0.5, source="poll", slug=slug, title=title)


async def prepare_fleet(r: aioredis.Redis, keys: Keys) -> None:
    for w in WORKERS:
        await r.hset(keys.worker(w), mapping={"capacity": 1_000_000, "load": 0})
        await r.sadd(keys.workers(), w)
        await r.set(keys.worker_lease(w), "1", px=600_000)
    for i in range(50):  # runtime blacklist entries: every admission checks them
        await r.hset(keys.blacklist(), f"0xrt{i:04d}", '{"reason": "bench", "expires_at": 0}')


async def throughput(r: aioredis.Redis, keys: Keys, n: int) -> tuple[float, float, int]:
    await r.flushdb()
    await prepare_fleet(r, keys)
    tokens = [f"tok{i:07d}" for i in range(n)]
    async with r.pipeline(transaction=False) as p:
        for i, t in enumerate(tokens):
            kind = i % 40
            if kind == 1:
                p.sadd(keys.handled(), t)
            elif kind == 2:
                p.set(keys.cooldown(t), "1", ex=600)
            elif kind == 3:
                p.zadd(keys.ignored(), {t: now_ms() + 600_000})
            title = "a forbidden market" if kind == 4 else "Will it happen?"
            p.xadd(keys.signals(), buy(t, title=title).encode())
        await p.execute()
    svc = OrchestratorService(Settings.model_validate(SETTINGS), "bench", r)
    t0 = time.perf_counter()
    while True:
        await svc.step(block_ms=1)
        pending = await r.xinfo_groups(keys.signals())
        if pending and pending[0]["lag"] == 0 and pending[0]["pending"] == 0:
            break
    decided = time.perf_counter() - t0
    admitted = n - 4 * (n // 40)
    while await r.scard(keys.tokens_in_state("starting")) < admitted:
        await svc.step(block_ms=1)
    started = time.perf_counter() - t0
    return n / decided, n / started, admitted


async def latency(redis_url: str, keys: Keys, rate: float, seconds: float) -> list[float]:
    r = make_client(redis_url)
    await r.flushdb()
    await prepare_fleet(r, keys)
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp) / "polyfleet.yaml", 1, {**SETTINGS, "logging": {"level": "WARNING"}})
        proc = ServiceProcess("orchestrator", {"PF_CONFIG": str(config), "PF_REDIS_URL": redis_url,
                                               "PF_NAMESPACE": keys.ns, "PF_INSTANCE": "bench-orch"}, Path(tmp)).start()
        try:
            while await r.get(keys.orchestrator_leader()) != "bench-orch":
                await asyncio.sleep(0.05)
            sent: dict[str, float] = {}
            seen: dict[str, float] = {}
            total = int(rate * seconds)

            async def reader() -> None:
                rd = aioredis.from_url(redis_url, decode_responses=True)
                last = {keys.cmd(w): "0-0" for w in WORKERS}
                while len(seen) < total:
                    resp = await rd.xread(last, block=200)
                    now = time.perf_counter()
                    for stream, rows in resp or []:
                        for entry_id, fields in rows:
                            last[stream] = entry_id
                            seen.setdefault(fields["token_id"], now)
                await rd.aclose()

            task = asyncio.create_task(reader())
            start = time.perf_counter()
            for i in range(total):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                token = f"lat{i:07d}"
                sent[token] = time.perf_counter()
                await r.xadd(keys.signals(), buy(token).encode())  # type: ignore[arg-type]
            await asyncio.wait_for(task, timeout=30)
        finally:
            proc.stop()
    await r.aclose()
    return [(seen[t] - sent[t]) * 1000 for t in sent]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--signals", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    print(describe())
    server = RedisServer().start()
    keys = Keys("pfbench")
    os.environ["PF_NAMESPACE"] = keys.ns
    try:
        r = make_client(server.url)  # the services' own client (hiredis packing)
        decided, with_starts, admitted = await throughput(r, keys, args.signals)
        await r.aclose()
        print(f"throughput: {args.signals} BUY signals, {admitted} admitted: {decided:,.0f} decisions/s; "
              f"{with_starts:,.0f} signals/s including their START commands")
        lat = await latency(server.url, keys, args.rate, args.seconds)
        p = percentiles(lat)
        print(f"signal -> START at {args.rate:.0f} signals/s over {args.seconds:.0f}s ({len(lat)} signals): "
              + ", ".join(f"{k} {v:.2f} ms" for k, v in p.items()))
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
