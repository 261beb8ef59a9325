"""WS gateway benchmark (issue 4): ingest throughput and frame-to-session latency, beside Redis's own
PUBLISH rate measured by ``redis-benchmark`` in the same run.

``uv run python -m bench.bench_gateway [--tokens 2000] [--seconds 10] [--rate 2000]``
``uv run python -m bench.bench_gateway --decoder`` (only 0. below)

0. The frame decoder: the same market-channel frames (built by sim_exchange's wire module, as the
   feeder builds them) decoded by the gateway's hand-written ``decode_frame`` and by the SDK's own
   stream decoding (``json.loads`` + ``parse_events``, shared.venue.sdk_reference), one frame at a
   time in this process: per-frame p50 / p99 in microseconds. The hand-written decoder stays while
   the SDK's costs more here (docs/benchmarks.md).

1. ``redis-benchmark -t publish`` against a private redis-server (never 6379): Redis's own limit.
2. Throughput: a feeder process (a websocket server speaking the market channel, frames built by
   sim_exchange's wire module, pre-rendered so the feeder is never the bottleneck) streams
   ``price_change`` frames for ``--tokens`` tokens as fast as the gateway reads them; every frame
   changes a top of book, so every frame is a tick. The gateway runs as a real process pinned to
   CPU 0 (feeder, Redis and this script on the others). Frames/s and ticks/s come from the
   gateway's heartbeat counters; Redis's ``cmdstat_publish`` confirms the PUBLISH count.
3. Latency: sim_exchange (``ws_rate_per_sec`` = ``--rate`` over ``--tokens`` tokens) -> gateway ->
   Redis -> a worker process whose sessions wait on :class:`shared.tickfeed.TickFeed`. Each session
   records ``now - ts_event``; ts_event is the sim's send time truncated to the ms, so every sample
   over-states the latency by 0-1 ms (the figures are upper bounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench.machine import describe, percentiles
from harness import ROOT, RedisServer, SimExchangeProcess, free_port, write_config

GATEWAY_CPU = 0


def other_cpus() -> set[int]:
    cpus = os.sched_getaffinity(0)
    rest = cpus - {GATEWAY_CPU}
    return rest or cpus


# --- 0. the frame decoder against the SDK's -----------------------------------------------------------

def decoder_frames() -> dict[str, str]:
    """One frame of each kind the gateway meets, in the venue's shapes (sim_exchange's wire module)."""
    from services.sim_exchange import wire
    from services.sim_exchange.market import make_markets

    m = make_markets(7, 1)[0]
    yes, no = m.tokens
    now = time.time()
    entry = {"asset_id": yes.token_id, "price": wire.num(max(yes.bids)), "size": "111", "side": "BUY",
             "hash": "0" * 40, "best_bid": wire.num(max(yes.bids)), "best_ask": wire.num(min(yes.asks))}

    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"))

    return {
        "price_change (1 level)": dumps(wire.price_change(m.condition_id, [entry], now)),
        "price_change (both tokens, 4 levels)": dumps(wire.price_change(m.condition_id, [
            entry, {**entry, "price": wire.num(min(yes.asks)), "side": "SELL"},
            {**entry, "asset_id": no.token_id, "price": wire.num(max(no.bids))},
            {**entry, "asset_id": no.token_id, "price": wire.num(min(no.asks)), "side": "SELL"}], now)),
        "last_trade_price": dumps(wire.last_trade(yes, 0.5, 10, "BUY", now, "0x" + "ab" * 32)),
        "book dump (2 books)": dumps([wire.ws_book(t, t.bids, t.asks, now) for t in (yes, no)]),
    }


def _ms(ts: Any) -> int:
    return int(ts.timestamp() * 1000) if ts is not None else 0


def _opt(value: Any) -> float | None:
    return float(value) if value is not None else None


def sdk_into_books(text: str) -> list[Any]:
    """The SDK's decode, then what the gateway would still have to do with it: its books keep
    floats and epoch ms, the SDK gives Decimals and datetimes."""
    from shared.venue import market_ws as mw
    from shared.venue import sdk_reference

    out: list[Any] = []
    for ev in sdk_reference.market_frame(text):
        p = ev.payload
        if ev.type == "price_change":
            out.append(mw.PriceChangeBatch(p.market, _ms(p.timestamp), tuple(
                mw.PriceChange(c.asset_id, float(c.price), float(c.size), c.side, _opt(c.best_bid), _opt(c.best_ask))
                for c in p.price_changes)))
        elif ev.type == "book":
            out.append(mw.BookSnapshot(p.asset_id, p.market, tuple(mw.Level(float(lv.price), float(lv.size))
                                                                    for lv in p.bids),
                                       tuple(mw.Level(float(lv.price), float(lv.size)) for lv in p.asks),
                                       _ms(p.timestamp), p.hash or "", _opt(p.tick_size), _opt(p.last_trade_price)))
        elif ev.type == "last_trade_price":
            out.append(mw.LastTrade(p.asset_id, p.market, float(p.price), float(p.size or 0), p.side, _ms(p.timestamp)))
    return out


def decoder_bench(rounds: int = 20_000) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """(frame kind, µs percentiles per decoder) per frame kind: ours, the SDK's, and the SDK's
    followed by the conversion into the gateway's types (the path the gateway would run)."""
    from shared.venue import sdk_reference
    from shared.venue.market_ws import decode_frame

    decoders = {"ours": decode_frame, "sdk": sdk_reference.market_frame, "sdk+types": sdk_into_books}
    out = []
    for kind, text in decoder_frames().items():
        assert len(decode_frame(text)) == len(sdk_reference.market_frame(text)) == len(sdk_into_books(text))
        timings: dict[str, list[float]] = {name: [] for name in decoders}
        for _ in range(rounds):  # interleaved: every decoder sees the same machine state
            for name, fn in decoders.items():
                t0 = time.perf_counter_ns()
                fn(text)
                timings[name].append((time.perf_counter_ns() - t0) / 1000)
        out.append((kind, {name: percentiles(t) for name, t in timings.items()}))
    return out


def print_decoder_bench() -> None:
    print("frame decoder, one frame at a time, per-frame µs p50 / p99 "
          "(SDK+types: the SDK's decode, then into the gateway's float/ms types):")
    for kind, t in decoder_bench():
        ours, sdk, full = t["ours"], t["sdk"], t["sdk+types"]
        print(f"  {kind:38} decode_frame {ours['p50']:6.1f} / {ours['p99']:6.1f}   SDK {sdk['p50']:6.1f} / "
              f"{sdk['p99']:6.1f}   SDK+types {full['p50']:6.1f} / {full['p99']:6.1f}   "
              f"SDK+types/ours at p50 {full['p50'] / ours['p50']:.1f}x")


# --- 1. redis-benchmark ----------------------------------------------------------------------------

SAMPLE_TICK = ('{"token_id":"71321045679252212594626385532706912750332728571942532289631379312455583992563",'
               '"seq":1234,"bid":0.47,"ask":0.49,"bid_size":55.0,"ask_size":25.0,"last":0.48,"tick_size":0.01,'
               '"ts_event":1757908892000,"ts_recv":1757908892003,"stale":false}')


def redis_benchmark(port: int) -> dict[str, float]:
    """Redis's own PUBLISH rate. redis-benchmark 7 has no built-in ``-t publish`` test, so the
    command is given explicitly, with a real tick as the payload (no subscribers, like the
    throughput run's channels)."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        raise SystemExit("redis-benchmark is not installed")
    out: dict[str, float] = {}
    for label, extra in (("50 clients", []), ("1 client", ["-c", "1"]), ("1 client, pipeline 16", ["-c", "1", "-P", "16"])):
        res = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port), "-n", "200000", "-q", *extra,
                              "PUBLISH", "pf:tick:bench", SAMPLE_TICK], capture_output=True, text=True, check=True)
        m = re.search(r"([\d.]+) requests per second", res.stdout.replace("\r", "\n"))
        out[label] = float(m.group(1)) if m else float("nan")
    return out


# --- 2. feeder -------------------------------------------------------------------------------------

def feeder_main(port: int, tokens: int) -> None:
    """A market-channel websocket server: book dump on subscribe, then price_change frames as fast
    as the client reads them (TCP backpressure), round robin over every subscribed token."""
    from websockets.asyncio.server import ServerConnection, serve

    from services.sim_exchange import wire
    from services.sim_exchange.market import make_markets

    markets = make_markets(7, (tokens + 1) // 2)
    books = {t.token_id: t for m in markets for t in m.tokens}

    def frames_for(token_ids: list[str]) -> list[str]:
        # Two rounds per token, alternating the best bid's size: each frame changes the top, and the
        # cycle repeats without ever repeating the previous state of a token.
        out = []
        for size in (111.0, 222.0):
            for tid in token_ids:
                b = books[tid]
                best = max(b.bids)
                entry = {"asset_id": tid, "price": wire.num(best), "size": wire.num(size), "side": "BUY",
                         "hash": "0" * 40, "best_bid": wire.num(best), "best_ask": wire.num(min(b.asks))}
                out.append(json.dumps({"event_type": "price_change", "market": b.condition_id,
                                       "timestamp": str(int(time.time() * 1000)), "price_changes": [entry]},
                                      separators=(",", ":")))
        return out

    async def handler(ws: ServerConnection) -> None:
        subscribed: list[str] = []
        first = json.loads(await ws.recv())
        subscribed = [a for a in first.get("assets_ids", []) if a in books]
        dump = [wire.ws_book(books[t], books[t].bids, books[t].asks, time.time()) for t in subscribed]
        await ws.send(json.dumps(dump, separators=(",", ":")))
        cycle = frames_for(subscribed)

        async def pong() -> None:
            async for msg in ws:
                if msg == "PING":
                    await ws.send("PONG")

        ponger = asyncio.create_task(pong())
        try:
            while True:
                for f in cycle:
                    await ws.send(f)
        except Exception:
            pass
        finally:
            ponger.cancel()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
            await asyncio.Future()

    asyncio.run(main())


def worker_main(redis_url: str, out_path: str, seconds: float) -> None:
    """Sessions on a TickFeed for every wanted token; each records now - ts_event per tick it sees.
    Tuned like a maker_worker process (shared.runtime applies shared.gctune to every service)."""
    from shared import gctune
    from shared.keys import Keys
    from shared.tickfeed import TickFeed

    gctune.tune(enabled=os.environ.get("PF_GC_TUNE", "1") != "0")

    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        keys = Keys("pf")
        feed = TickFeed(r, keys)
        tokens = sorted(await r.smembers(keys.gw_want("orchestrator")))  # type: ignore[misc]
        for t in tokens:
            await feed.add(t)
        stop = asyncio.Event()
        samples: list[float] = []
        runner = asyncio.create_task(feed.run(stop))
        deadline = time.monotonic() + seconds

        async def session(tid: str) -> None:
            last = feed.latest.get(tid)
            while time.monotonic() < deadline:
                tick = await feed.next_tick(tid, last, timeout=0.5)
                if tick is None:
                    continue
                samples.append(time.time() * 1000 - tick.ts_event)
                last = tick

        print("worker ready", flush=True)
        await asyncio.gather(*(session(t) for t in tokens))
        stop.set()
        await runner
        Path(out_path).write_text(json.dumps({"samples": samples, "gaps": feed.gaps,  # noqa: ASYNC240 - once, at the end
                                              "received": feed.received}))
        await feed.close()
        await r.aclose()

    asyncio.run(main())


# --- orchestration ---------------------------------------------------------------------------------

def spawn(args: list[str], env: dict[str, str], cpus: set[int], log: Path) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=fh,
                            stderr=subprocess.STDOUT, preexec_fn=lambda: os.sched_setaffinity(0, cpus))


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def health(r: aioredis.Redis) -> dict[str, Any]:
    raw = await r.get("pf:health:ws_gateway:bench")
    return json.loads(raw) if raw else {}


async def publish_calls(r: aioredis.Redis) -> int:
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def want_all(r: aioredis.Redis, tokens: list[str]) -> None:
    await r.sadd("pf:gw:want:orchestrator", *tokens)  # type: ignore[misc]
    await r.publish("pf:gw:notify", "bench")


async def wait_seeded(r: aioredis.Redis, tokens: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with r.pipeline(transaction=False) as p:
            for t in tokens:
                p.exists(f"pf:book:{t}")
            if all(await p.execute()):
                return
        await asyncio.sleep(0.5)
    raise SystemExit("the gateway did not seed every book in time")


def gateway_config(d: Path, ws_url: str, clob_url: str, sim_port: int) -> Path:
    return write_config(d / "gateway.yaml", sim_port, {
        "polymarket": {"url_overrides": {"clob_market_ws_url": ws_url, "clob_url": clob_url}},
        "gateway": {"stale_after_sec": 3600, "reconcile_interval_sec": 5},
        "monitoring": {"heartbeat_interval_sec": 1.0},
        "logging": {"level": "WARNING"},
    })


async def throughput(redis: RedisServer, tokens: int, seconds: float, tmp: Path) -> dict[str, Any]:
    from services.sim_exchange.market import make_markets

    token_ids = [t.token_id for m in make_markets(7, (tokens + 1) // 2) for t in m.tokens][:tokens]
    port = free_port()
    feeder = spawn([sys.executable, "-m", "bench.bench_gateway", "--feeder", str(port), "--tokens", str(tokens)],
                   {}, other_cpus(), tmp / "feeder.log")
    cfg = gateway_config(tmp, f"ws://127.0.0.1:{port}", "http://127.0.0.1:9", port)
    gw = spawn([sys.executable, "-m", "services.ws_gateway"],
               {"PF_CONFIG": str(cfg), "PF_REDIS_URL": redis.url, "PF_INSTANCE": "bench"}, {GATEWAY_CPU}, tmp / "gateway-tp.log")
    r = aioredis.Redis.from_url(redis.url, decode_responses=True)
    try:
        await r.flushall()
        await asyncio.sleep(1.0)
        await want_all(r, token_ids)
        await wait_seeded(r, token_ids)
        await asyncio.sleep(3.0)  # warm-up
        h0, p0, t0 = await health(r), await publish_calls(r), time.monotonic()
        await asyncio.sleep(seconds)
        h1, p1, t1 = await health(r), await publish_calls(r), time.monotonic()
        span_hb = (h1["ts"] - h0["ts"]) / 1000
        return {
            "frames_per_sec": (h1["frames"] - h0["frames"]) / span_hb,
            "ticks_per_sec": (h1["ticks"] - h0["ticks"]) / span_hb,
            "redis_publish_per_sec": (p1 - p0) / (t1 - t0),
            "parse_errors": h1["parse_errors"], "drift": h1["drift"], "backlog": h1["publish_backlog"],
            "connections": h1["connections"], "hop_gateway_p50_ms": h1.get("hop_gateway_p50_ms"),
            "hop_gateway_p99_ms": h1.get("hop_gateway_p99_ms"),
        }
    finally:
        stop(gw)
        stop(feeder)
        await r.aclose()


async def latency(redis: RedisServer, tokens: int, rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    port = free_port()
    sim_cfg = write_config(tmp / "sim.yaml", port, {"sim_exchange": {
        "markets": (tokens + 1) // 2, "tick_interval_ms": 3_600_000, "volatility": 0, "ws_rate_per_sec": rate}})
    sim = SimExchangeProcess(sim_cfg, port, tmp)
    sim.env["PF_REDIS_URL"] = redis.url
    sim.start()
    os.sched_setaffinity(sim.proc.pid, other_cpus())  # type: ignore[union-attr]
    markets = httpx.get(f"{sim.url}/_sim/markets", timeout=30).json()  # noqa: ASYNC210 - setup, before timing
    token_ids = [t["token_id"] for m in markets for t in m["tokens"]][:tokens]
    cfg = gateway_config(tmp, f"ws://127.0.0.1:{port}/ws/market", f"http://127.0.0.1:{port}", port)
    gw = spawn([sys.executable, "-m", "services.ws_gateway"],
               {"PF_CONFIG": str(cfg), "PF_REDIS_URL": redis.url, "PF_INSTANCE": "bench"}, {GATEWAY_CPU}, tmp / "gateway-lat.log")
    r = aioredis.Redis.from_url(redis.url, decode_responses=True)
    out_path = tmp / "worker.json"
    worker: subprocess.Popen[bytes] | None = None
    try:
        await r.flushall()
        await asyncio.sleep(1.0)
        await want_all(r, token_ids)
        await wait_seeded(r, token_ids)
        worker = spawn([sys.executable, "-m", "bench.bench_gateway", "--worker", redis.url, str(out_path),
                        "--seconds", str(seconds + 3)], {}, other_cpus(), tmp / "worker.log")
        await asyncio.sleep(3.0)
        h0 = await health(r)
        await asyncio.sleep(seconds)
        h1 = await health(r)
        worker.wait(seconds + 60)
        data = json.loads(out_path.read_text())
        samples = data["samples"][len(data["samples"]) // 10:]  # drop the warm-up tenth
        span = (h1["ts"] - h0["ts"]) / 1000
        return {"frames_per_sec": (h1["frames"] - h0["frames"]) / span, "ticks_per_sec": (h1["ticks"] - h0["ticks"]) / span,
                "samples": len(samples), "gaps": data["gaps"], **percentiles(samples),
                "hop_gateway_p99_ms": h1.get("hop_gateway_p99_ms"), "hop_venue_p99_ms": h1.get("hop_venue_p99_ms"),
                "gc": {g: h1.get(g) for g in ("gc0", "gc1", "gc2")}}
    finally:
        if worker is not None:
            stop(worker)
        stop(gw)
        sim.stop()
        await r.aclose()


async def main(args: argparse.Namespace) -> None:
    print(describe())
    print(f"gateway pinned to CPU {GATEWAY_CPU}; feeder/sim, redis-server and worker on CPU(s) {sorted(other_cpus())}")
    redis = RedisServer().start()
    assert redis.proc is not None
    os.sched_setaffinity(redis.proc.pid, other_cpus())
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-gw-"))
    try:
        print_decoder_bench()
        rb = redis_benchmark(redis.port)
        for label, value in rb.items():
            print(f"redis-benchmark -n 200000 PUBLISH <tick> ({label}): {value:,.0f} PUBLISH/s")
        tp = await throughput(redis, args.tokens, args.seconds, tmp)
        print(f"throughput, {args.tokens} tokens: {tp['frames_per_sec']:,.0f} frames/s ingested, "
              f"{tp['ticks_per_sec']:,.0f} ticks/s published (Redis counted {tp['redis_publish_per_sec']:,.0f} PUBLISH/s) "
              f"on {tp['connections']} connections; frame->Redis ack p50 {tp['hop_gateway_p50_ms']} ms, "
              f"p99 {tp['hop_gateway_p99_ms']} ms; parse errors {tp['parse_errors']}, drift {tp['drift']}")
        single = rb["1 client"]
        print(f"  ratio to redis-benchmark PUBLISH (1 client): {tp['ticks_per_sec'] / single:.2f}; "
              f"(50 clients): {tp['ticks_per_sec'] / rb['50 clients']:.2f}")
        lat = await latency(redis, args.tokens, args.rate, args.seconds, tmp)
        print(f"latency at {args.rate:,.0f} frames/s over {args.tokens} tokens (sim -> gateway -> Redis -> session): "
              f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms "
              f"({lat['samples']} samples; upper bounds: ts_event is truncated to the ms); gateway measured "
              f"{lat['frames_per_sec']:,.0f} frames/s, {lat['ticks_per_sec']:,.0f} ticks/s; seq gaps at the worker {lat['gaps']}")
        print(f"  where the time goes (gateway heartbeat, last 4096 ticks): sim timestamp -> gateway receive p99 "
              f"{lat['hop_venue_p99_ms']} ms; gateway receive -> Redis ack p99 {lat['hop_gateway_p99_ms']} ms")
        print(f"  gateway garbage-collector pauses over the run (PF_GC_TUNE={os.environ.get('PF_GC_TUNE', '1')}): "
              f"{lat['gc']}")
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--decoder", action="store_true", help="only the frame decoder against the SDK's")
    ap.add_argument("--feeder", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.decoder:
        print(describe())
        print_decoder_bench()
    elif a.feeder:
        feeder_main(a.feeder, a.tokens)
    elif a.worker:
        worker_main(a.worker[0], a.worker[1], a.seconds)
    else:
        asyncio.run(main(a))
