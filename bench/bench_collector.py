"""Signal collector benchmark: 100 followed wallets, trade at sim_exchange -> signal on pf:signals.

Starts its own redis-server and sim_exchange on free loopback ports and runs the collector as a
real process (``python -m services.signal_collector``), then per phase posts ``--trades`` trades
(random wallet of ``--wallets``, ``--rate`` per second, in small batches) and reads the signals
stream. Per signal, with every clock on this one machine:

* appear -> signal: the stream entry id's time (Redis clock at XADD) minus the time the bench sent
  the POST that created the trade;
* frame -> signal (live-data phase): entry time minus when the bench's own live-data socket
  received the trade's frame (the collector holds the same feed);
* notification -> signal (chain phase): the same against the bench's own ``eth_subscribe`` on the
  sim's JSON-RPC websocket (the collector's filters).

Phases: ``poll`` (live-data off: the poller alone), ``live`` (live-data on, the poller as the
backstop) and ``chain`` (the chain source over the sim's websocket JSON-RPC, subscription plus
sweeps every 2 s; live-data off, the poller as the backstop). Each checks that every posted trade
became exactly one signal.

    uv run python -m bench.bench_collector [--trades 10000] [--rate 100] [--interval 5] [--budget 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from bench.machine import describe, percentiles
from harness import RedisServer, ServiceProcess, SimExchangeProcess, free_port, write_config
from services.signal_collector.chain import log_filters
from services.signal_collector.chain_rpc import WsRpc
from services.signal_collector.signals import signal_id
from shared.keys import Keys
from shared.messages import Signal, decode
from shared.venue.chain_fills import decode_log, wallet_trades
from shared.venue.data_api import parse_trade
from shared.venue.live_data import parse_frame, subscribe_frame

KEYS = Keys("pf")


def wallets(n: int) -> list[str]:
    return [f"0x{0xB0000 + i:040x}" for i in range(n)]


async def live_listener(url: str, arrivals: dict[str, int], followed: set[str], stop: asyncio.Event) -> None:
    async with connect(url) as ws:
        await ws.send(subscribe_frame())
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            t = time.time_ns() // 1_000_000
            trades, _ = parse_frame(raw if isinstance(raw, str) else raw.decode())
            for lt in trades:
                if lt.trade.account in followed:
                    arrivals.setdefault(signal_id(lt.trade.account, lt.trade), t)


async def chain_listener(url: str, exchanges: list[str], arrivals: dict[str, int], followed: set[str],
                         stop: asyncio.Event) -> None:
    rpc = await WsRpc.open(url)
    try:
        for flt in log_filters(exchanges, sorted(followed)):
            await rpc.subscribe(flt)
        while not stop.is_set():
            try:
                _, log = await asyncio.wait_for(rpc.notifications.get(), 0.5)
            except TimeoutError:
                continue
            t = time.time_ns() // 1_000_000
            fill = decode_log(log)
            for account in {fill.maker, fill.taker} & followed:  # the id does not depend on the time
                for trade in wallet_trades(account, [fill], {fill.block: 0}):
                    arrivals.setdefault(signal_id(account, trade), t)
    finally:
        await rpc.close()


async def run_phase(name: str, args: argparse.Namespace, sim: SimExchangeProcess, redis_url: str,
                    tmp: Path) -> dict[str, Any]:
    accounts = wallets(args.wallets)
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await r.flushall()
    cfg = write_config(tmp / f"collector-{name}.yaml", sim.port, {
        "copytrade": {"poll_interval_sec": args.interval, "rtds_enabled": name == "live",
                      "chain_enabled": name == "chain", "chain_rpc_url": f"ws://127.0.0.1:{sim.port}/_sim/rpc",
                      "max_requests_per_10s": args.budget, "max_concurrent_requests": 8,
                      "targets": [{"account": a} for a in accounts]},
        "logging": {"level": "WARNING"}, "monitoring": {"heartbeat_interval_sec": 1.0}})
    env = {"PF_CONFIG": str(cfg), "PF_REDIS_URL": redis_url, "PF_NAMESPACE": "pf", "PF_INSTANCE": f"bench-{name}"}
    proc = ServiceProcess("signal_collector", env, tmp).start()
    arrivals: dict[str, int] = {}
    stop = asyncio.Event()
    if name == "chain":
        sim_env = await asyncio.to_thread(lambda: httpx.get(f"{sim.url}/_sim/environment", timeout=5).json())
        exchanges = [sim_env[f].lower() for f in ("standard_exchange", "neg_risk_exchange", "exchange_v3")]
        listener = asyncio.create_task(chain_listener(f"ws://127.0.0.1:{sim.port}/_sim/rpc", exchanges, arrivals,
                                                      set(accounts), stop))
    else:
        listener = asyncio.create_task(live_listener(f"ws://127.0.0.1:{sim.port}/ws/live-data", arrivals,
                                                     set(accounts), stop))
    rng = random.Random(7)
    markets = await asyncio.to_thread(lambda: httpx.get(f"{sim.url}/_sim/markets", timeout=5).json())
    tokens = [t["token_id"] for m in markets for t in m["tokens"]]
    sent_at: dict[str, int] = {}
    try:
        # every target polled once (cursors at "now") before the trades start
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all([await r.exists(KEYS.cursor(a)) for a in accounts]) and (
                    name != "chain" or await r.exists(KEYS.chain_cursor())):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.1)
        batch = max(1, args.rate // 20)
        async with httpx.AsyncClient(timeout=10) as http:
            t0 = time.monotonic()
            posted = 0
            while posted < args.trades:
                n = min(batch, args.trades - posted)
                rows = [{"proxyWallet": rng.choice(accounts), "side": rng.choice(("BUY", "SELL")),
                         "asset": rng.choice(tokens), "size": rng.randint(5, 60), "price": 0.5} for _ in range(n)]
                sent = time.time_ns() // 1_000_000
                stored = (await http.post(f"{sim.url}/_sim/trades", json=rows)).json()
                for row in stored:
                    trade = parse_trade(row)
                    sent_at[signal_id(trade.account, trade)] = sent
                posted += n
                await asyncio.sleep(max(0.0, t0 + posted / args.rate - time.monotonic()))
        # drain: wait for every signal (or give up after a generous bound)
        deadline = time.monotonic() + args.interval * 3 + 30
        while time.monotonic() < deadline and await r.xlen(KEYS.signals()) < len(sent_at):
            await asyncio.sleep(0.2)
        await asyncio.sleep(min(5.0, args.interval + 1))  # a late duplicate would show up here
        entries = await r.xrange(KEYS.signals())
        health = [json.loads(v) for k in await r.keys(KEYS.health_pattern("signal_collector"))
                  if (v := await r.get(k))]
    finally:
        stop.set()
        await asyncio.gather(listener, return_exceptions=True)
        proc.stop()
        await r.aclose()
    by_source: dict[str, list[float]] = {}
    frame: list[float] = []
    ids: list[str] = []
    for entry_id, fields in entries:
        sig = decode(fields)
        assert isinstance(sig, Signal)
        ids.append(sig.id)
        at = int(entry_id.split("-")[0])
        if sig.id in sent_at:
            by_source.setdefault(sig.source, []).append(at - sent_at[sig.id])
        if sig.source in ("rtds", "chain") and sig.id in arrivals:
            frame.append(at - arrivals[sig.id])
    missing = set(sent_at) - set(ids)
    return {
        "phase": name, "posted": len(sent_at), "signals": len(ids), "unique": len(set(ids)),
        "lost": len(missing), "duplicated": len(ids) - len(set(ids)),
        "appear_to_signal_ms": {s: {"n": len(v), **percentiles(v)} for s, v in sorted(by_source.items())},
        ("notification_to_signal_ms" if name == "chain" else "frame_to_signal_ms"):
            {"n": len(frame), **percentiles(frame)} if frame else None,
        "collector_latency": health[0].get("latency") if health else None,
        "collector_counters": {k: v for k, v in health[0].items() if k not in ("latency", "config")} if health else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=100, help="trades posted per second")
    parser.add_argument("--interval", type=float, default=5.0, help="copytrade.poll_interval_sec")
    parser.add_argument("--budget", type=int, default=200, help="copytrade.max_requests_per_10s")
    parser.add_argument("--phases", default="poll,live,chain")
    args = parser.parse_args()
    print(describe())
    print(f"wallets={args.wallets} trades={args.trades} rate={args.rate}/s poll_interval={args.interval}s "
          f"budget={args.budget}/10s")
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-collector-"))
    redis_server = RedisServer().start()
    port = free_port()
    sim_cfg = write_config(tmp / "sim.yaml", port, {"logging": {"level": "WARNING"}})
    sim = SimExchangeProcess(sim_cfg, port, tmp).start()
    try:
        for phase in args.phases.split(","):
            result = await run_phase(phase, args, sim, redis_server.url, tmp)
            print(json.dumps(result, indent=1, default=lambda x: round(x, 1)))
    finally:
        sim.stop()
        redis_server.stop()
    os.environ.pop("PF_CONFIG", None)


if __name__ == "__main__":
    asyncio.run(main())
