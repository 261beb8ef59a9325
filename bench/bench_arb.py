"""arb_scanner benchmark (E2/E3): a catalogue of 5,000 binary markets, ticks at a steady rate.

``uv run python -m bench.bench_arb [--markets 5000] [--rate 1000] [--seconds 10]``

* A private redis-server (never 6379). The scanner (the real ``ArbScannerService``: its tick
  feed, tick evaluation, tracker and XADD) runs in a child process with the catalogue built
  by ``catalogue.build`` from 5,000 Gamma-shaped events and installed in Redis (wanted set too).
* This process publishes ticks on ``pf:tick:{token}`` at ``--rate`` a second over all 10,000
  tokens: ordinary moves (YES + NO asks sum >= 1.02, nothing to report) and, every 50th tick, a
  market whose YES ask drops so the asks sum to 0.95 (then back on the next round).
* Detection latency = from just before PUBLISH of the crossing tick to this process reading the
  ``open`` opportunity from ``pf:opportunities`` (XREAD BLOCK on its own connection): tick ->
  Redis -> scanner -> Redis -> reader. The scanner's own in-process figure (pub/sub message in
  hand -> XADD acknowledged) is printed beside it. Sizing from the venue's full book (REST
  /books) happens after the ``open`` and is not part of this figure.
* CPU: the scanner process's user+sys seconds over the measured window / wall seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from bench.machine import describe, percentiles
from harness import ROOT, RedisServer

CROSS_EVERY = 50


def events(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "slug": f"e{i}", "title": f"E{i}", "negRisk": False, "markets": [{
        "id": str(i), "question": f"Market {i}?", "conditionId": f"0x{i:064x}", "slug": f"m{i}",
        "endDate": "2031-01-01T00:00:00Z", "outcomes": '["Yes", "No"]',
        "clobTokenIds": json.dumps([f"{i}01", f"{i}02"]), "active": True, "closed": False,
        "acceptingOrders": True, "orderPriceMinTickSize": 0.01, "orderMinSize": 5, "liquidityNum": 1000,
        "feesEnabled": True, "feeSchedule": {"rate": 0.04, "exponent": 1}}]} for i in range(n)]


def tick_json(token: str, seq: int, bid: float, ask: float) -> str:
    from shared.ticks import Tick
    now = int(time.time() * 1000)
    return Tick(token, seq, bid, ask, 100.0, 100.0, None, 0.01, now, now).to_json()


# ---- the scanner side (child process) -----------------------------------------------------------
async def scanner(url: str, markets: int) -> None:
    from services.arb_scanner import catalogue
    from services.arb_scanner.detect import Kind
    from services.arb_scanner.service import ArbScannerService
    from shared.config import Settings

    settings = Settings.model_validate({"arbitrage": {"enabled": True, "rescan_interval_sec": 2.0,
                                                      "depth_min_interval_sec": 3600}})
    r = aioredis.Redis.from_url(url, decode_responses=True)
    svc = ArbScannerService(settings, "bench", redis=r)
    sets, _ = catalogue.build(events(markets), set(Kind))
    await svc.catalogue.install(sets)
    listen = asyncio.create_task(svc.ticks.feed.run(asyncio.Event()))
    print("READY", flush=True)
    while True:
        t = os.times()
        print(json.dumps({"cpu": t.user + t.system, "wall": time.monotonic(), "ticks": svc.stats["ticks"],
                          "published": svc.stats["published"], "p50": _pct(svc, 0.5), "p99": _pct(svc, 0.99)}),
              flush=True)
        await asyncio.sleep(0.5)
        if listen.done():
            listen.result()


def _pct(svc: Any, q: float) -> float:
    s = sorted(svc.ticks.latency_ms)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3) if s else 0.0


# ---- the feeder / reader side (this process) ----------------------------------------------------
async def feed(url: str, markets: int, rate: float, seconds: float, child: subprocess.Popen[str]) -> dict[str, Any]:
    from shared.keys import Keys
    from shared.messages import Opportunity, decode

    keys = Keys("pf")
    pub = aioredis.Redis.from_url(url, decode_responses=True)
    rd = aioredis.Redis.from_url(url, decode_responses=True)
    seq: dict[str, int] = {}
    sent_at: dict[str, int] = {}  # market id -> perf_counter_ns of the crossing tick
    lat: list[float] = []

    def nxt(token: str) -> int:
        seq[token] = seq.get(token, 0) + 1
        return seq[token]

    async def publish(token: str, bid: float, ask: float) -> None:
        await pub.publish(keys.tick(token), tick_json(token, nxt(token), bid, ask))

    for i in range(markets):  # every market starts at YES 0.50/0.52, NO 0.48/0.50: asks sum 1.02
        await publish(f"{i}01", 0.50, 0.52)
        await publish(f"{i}02", 0.48, 0.50)
    await asyncio.sleep(2.0)

    async def reader() -> None:
        last = "$"
        while True:
            got = await rd.xread({keys.opportunities(): last}, block=1000, count=100)
            now = time.perf_counter_ns()
            for _, entries in got:
                for eid, fields in entries:
                    last = eid
                    msg = decode(fields)
                    if isinstance(msg, Opportunity) and msg.status == "open" and msg.verdict == "opportunity":
                        t0 = sent_at.pop(msg.market, None)
                        if t0 is not None:
                            lat.append((now - t0) / 1e6)

    read_task = asyncio.create_task(reader())
    lines: list[dict[str, Any]] = []

    async def watch() -> None:
        assert child.stdout is not None
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, child.stdout.readline)
            if not line:
                return
            if line.startswith("{"):
                lines.append(json.loads(line))

    watch_task = asyncio.create_task(watch())
    await asyncio.sleep(1.0)
    start_line = lines[-1]
    crossed: list[int] = []
    n = 0
    t_start = time.perf_counter()
    interval = 1.0 / rate
    while (elapsed := time.perf_counter() - t_start) < seconds:
        due = int(elapsed * rate) + 1
        while n < due:
            n += 1
            i = (n * 7919) % markets
            if n % CROSS_EVERY == 0:
                if crossed:  # put the previous crossing market back
                    j = crossed.pop()
                    await publish(f"{j}01", 0.50, 0.52)
                    n += 1
                cid = f"0x{i:064x}"
                sent_at[cid] = time.perf_counter_ns()
                await publish(f"{i}01", 0.44, 0.45)  # asks 0.45 + 0.50 = 0.95
                crossed.append(i)
            else:
                up = n % 2 == 0
                await publish(f"{i}02", 0.48 if up else 0.47, 0.50 if up else 0.51)
        await asyncio.sleep(interval)
    wall = time.perf_counter() - t_start
    await asyncio.sleep(1.5)
    end_line = lines[-1]
    read_task.cancel()
    watch_task.cancel()
    await pub.aclose()
    await rd.aclose()
    cpu = end_line["cpu"] - start_line["cpu"]
    cpu_wall = end_line["wall"] - start_line["wall"]
    return {"ticks_sent": n, "rate": n / wall, "opportunities": len(lat), "latency": percentiles(lat),
            "scanner_cpu_pct": 100 * cpu / cpu_wall, "scanner_ticks": end_line["ticks"] - start_line["ticks"],
            "scanner_p50": end_line["p50"], "scanner_p99": end_line["p99"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markets", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--scanner", default="")  # internal: run the scanner against this Redis URL
    args = ap.parse_args()
    if args.scanner:
        asyncio.run(scanner(args.scanner, args.markets))
        return
    print(describe())
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min)")
    redis = RedisServer().start()
    child = subprocess.Popen([sys.executable, "-m", "bench.bench_arb", "--scanner", redis.url, "--markets",
                              str(args.markets)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PF_LOG_LEVEL": "WARNING"})
    try:
        assert child.stdout is not None
        t0 = time.perf_counter()
        while (line := child.stdout.readline()) and not line.startswith("READY"):
            pass
        print(f"catalogue: {args.markets} binary markets ({2 * args.markets} tokens) built and installed, "
              f"scanner ready in {time.perf_counter() - t0:.1f}s")
        out = asyncio.run(feed(redis.url, args.markets, args.rate, args.seconds, child))
    finally:
        child.terminate()
        child.wait(10)
        redis.stop()
    lat = out["latency"]
    print(f"ticks: {out['ticks_sent']} sent at {out['rate']:.0f}/s for {args.seconds:g}s; "
          f"scanner handled {out['scanner_ticks']}")
    print(f"detection latency tick -> opportunity read from pf:opportunities (n={out['opportunities']}): "
          f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms (target p99 <= 10 ms)")
    print(f"scanner in-process (message in hand -> XADD acknowledged): p50 {out['scanner_p50']:.2f} ms, "
          f"p99 {out['scanner_p99']:.2f} ms")
    print(f"scanner CPU: {out['scanner_cpu_pct']:.1f}% of one core at {out['rate']:.0f} ticks/s "
          f"= {out['scanner_cpu_pct'] * 1000 / out['rate']:.1f}% per 1,000 ticks/s")


if __name__ == "__main__":
    main()
