"""Maker worker benchmark (issue 6): sessions per process, tick-to-decision, tick-to-order-ack, signing.

``uv run python -m bench.bench_worker [--tokens 500] [--rate 2000] [--seconds 20] [--order-tokens 40]
[--cycles 2] [--signs 200]``

Everything runs on loopback against a private redis-server (never 6379); the workers are real
``python -m services.maker_worker`` processes (harness.ServiceProcess).

1. Sessions per worker process. One worker in ``mode: paper`` gets ``--tokens`` START commands on
   its command stream (the orchestrator's Command message), so it runs that many sessions. The
   bench plays the gateway: it writes each token's ``pf:book`` hash, keeps ``pf:gw:alive`` set, and
   publishes Tick JSON on ``pf:tick:{token}`` (HSET + PUBLISH per tick, as the gateway does) at a
   steady ``--rate`` ticks/s in total, round robin over the tokens, asks wandering in 0.50-0.54.
   The strategy evaluates every tick but never orders (``drop_pct`` 0.5: a 50 % drop would be
   needed), so this is the tick path alone. Reported over ``--seconds`` after a 3 s warm-up: the
   worker's RSS (``VmRSS``, sampled every 0.5 s; and ``VmHWM``), its CPU (utime + stime from
   ``/proc/<pid>/stat``), ticks received, and tick-to-decision: the worker's own histogram
   (services/maker_worker/latency.py, in its ``pf:health`` heartbeat) of wall clock at strategy
   evaluation minus the tick's ``ts_recv`` (stamped by the bench just before PUBLISH, whole ms, so
   samples over-state by 0-1 ms; percentiles are bucket upper bounds, 0.5 ms wide up to 20 ms).
2. Tick-to-order-acknowledged against sim_exchange, signing included. A worker in ``mode: sim``
   (the venue room on the official SDK -> sim_exchange) runs ``--order-tokens`` sessions; for each token in turn
   the bench sets the sim's book, then publishes a tick with the ask dropped from 0.60 to 0.50
   (``drop_pct`` 0.1: BUY 10 @ 0.50, FAK, fills), then one with the bid at 0.56 (``profit_pct``
   0.1: SELL 10 @ 0.56, FAK, fills); ``--cycles`` times. Latency = the order's ``pf:orders`` event
   (``ts_event``, stamped after ``ClobExecutor.place()`` returned and the intent was updated, one
   HSET later) minus the tick's publish time. The first BUY of a token also fetches its market
   info (``prepare``: its REST book, 1 GET) and is reported apart; a SELL reads the venue position
   first. Then a burst: the drop tick for every token at once (all on the worker's one event loop).
3. Order create + sign alone: ``ClobExecutor.sign`` (exact amounts, the SDK's order draft and
   EIP-712 signer, no request) in a loop of ``--signs`` after a warm-up, with the secp256k1 backend
   eth-keys uses printed beside it; then posting alone; finally ``--order-tokens`` concurrent
   ``ClobExecutor.place`` calls on one event loop (the venue client is async: no thread pool).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench.machine import describe, percentiles
from harness import RedisServer, ServiceProcess, SimExchangeProcess, free_port, write_config
from services.maker_worker.latency import diff_counts, quantile
from shared.clock import now_ms
from shared.keys import Keys
from shared.messages import Command, stable_id
from shared.redisio.client import make_client
from shared.ticks import Tick

KEYS = Keys("pf")
WARMUP_SEC = 3.0
TICKS_PER_BATCH_PERIOD = 0.005  # the publisher sends a pipeline every 5 ms

NO_ORDER_PARAMS: dict[str, Any] = {"maker_strategy": {"drop_pct": 0.5, "profit_pct": 0.5, "order_size": 10}}
ORDER_PARAMS: dict[str, Any] = {
    "maker_strategy": {"drop_pct": 0.1, "profit_pct": 0.1, "order_size": 10, "reject_cooldown_sec": 0},
    "execution": {"wait_sec": 0, "order_interval_sec": 0, "retry_attempts": 0, "poll_interval_sec": 0.5},
}


# --- helpers ---------------------------------------------------------------------------------------

def proc_stat(pid: int) -> tuple[float, int, int, int]:
    """(CPU seconds so far, VmRSS kB, VmHWM kB, threads) of ``pid`` from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    status: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                status[name] = int(value.split()[0])
    return cpu, status.get("VmRSS", 0), status.get("VmHWM", 0), status.get("Threads", 0)


def error_summary(log: str) -> str:
    """How many tracebacks a service log holds, and its most common exception lines."""
    finals = Counter(line.strip()[:160] for line in log.splitlines() if re.match(r"[\w.]+(Error|Exception)\b", line))
    n = log.count("Traceback (most recent call last)")
    return f"{n} tracebacks" + (f"; most common: {dict(finals.most_common(3))}" if finals else "")


def fmt(p: dict[str, float], unit: str = "ms") -> str:
    return ", ".join(f"{k} {v:.2f} {unit}" for k, v in p.items())


def tick(token: str, seq: int, bid: float, ask: float) -> Tick:
    ts = now_ms()
    return Tick(token, seq, bid, ask, 100.0, 100.0, None, 0.01, ts, ts)


async def health(r: aioredis.Redis, worker: str) -> dict[str, Any]:
    raw = await r.get(KEYS.health("maker_worker", worker))
    return json.loads(raw) if raw else {}


async def next_beat(r: aioredis.Redis, worker: str, after_ts: int = 0, timeout: float = 10) -> dict[str, Any]:
    """The first heartbeat written after ``after_ts`` (ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = await health(r, worker)
        if h and h["ts"] > after_ts:
            return h
        await asyncio.sleep(0.05)
    raise SystemExit(f"no heartbeat from {worker}")


async def wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def start_worker(name: str, config: Path, redis_url: str, tmp: Path) -> ServiceProcess:
    return ServiceProcess("maker_worker", {"PF_CONFIG": str(config), "PF_REDIS_URL": redis_url, "PF_NAMESPACE": "pf",
                                           "PF_INSTANCE": name, "PF_METRICS_PORT": str(free_port())}, tmp).start()


async def start_sessions(r: aioredis.Redis, worker: ServiceProcess, name: str, tokens: list[str],
                         params: dict[str, Any], timeout: float, versions: dict[str, str] | None = None) -> float:
    """START every token on ``name`` (owner + epoch set first, as the orchestrator does); wait until
    every session reported ``started``. Returns the seconds it took."""
    await wait_for(f"{name} lease", lambda: r.exists(KEYS.worker_lease(name)), 30)
    t0 = time.monotonic()
    async with r.pipeline(transaction=False) as p:
        for t in tokens:
            p.hset(KEYS.token(t), mapping={"owner": name, "epoch": 1, "state": "starting"})
            # the market's system travels in the START params, as the orchestrator writes it
            cmd = Command(id=stable_id("bench-start", t), ts_event=now_ms(), ts_init=now_ms(), producer="bench",
                          action="START", token_id=t, epoch=1,
                          params={**params, "market_version": (versions or {}).get(t, "v1")})
            p.xadd(KEYS.cmd(name), cmd.encode())  # type: ignore[arg-type]
        await p.execute()

    async def all_started() -> bool:
        if not worker.alive():
            raise SystemExit(f"worker {name} died:\n{worker.log()[-3000:]}")
        rows = await r.xrange(KEYS.sessions())
        return sum(1 for _, f in rows if f.get("status") == "started" and f.get("worker") == name) >= len(tokens)

    await wait_for(f"{len(tokens)} sessions started", all_started, timeout)
    return time.monotonic() - t0


# --- 1. sessions per process -----------------------------------------------------------------------

async def publish_steady(r: aioredis.Redis, tokens: list[str], seq: dict[str, int], rate: float, seconds: float,
                         rng: random.Random) -> int:
    """HSET + PUBLISH ``rate`` ticks/s for ``seconds``, round robin over ``tokens``. -> ticks sent."""
    per_batch = max(1, round(rate * TICKS_PER_BATCH_PERIOD))
    period = per_batch / rate
    start = time.monotonic()
    sent, i = 0, 0
    n = int(rate * seconds)
    while sent < n:
        due = start + (sent // per_batch) * period
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with r.pipeline(transaction=False) as p:
            for _ in range(min(per_batch, n - sent)):
                t = tokens[i % len(tokens)]
                i += 1
                seq[t] += 1
                ask = round(0.50 + rng.randrange(5) / 100, 2)
                tk = tick(t, seq[t], round(ask - 0.01, 2), ask)
                p.execute_command("HSET", KEYS.book(t), *tk.hash_args())
                p.publish(KEYS.tick(t), tk.to_json())
                sent += 1
            await p.execute()
    return sent


async def sessions_phase(redis: RedisServer, sim: SimExchangeProcess, args: argparse.Namespace, tmp: Path) -> None:
    name = "bench-paper"
    r = make_client(redis.url)
    await r.flushall()
    await r.set(KEYS.gw_alive(), "1")  # the bench is the gateway: its liveness key stays up
    tokens = [str(10**76 + 7919 * i) for i in range(args.tokens)]
    seq = dict.fromkeys(tokens, 1)
    async with r.pipeline(transaction=False) as p:
        for t in tokens:
            p.execute_command("HSET", KEYS.book(t), *tick(t, 1, 0.51, 0.52).hash_args())
        await p.execute()
    # paper mode sends nothing, but the worker resolves its venue environment at start: the idle sim's
    config = write_config(tmp / "paper.yaml", sim.port, {
        "mode": "paper", "logging": {"level": "WARNING"},
        "workers": {"capacity": max(1000, args.tokens), "lease_ms": 30_000, "heartbeat_interval_sec": 1.0},
    })
    worker = start_worker(name, config, redis.url, tmp)
    try:
        assert worker.proc is not None
        pid = worker.proc.pid
        await wait_for(f"{name} lease", lambda: r.exists(KEYS.worker_lease(name)), 30)
        _, rss_idle, _, _ = proc_stat(pid)
        took = await start_sessions(r, worker, name, tokens, NO_ORDER_PARAMS, timeout=120)
        _, rss_sessions, _, _ = proc_stat(pid)
        print(f"[sessions] {args.tokens} sessions started in {took:.1f} s in one worker process (pid {pid}); "
              f"RSS registered and idle {rss_idle / 1024:.1f} MB, with the sessions up {rss_sessions / 1024:.1f} MB")
        rng = random.Random(7)
        rss_max = 0
        stop = asyncio.Event()

        async def sample_rss() -> None:
            nonlocal rss_max
            while not stop.is_set():
                rss_max = max(rss_max, proc_stat(pid)[1])
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        pub = asyncio.create_task(publish_steady(r, tokens, seq, args.rate, WARMUP_SEC + args.seconds + 1.5, rng))
        await asyncio.sleep(WARMUP_SEC)
        h0 = await next_beat(r, name, now_ms())
        cpu0, t0 = proc_stat(pid)[0], time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu1, t1 = proc_stat(pid)[0], time.monotonic()
        h1 = await next_beat(r, name, now_ms())
        await pub
        stop.set()
        await sampler
        _, rss_end, hwm, threads = proc_stat(pid)
        span = (h1["ts"] - h0["ts"]) / 1000
        window = diff_counts(h1["decide_hist"], h0["decide_hist"])
        n = sum(window.values())
        got = h1["ticks"] - h0["ticks"]
        print(f"[sessions] ticks published at {args.rate:,.0f}/s over {args.tokens} tokens; window {span:.1f} s "
              f"between two heartbeats: worker received {got / span:,.0f} ticks/s, strategy evaluated "
              f"{n / span:,.0f} ticks/s ({n:,} decisions; {max(0, got - n):,} ticks superseded before their session woke)")
        print(f"[sessions] tick-to-decision (ts_recv at publish -> strategy evaluated, worker histogram, bucket upper "
              f"bounds): p50 {quantile(window, 0.5)} ms, p90 {quantile(window, 0.9)} ms, p99 {quantile(window, 0.99)} ms, "
              f"p99.9 {quantile(window, 0.999)} ms, max bucket {quantile(window, 1.0)} ms")
        print(f"[sessions] worker CPU {(cpu1 - cpu0) / (t1 - t0) * 100:.1f} % of one core; RSS max {rss_max / 1024:.1f} MB "
              f"during the run, {rss_end / 1024:.1f} MB at the end, peak (VmHWM) {hwm / 1024:.1f} MB; {threads} threads; "
              f"sessions in the heartbeat {h1['sessions']}")
        print(f"[sessions] sessions alive at the end (heartbeat): {h1['sessions']} of {args.tokens}")
        ended = [f for _, f in await r.xrange(KEYS.sessions()) if f.get("status") != "started"]
        if ended:
            print(f"[sessions] sessions that reported an end during the run: {len(ended)}: "
                  f"{sorted({(f['status'], f.get('reason', '')[:120]) for f in ended})}")
        print(f"[sessions] worker log: {error_summary(worker.log())}")
        orders = await r.xlen(KEYS.orders())
        print(f"[sessions] orders sent during the run: {orders} (the parameters never order: tick path only)")
    finally:
        worker.stop()
        await r.aclose()


# --- 2. tick -> order acknowledged -----------------------------------------------------------------

class OrderWatch:
    """Reads pf:orders from the end; hands each new event to whoever waits for its token."""

    def __init__(self, url: str) -> None:
        self.r = aioredis.Redis.from_url(url, decode_responses=True)
        self.last = "$"
        self.events: list[dict[str, str]] = []

    async def read(self, block_ms: int = 200) -> list[dict[str, str]]:
        resp = await self.r.xread({KEYS.orders(): self.last}, block=block_ms)
        out = []
        for _, rows in resp or []:
            for entry_id, fields in rows:
                self.last = entry_id
                out.append(fields)
        self.events += out
        return out

    async def wait(self, want: set[str], timeout: float = 15) -> dict[str, dict[str, str]]:
        """The first order event of each token in ``want``."""
        got: dict[str, dict[str, str]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(want) and time.monotonic() < deadline:
            for f in await self.read():
                if f["token_id"] in want and f["token_id"] not in got:
                    got[f["token_id"]] = f
        if len(got) < len(want):
            raise SystemExit(f"{len(want) - len(got)} orders not seen within {timeout}s")
        return got


async def set_book(http: httpx.AsyncClient, token: str, bid: float, ask: float) -> None:
    resp = await http.put(f"/_sim/book/{token}", json={"bids": [{"price": bid, "size": 100_000}],
                                                       "asks": [{"price": ask, "size": 100_000}]})
    resp.raise_for_status()


async def publish_one(r: aioredis.Redis, tk: Tick) -> float:
    """HSET + PUBLISH like the gateway; returns the wall time (ms, float) just before it was sent."""
    t = time.time() * 1000
    async with r.pipeline(transaction=False) as p:
        p.execute_command("HSET", KEYS.book(tk.token_id), *tk.hash_args())
        p.publish(KEYS.tick(tk.token_id), tk.to_json())
        await p.execute()
    return t


def ack_ms(event: dict[str, str], sent_ms: float) -> float:
    return int(event["ts_event"]) - sent_ms


def start_sim(redis: RedisServer, args: argparse.Namespace, tmp: Path) -> SimExchangeProcess:
    port = free_port()
    config = write_config(tmp / "sim.yaml", port, {
        "mode": "sim", "logging": {"level": "WARNING"}, "polymarket": {"wallet": args.wallet},
        # the venue's per-signer buckets off: this measures polyfleet's path, not the sim's throttle
        "sim_exchange": {"markets": (args.order_tokens + 1) // 2, "tick_interval_ms": 3_600_000, "volatility": 0,
                         "starting_cash": 1_000_000, "rate_limit": "off"},
        "workers": {"capacity": 1000, "lease_ms": 30_000, "heartbeat_interval_sec": 1.0},
    })
    return SimExchangeProcess(config, port, tmp, {"PF_REDIS_URL": redis.url}).start()


async def orders_phase(redis: RedisServer, sim: SimExchangeProcess, args: argparse.Namespace, tmp: Path) -> None:
    name = "bench-sim"
    config = Path(sim.env["PF_CONFIG"])
    r = make_client(redis.url)
    http = httpx.AsyncClient(base_url=sim.url, timeout=10)
    await r.flushall()
    await r.set(KEYS.gw_alive(), "1")
    markets = (await http.get("/_sim/markets")).json()
    versions = {t["token_id"]: m["version"] for m in markets for t in m["tokens"]}
    tokens = [t["token_id"] for m in markets for t in m["tokens"]][:args.order_tokens]
    seq = dict.fromkeys(tokens, 1)
    for t in tokens:  # the window high every drop is measured from
        await r.execute_command("HSET", KEYS.book(t), *tick(t, 1, 0.59, 0.60).hash_args())
    worker = start_worker(name, config, redis.url, tmp)
    watch = OrderWatch(redis.url)
    try:
        assert worker.proc is not None
        pid = worker.proc.pid
        took = await start_sessions(r, worker, name, tokens, ORDER_PARAMS, timeout=120, versions=versions)
        print(f"[orders] {len(tokens)} sessions against sim_exchange started in {took:.1f} s "
              f"(each cancels open orders and reads its position at the venue first)")
        first_buy: list[float] = []
        buy: list[float] = []
        sell: list[float] = []
        bad: list[str] = []
        await watch.read(block_ms=1)
        for cycle in range(args.cycles):
            for t in tokens:
                for side in ("BUY", "SELL"):
                    bid, ask = (0.49, 0.50) if side == "BUY" else (0.56, 0.58)
                    await set_book(http, t, bid - 0.04 if side == "BUY" else bid, ask)
                    seq[t] += 1
                    sent = await publish_one(r, tick(t, seq[t], bid, ask))
                    ev = (await watch.wait({t}))[t]
                    if ev["side"] != side or ev["status"] != "matched":
                        bad.append(f"{side} {t[:8]}: {ev['side']} {ev['status']} {ev.get('reason', '')}")
                    (sell if side == "SELL" else first_buy if cycle == 0 else buy).append(ack_ms(ev, sent))
        warm = buy + sell
        print(f"[orders] tick published -> order acknowledged (pf:orders event after ClobExecutor.place() returned), "
              f"one order at a time, {len(first_buy) + len(warm)} orders:")
        print(f"[orders]   first BUY of a token (includes prepare: GET /book), n {len(first_buy)}: "
              f"{fmt(percentiles(first_buy))}")
        if buy:
            print(f"[orders]   BUY, market info cached, n {len(buy)}: {fmt(percentiles(buy))}")
        print(f"[orders]   SELL (reads the venue position first), n {len(sell)}: {fmt(percentiles(sell))}")
        print(f"[orders]   every order except first BUYs, n {len(warm)}: {fmt(percentiles(warm))}")
        print(f"[orders]   all orders, n {len(first_buy) + len(warm)}: {fmt(percentiles(first_buy + warm))}")
        if bad:
            print(f"[orders]   unexpected outcomes ({len(bad)}): {bad[:5]}")

        # Burst: every token's drop at once. Tokens are FLAT and prepared after the cycles above.
        for t in tokens:
            await set_book(http, t, 0.45, 0.50)
        threads_max = 0
        stop = asyncio.Event()

        async def sample_threads() -> None:
            nonlocal threads_max
            while not stop.is_set():
                threads_max = max(threads_max, proc_stat(pid)[3])
                await asyncio.sleep(0.002)

        threads_before = proc_stat(pid)[3]
        sampler = asyncio.create_task(sample_threads())
        sent = time.time() * 1000
        async with r.pipeline(transaction=False) as p:
            for t in tokens:
                seq[t] += 1
                tk = tick(t, seq[t], 0.49, 0.50)
                p.execute_command("HSET", KEYS.book(t), *tk.hash_args())
                p.publish(KEYS.tick(t), tk.to_json())
            await p.execute()
        events = await watch.wait(set(tokens), timeout=30)
        stop.set()
        await sampler
        lat = [ack_ms(e, sent) for e in events.values()]
        ok = sum(1 for e in events.values() if e["status"] == "matched")
        span = max(lat) / 1000
        print(f"[orders] burst: the drop tick for all {len(tokens)} tokens in one pipeline: {ok} matched; tick -> ack "
              f"{fmt(percentiles(lat))}; {len(tokens) / span:.0f} orders/s; worker threads {threads_before} before, "
              f"up to {threads_max} during")
    finally:
        worker.stop()
        await watch.r.aclose()
        await http.aclose()
        await r.aclose()


# --- 3. create + sign alone, post alone, concurrency -----------------------------------------------

async def signing_phase(sim: SimExchangeProcess, args: argparse.Namespace) -> None:
    from eth_keys.backends import get_backend

    from services.maker_worker.executor import ClobExecutor, MarketFacts
    from shared.config import Secrets, load_settings
    from shared.venue.account import open_account
    from shared.venue.environment import fetch_sim_environment
    from shared.venue.orders import VenueOrders

    settings = load_settings(sim.env["PF_CONFIG"], environ={})
    env = await fetch_sim_environment(sim.url)
    account = await open_account(settings, Secrets(), env)
    ex = ClobExecutor(VenueOrders(account))
    http = httpx.AsyncClient(base_url=sim.url, timeout=10)
    markets = (await http.get("/_sim/markets")).json()
    versions = {t["token_id"]: m["version"] for m in markets for t in m["tokens"]}
    tokens = [t["token_id"] for m in markets for t in m["tokens"]][:args.order_tokens]
    for t in tokens:
        ex.describe(t, MarketFacts(version=versions[t]))
        await ex.prepare(t)
        await set_book(http, t, 0.45, 0.50)
    for i in range(50):  # warm-up: first-call costs (imports, caches) are not the steady state
        await ex.sign(tokens[i % len(tokens)], "BUY", 0.50, 10, 0.01, "FAK")
    signs: list[float] = []
    cpu: list[float] = []  # this thread's CPU time: the work itself, without the waits a loaded box adds
    signed = []
    for i in range(args.signs):
        t = tokens[i % len(tokens)]
        t0, c0 = time.perf_counter(), time.thread_time()
        signed.append((t, await ex.sign(t, "BUY", 0.50, 10, 0.01, "FAK")))
        cpu.append((time.thread_time() - c0) * 1000)
        signs.append((time.perf_counter() - t0) * 1000)
    print(f"[signing] order create + sign (exact amounts, the SDK's draft and EIP-712 signer, no request; secp256k1 "
          f"backend {type(get_backend()).__name__}), {args.signs} orders: wall {fmt(percentiles(signs))}, "
          f"mean {sum(signs) / len(signs):.3f} ms; CPU {fmt(percentiles(cpu))}")
    posts: list[float] = []
    for t, s in signed[:100]:
        t0 = time.perf_counter()
        res = await ex.post_signed(t, s)
        posts.append((time.perf_counter() - t0) * 1000)
        if not res.ok:
            raise SystemExit(f"post failed: {res}")
    print(f"[signing] post alone (HTTP + sim matching, FAK that fills), {len(posts)} orders: {fmt(percentiles(posts))}")

    t0 = time.perf_counter()

    async def one(t: str) -> float:
        s = time.perf_counter()
        res = await ex.place(t, "BUY", 0.50, 10, 0.01, "FAK")
        if not res.ok:
            raise SystemExit(f"place failed: {res}")
        return (time.perf_counter() - s) * 1000

    lat = await asyncio.gather(*(one(t) for t in tokens))
    wall = time.perf_counter() - t0
    print(f"[concurrent] {len(tokens)} concurrent ClobExecutor.place (sign + post, one event loop, no threads): "
          f"all done in {wall * 1000:.0f} ms ({len(tokens) / wall:.0f} orders/s); per order {fmt(percentiles(list(lat)))}")
    await account.close()
    await http.aclose()


async def main(args: argparse.Namespace) -> None:
    print(describe())
    print(f"load average (1, 5, 15 min) before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    redis = RedisServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-worker-"))
    sim: SimExchangeProcess | None = None
    try:
        sim = start_sim(redis, args, tmp)
        phases = set(args.phases.split(","))
        if "sessions" in phases:
            await sessions_phase(redis, sim, args, tmp)
        if "orders" in phases:
            await orders_phase(redis, sim, args, tmp)
        if "signing" in phases:
            await signing_phase(sim, args)
        print(f"load average (1, 5, 15 min) after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if sim is not None:
            sim.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--order-tokens", type=int, default=40)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--signs", type=int, default=2000)
    ap.add_argument("--phases", default="sessions,orders,signing", help="comma-separated subset to run")
    ap.add_argument("--wallet", default="deposit", choices=["deposit", "eoa"], help="polymarket.wallet of the orders")
    asyncio.run(main(ap.parse_args()))
