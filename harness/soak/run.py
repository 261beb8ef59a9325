"""Whole-system soak (issue 9, H1-H4): every service a real process, a seeded chaos driver, and the
invariant checkers of :mod:`harness.soak.invariants` run on what the system left behind.

    uv run python -m harness.soak.run --seconds 600 --seed 9 --out var/soak.json

Processes: redis-server (append-only, with a password), sim_exchange, signal_collector (poller +
live-data socket), ws_gateway, orchestrator, ``workers`` maker_workers, api and alerter (its webhook
is a loopback receiver here, :mod:`harness.soak.webhook`). Every service gets recognisable fake
secrets the way an operator hands them over (:mod:`harness.soak.leaks`). Followed wallets trade
through ``/_sim/trades`` (and now and then ``/_sim/burst``) on a seeded schedule; the chaos driver,
on its own seeded schedule, kills (-9) and restarts one service at a time (and once per deck a
worker that is back within its lease: ``kill_fast``), restarts redis-server (SIGTERM, and SIGKILL;
same port and dir: the AOF is kept), and arms sim faults (socket drops and stalls, 429/503 storms,
order timeouts after placement, tick size changes, live-data drops). A supervisor restarts any
process that exited by itself (what compose's restart policy does) and counts it. Then the soak
settles: chaos and trading stop, every wallet sells what it holds, and the checkers read the sim
and Redis; the API is asked (with and without its token), a halt through the API must reach the
webhook, and everything the system wrote or answered is searched for the secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness import (
    RedisServer,
    ServiceProcess,
    SimExchangeProcess,
    WarmServiceProcess,
    free_port,
    read_stream,
    write_config,
)
from harness.soak import invariants as inv
from harness.soak.leaks import SoakSecrets, find_leaks
from harness.soak.report import human_line, verdict
from harness.soak.webhook import WebhookReceiver
from shared.fleet import ACTIVE_STATES
from shared.keys import Keys

NS = "pf"
HEARTBEAT_DEADLINE_MS = 10_000  # the venue's dead-man switch (docs/venue.md H1)
HEARTBEAT_OUTAGE_SEC = (2.0, 4.0)  # below deadline - the 5 s send interval: no order may be lost to it


@dataclass
class SoakSpec:
    seconds: float = 100.0
    seed: int = 9
    workers: int = 4
    wallets: int = 12
    markets: int = 40  # two tokens each
    trades_per_sec: float = 1.5
    chaos_gap: tuple[float, float] = (1.5, 3.5)  # seconds between chaos actions (uniform): the 21-card deck in ~90 s
    lease_ms: int = 2000
    settle_sec: float = 90.0
    ws_rate: float = 0.0  # sim book changes a second, round robin over the tokens the gateway subscribed
    # today's venue (issue 16 item 6): trades MATCHED -> MINED -> CONFIRMED over this lag, this share FAILED
    settle_lag_ms: int = 2000
    settle_fail_share: float = 0.03
    v2_share: float = 0.5  # markets on Protocol V2; the rest v1 (CTF)
    settled_wait_sec: float = 60.0  # after the settle phase: every trade CONFIRMED or FAILED by then


@dataclass
class SoakResult:
    summary: dict[str, Any]
    failures: list[str]
    line: str
    log_dir: Path
    chaos: list[dict[str, Any]] = field(default_factory=list)


def wallet(i: int) -> str:
    return "0x" + f"50a{i:03d}".ljust(40, "0")


class Soak:
    def __init__(self, spec: SoakSpec, work_dir: Path) -> None:
        self.spec = spec
        self.dir = work_dir
        self.rng = random.Random(spec.seed)  # chaos only: its schedule does not depend on trading
        self.trade_rng = random.Random(spec.seed + 2)
        self.wallets = [wallet(i) for i in range(spec.wallets)]
        self.secrets = SoakSecrets()
        self.redis = RedisServer(appendonly=True, password=self.secrets.redis_password)
        self.sim_port = free_port()
        self.api_port = free_port()
        self.metrics_ports: dict[str, int] = {}
        self.webhook = WebhookReceiver()
        self.api_texts: list[tuple[str, str]] = []  # (request, response body) of every API call made
        self.procs: dict[str, ServiceProcess] = {}
        self.env: dict[str, str] = {}
        self.down: set[str] = set()  # taken down on purpose; the supervisor leaves these alone
        self.chaos: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []
        self.injected: list[dict[str, Any]] = []
        self.inject_errors: Counter[str] = Counter()
        self.holdings: dict[tuple[str, str], float] = {}
        self.tokens: list[str] = []
        self.t0 = time.monotonic()

    # --- processes ---------------------------------------------------------------------------

    def config(self) -> dict[str, object]:
        s = self.spec
        return {
            "sim_exchange": {"markets": s.markets, "volatility": 0.004, "tick_interval_ms": 500, "seed": s.seed,
                             "ws_rate_per_sec": s.ws_rate, "settle_lag_ms": s.settle_lag_ms,
                             "settle_fail_share": s.settle_fail_share, "v2_share": s.v2_share,
                             "heartbeat_timeout_ms": HEARTBEAT_DEADLINE_MS},
            # the venue's defaults, said out loud: a deposit wallet trades, workers send order heartbeats
            "polymarket": {"wallet": "deposit"},
            "order_heartbeats": {"enabled": True, "venue_timeout_sec": HEARTBEAT_DEADLINE_MS / 1000},
            "redeemer": {"enabled": True, "check_interval_sec": 1.0},
            "copytrade": {"targets": [{"account": w, "min_size": 0} for w in self.wallets],
                          "poll_interval_sec": 0.5, "rtds_enabled": True},
            "workers": {"lease_ms": s.lease_ms, "heartbeat_interval_sec": 0.3, "capacity": 60},
            "scheduler": {"poll_interval_sec": 0.2, "max_concurrent_jobs": 60},
            "cooldown": {"cooldown_sec_per_token": 0},
            # the random trading loses money: with the default 200 $ daily loss limit an hour's soak
            # spent most of its time in reduce_only (no new sessions); the limit is tested elsewhere
            "risk": {"max_notional_total": 1_000_000.0, "max_notional_per_token": 100.0,
                     "max_daily_loss": 1_000_000.0},
            "maker_strategy": {"order_size": 10, "drop_pct": 0.01, "profit_pct": 0.02},
            "execution": {"poll_interval_sec": 0.3, "wait_sec": 4},
            "logging": {"level": "INFO"},
            "api": {"host": "127.0.0.1", "port": self.api_port, "control_wait_sec": 10},
            "alerts": {"enabled": True, "check_interval_sec": 1.0, "dedup_sec": 10, "max_per_minute": 30},
            "monitoring": {"metrics_enabled": True, "metrics_host": "127.0.0.1"},
        }

    def services(self) -> dict[str, str]:
        """instance id -> service module."""
        out = {"collector": "signal_collector", "gateway": "ws_gateway", "orch": "orchestrator",
               "api": "api", "alerter": "alerter", "redeemer": "redeemer"}
        out.update({f"w{i + 1}": "maker_worker" for i in range(self.spec.workers)})
        return out

    def service_env(self, instance: str) -> dict[str, str]:
        port = self.metrics_ports.setdefault(instance, free_port())  # one /metrics port per instance, kept
        return {**self.env, "PF_INSTANCE": instance, "PF_METRICS_PORT": str(port)}

    def start_service(self, instance: str) -> None:
        name = self.services()[instance]
        self.procs[instance] = ServiceProcess(name, self.service_env(instance), self.dir).start()

    def start(self) -> None:
        self.redis.start()
        cfg = write_config(self.dir / "polyfleet.yaml", self.sim_port, self.config())
        self.sim = SimExchangeProcess(cfg, self.sim_port, self.dir, {"PF_METRICS_PORT": str(free_port())}).start()
        self.secrets.derive_clob_creds(self.sim.url)

    def start_services(self) -> None:
        """After the webhook receiver listens (its port is in the alerter's secret URL)."""
        self.env = {"PF_CONFIG": str(self.dir / "polyfleet.yaml"), "PF_REDIS_URL": self.redis.url, "PF_NAMESPACE": NS,
                    **self.secrets.env(self.dir / "secrets", self.webhook.port)}
        for instance in self.services():
            self.start_service(instance)

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()
        if getattr(self, "sim", None) is not None:  # absent when start() failed before the sim was up
            self.sim.stop()
        self.redis.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        self.http = httpx.AsyncClient(base_url=self.sim.url, timeout=10)
        self.r = aioredis.Redis.from_url(self.redis.url, decode_responses=True)
        self.keys = Keys(NS)
        await self.webhook.start()
        self.start_services()
        try:
            started = time.monotonic()
            await self._ready()
            self.t0 = time.monotonic()
            self.phases = {"ready_sec": round(self.t0 - started, 1)}
            tasks = [asyncio.create_task(c) for c in (self._inject(), self._chaos(), self._sample_gateway(),
                                                       self._supervise())]
            await asyncio.sleep(self.spec.seconds)
            for t in tasks[:3]:
                t.cancel()
            for t in tasks[:3]:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self._restore()
            settling = time.monotonic()
            await self._settle()
            self.settled_sec = await self._await_settled()
            self.phases["settle_sec"] = round(time.monotonic() - settling, 1)
            tasks[3].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[3]
            checking = time.monotonic()
            res = await self._check()
            res.summary["phases"] = {**self.phases, "check_sec": round(time.monotonic() - checking, 1)}
            return res
        finally:
            await self.webhook.stop()
            await self.http.aclose()
            await self.r.aclose()

    async def _ready(self) -> None:
        markets = (await self.http.get("/_sim/markets")).json()
        self.tokens = [t["token_id"] for m in markets for t in m["tokens"]]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            leases = [await self.r.exists(self.keys.worker_lease(f"w{i + 1}")) for i in range(self.spec.workers)]
            cursors = [await self.r.exists(self.keys.cursor(w)) for w in self.wallets]
            api_up = False
            with contextlib.suppress(httpx.HTTPError):
                api_up = (await self.http.get(f"{self.api_url}/healthz")).status_code == 200
            if all(leases) and all(cursors) and api_up:
                return
            await asyncio.sleep(0.3)
        raise RuntimeError(f"system not up in 60 s (leases {leases}, cursors {sum(cursors)}/{len(cursors)}, "
                           f"api {api_up})")

    async def _post_trade(self, w: str, token: str, side: str, size: float) -> None:
        price = round(self.trade_rng.uniform(0.2, 0.8), 2)
        try:
            resp = await self.http.post("/_sim/trades", json={"proxyWallet": w, "side": side, "asset": token,
                                                              "size": size, "price": price})
            resp.raise_for_status()
            self.injected.extend(resp.json())
            held = self.holdings.get((w, token), 0.0) + (size if side == "BUY" else -size)
            self.holdings[(w, token)] = held
        except httpx.HTTPError as exc:
            self.inject_errors[type(exc).__name__] += 1

    async def _inject(self) -> None:
        rng = random.Random(self.spec.seed + 1)
        while True:
            await asyncio.sleep(rng.expovariate(self.spec.trades_per_sec))
            w = rng.choice(self.wallets)
            held = [t for (ww, t), n in self.holdings.items() if ww == w and n > 0]
            if rng.random() < 0.03:  # a burst: several wallets, one second, one transaction each
                ws = rng.sample(self.wallets, 3)
                with contextlib.suppress(httpx.HTTPError):
                    await self.http.post("/_sim/burst", json={"wallets": ws, "count": 4, "token": rng.choice(self.tokens),
                                                              "side": "BUY", "same_tx": True})
                    self.chaos.append({"t": self.elapsed(), "ts_ms": int(time.time() * 1000), "action": "burst",
                                       "target": ",".join(ws)})
            elif held and rng.random() < 0.45:
                t = rng.choice(held)
                await self._post_trade(w, t, "SELL", self.holdings[(w, t)])
            else:
                await self._post_trade(w, rng.choice(self.tokens), "BUY", float(rng.randint(5, 60)))

    # --- chaos -------------------------------------------------------------------------------

    def _record(self, action: str, target: str = "", **detail: Any) -> dict[str, Any]:
        row = {"t": self.elapsed(), "ts_ms": int(time.time() * 1000), "action": action, "target": target, **detail}
        self.chaos.append(row)
        return row

    async def _fault(self, body: dict[str, Any]) -> None:
        try:
            resp = await self.http.post("/_sim/fault", json=body)
            ok = resp.status_code == 200
        except httpx.HTTPError:
            ok = False
        self._record("fault:" + body["kind"], body.get("token_id", ""), body=body, ok=ok)

    async def _kill(self, instance: str) -> None:
        row = self._record("kill9", instance, kind=self.services()[instance])
        if instance.startswith("w"):
            with contextlib.suppress(Exception):
                row["tokens"] = sorted(await self.r.smembers(self.keys.worker_tokens(instance)))
        self.down.add(instance)
        await asyncio.to_thread(self.procs[instance].kill)
        delay = self.rng.uniform(0.5, self.spec.lease_ms / 1000 + 3)
        row["down_sec"] = round(delay, 2)
        await asyncio.sleep(delay)
        self.start_service(instance)
        self.down.discard(instance)

    async def _kill_fast(self) -> None:
        """Kill -9 the worker holding the most tokens and put it back (same id) within milliseconds,
        well inside its lease: the new process inherits tokens whose sessions died with the old one
        and must hand them back (maker_worker ``_hand_back_inherited``). The spare process is
        started first and waits with its imports done (:class:`WarmServiceProcess`), so Python's
        start-up time does not push the restart past the lease."""
        workers = [i for i in self.services() if i.startswith("w")]
        held = {w: await self._worker_tokens(w) for w in workers}
        instance = max(workers, key=lambda w: (len(held[w]), -workers.index(w)))
        spare = WarmServiceProcess("maker_worker", self.service_env(instance), self.dir).start()
        try:
            deadline = time.monotonic() + 30
            while not spare.warm() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        except BaseException:  # chaos cancelled while the spare warms: it never ran, stop it
            spare.stop(signal.SIGKILL)
            raise
        row = self._record("kill9", instance, kind="maker_worker", fast=True,
                           tokens=await self._worker_tokens(instance))
        self.down.add(instance)
        t = time.monotonic()
        await asyncio.to_thread(self.procs[instance].kill)
        spare.release()
        self.procs[instance] = spare
        row["down_sec"] = round(time.monotonic() - t, 3)
        self.down.discard(instance)

    async def _worker_tokens(self, instance: str) -> list[str]:
        with contextlib.suppress(Exception):
            return sorted(await self.r.smembers(self.keys.worker_tokens(instance)))
        return []

    async def _redis_restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: redis writes and fsyncs the AOF on shutdown. SIGKILL: nothing runs at exit; what
        redis had written (write(2)) to the AOF is in the page cache and survives a process crash,
        ``appendfsync everysec`` only bounds the loss if the machine itself dies. Before a SIGKILL the
        newest entry of every stream is read; after the restart each must still be there."""
        row = self._record("redis_restart" if sig == signal.SIGTERM else "redis_kill9", "redis-server")
        newest: dict[str, str] = {}
        if sig == signal.SIGKILL:
            with contextlib.suppress(Exception):
                newest = await self._newest_stream_entries()
            with contextlib.suppress(Exception):  # > 0: a write(2) was once postponed behind a slow fsync
                info = await self.r.info("persistence")
                row.update(appendfsync=(await self.r.config_get("appendfsync")).get("appendfsync"),
                           aof_delayed_fsync=info.get("aof_delayed_fsync"),
                           aof_pending_bio_fsync=info.get("aof_pending_bio_fsync"))
        self.down.add("redis")
        await asyncio.to_thread(self.redis.halt, sig)
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await asyncio.to_thread(self.redis.start)
        self.down.discard("redis")
        if sig == signal.SIGKILL:
            lost = []
            for key, entry_id in newest.items():
                with contextlib.suppress(Exception):
                    if not await self.r.xrange(key, min=entry_id, max=entry_id):
                        lost.append({"stream": key, "entry": entry_id})
            row.update(streams_checked=len(newest), entries_lost=lost)

    async def _newest_stream_entries(self) -> dict[str, str]:
        keys = [k async for k in self.r.scan_iter(match=f"{NS}:*", count=1000, _type="stream")]
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.xrevrange(k, count=1)
        return {k: rows[0][0] for k, rows in zip(keys, await pipe.execute(), strict=True) if rows}

    def _deck(self) -> list[str]:
        """One of every chaos action (workers twice, plus one restarted inside its lease), shuffled: dealt in order and reshuffled when
        empty, so even a short run kills every service kind and restarts redis."""
        workers = [i for i in self.services() if i.startswith("w")]
        deck = ["kill:collector", "kill:gateway", "kill:orch", "kill:api", "kill:alerter", "kill:redeemer",
                *(f"kill:{w}" for w in self.rng.sample(workers, min(2, len(workers)))), "kill_fast", "redis", "redis_kill9",
                "ws_drop", "ws_stall", "http_429", "http_503", "order_timeout", "tick_size", "rtds_drop",
                "restart", "heartbeat_outage"]
        self.rng.shuffle(deck)
        return deck

    async def _chaos(self) -> None:
        rng = self.rng
        deck: list[str] = []
        while True:
            await asyncio.sleep(rng.uniform(*self.spec.chaos_gap))
            deck = deck or self._deck()
            kind = deck.pop(0)
            if kind.startswith("kill:"):
                await self._kill(kind.removeprefix("kill:"))
            elif kind == "kill_fast":
                await self._kill_fast()
            elif kind == "redis":
                await self._redis_restart()
            elif kind == "redis_kill9":
                await self._redis_restart(signal.SIGKILL)
            elif kind == "ws_drop":
                await self._fault({"kind": "ws_drop"})
            elif kind == "ws_stall":
                await self._fault({"kind": "ws_stall", "seconds": rng.randint(3, 8), "pong": rng.random() < 0.5})
            elif kind in ("http_429", "http_503"):
                await self._fault({"kind": "http_429", "count": rng.randint(5, 20), "retry_after": 1,
                                   "status": 429 if kind == "http_429" else 503,
                                   "path_prefix": rng.choice(["", "/order", "/data-api", "/book"])})
            elif kind == "order_timeout":
                await self._fault({"kind": "order_timeout_after_place", "count": 1, "delay_sec": 7})
            elif kind == "restart":  # the weekly engine restart, short: 425, then a post-only window
                await self._fault({"kind": "restart", "seconds": round(rng.uniform(2, 5), 1),
                                   "post_only_seconds": round(rng.uniform(3, 8), 1)})
            elif kind == "heartbeat_outage":
                await self._fault({"kind": "heartbeat_outage", "seconds": round(rng.uniform(*HEARTBEAT_OUTAGE_SEC), 1)})
            elif kind == "tick_size":
                await self._fault({"kind": "tick_size_change", "token_id": rng.choice(self.tokens),
                                   "new_tick_size": rng.choice([0.001, 0.01])})
            else:
                await self._fault({"kind": "rtds_drop"})

    async def _sample_gateway(self) -> None:
        """Every 5 s: the gateway's heartbeat (tokens subscribed, ticks/s), to show the load reached it."""
        self.gateway_samples: list[dict[str, Any]] = []
        while True:
            await asyncio.sleep(5.0)
            with contextlib.suppress(Exception):
                raw = await self.r.get(self.keys.health("ws_gateway", "gateway"))
                if raw:
                    hb = json.loads(raw)
                    self.gateway_samples.append({"tokens": int(hb.get("tokens", 0)),
                                                 "ticks_per_sec": float(hb.get("ticks_per_sec", 0.0))})

    def _gateway_figures(self) -> dict[str, Any]:
        samples = getattr(self, "gateway_samples", [])
        rates = sorted(x["ticks_per_sec"] for x in samples)
        return {"samples": len(samples), "tokens_max": max((x["tokens"] for x in samples), default=0),
                "ticks_per_sec_p50": rates[len(rates) // 2] if rates else None,
                "ticks_per_sec_max": rates[-1] if rates else None}

    async def _supervise(self) -> None:
        """Restart what exited by itself, as compose's restart policy would; count each."""
        while True:
            await asyncio.sleep(1.0)
            for instance, p in list(self.procs.items()):
                if instance not in self.down and not p.alive():
                    tail = p.log()[-1500:]
                    self.crashes.append({"t": self.elapsed(), "instance": instance, "rc": p.proc.returncode
                                         if p.proc else None, "log_tail": tail})
                    p.stop()
                    self.start_service(instance)

    def _restore(self) -> None:
        """Chaos is over: anything it took down is started again (a cancelled kill may have left one)."""
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.redis.start()
        for instance in self.services():
            if not self.procs[instance].alive():
                self.procs[instance].stop()
                self.start_service(instance)
        self.down.clear()

    # --- settle and check --------------------------------------------------------------------

    async def _settle(self) -> None:
        """Wallets sell what they hold; then wait until signals are decided and nothing moves."""
        for (w, t), n in list(self.holdings.items()):
            if n > 0:
                await self._post_trade(w, t, "SELL", n)
        deadline = time.monotonic() + self.spec.settle_sec
        last: tuple[int, ...] = ()
        quiet_since = time.monotonic()
        expected = len(self.injected)
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            try:
                lens = (await self.r.xlen(self.keys.signals()), await self.r.xlen(self.keys.orders()),
                        await self.r.xlen(self.keys.fills()), await self.r.xlen(self.keys.events()))
                groups = await self.r.xinfo_groups(self.keys.signals())
                moving = sum([await self.r.scard(self.keys.tokens_in_state(s)) for s in ("starting", "exiting")])
            except Exception:
                continue
            pending = sum(int(g.get("pending", 0)) + int(g.get("lag", 0) or 0) for g in groups)
            if lens != last:
                last, quiet_since = lens, time.monotonic()
            if lens[0] >= expected and pending == 0 and moving == 0 and time.monotonic() - quiet_since >= 5:
                return

    async def _await_settled(self) -> float | None:
        """Wait (bounded) until every trade of ours at the sim is CONFIRMED or FAILED, and a few
        seconds more for the workers' last status reports to reach the ledger; the seconds it took,
        None when trades were still settling at the bound (check_settlement then names them)."""
        t = time.monotonic()
        while time.monotonic() - t < self.spec.settled_wait_sec:
            with contextlib.suppress(httpx.HTTPError):
                if inv.check_settlement((await self.http.get("/_sim/orders")).json())["unsettled"] == 0:
                    return round(time.monotonic() - t, 1)
            await asyncio.sleep(1.0)
        return None

    async def _sim_trades(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for w in self.wallets:
            rows.extend((await self.http.get("/data-api/trades", params={"user": w, "limit": 10_000})).json())
        return rows

    async def _positions(self, sim_orders: list[dict[str, Any]]) -> dict[str, Any]:
        """Compare until equal and settled (a resting order may still fill, a trade still settle,
        while we read) or 20 s pass. The sim's positions are its balances: confirmed trades only."""
        address = next((o["maker_address"] for o in sim_orders), "")
        result: dict[str, Any] = {}
        for _ in range(30):
            accounts = (await self.http.get("/_sim/positions")).json() if address else {}
            acct = accounts.get(address) or accounts.get(address.lower()) or {"positions": {}}
            sim_pos = {t: float(v) for t, v in acct["positions"].items()}
            pipe = self.r.pipeline(transaction=False)
            for t in self.tokens:
                pipe.hmget(self.keys.token(t), ["position", "position_confirmed"])
                pipe.hget(self.keys.session(t), "position")
            raw = await pipe.execute()
            matched = {t: float(raw[2 * i][0] or 0) for i, t in enumerate(self.tokens)}
            # a token the ledger never touched has no confirmed field: what it holds is confirmed
            confirmed = {t: float(raw[2 * i][1] or raw[2 * i][0] or 0) for i, t in enumerate(self.tokens)}
            ses = {t: float(raw[2 * i + 1] or 0) for i, t in enumerate(self.tokens)}
            result = inv.check_positions(sim_pos, confirmed, matched, ses)
            if result["mismatch_token"] == 0 and result["mismatch_session"] == 0 and result["pending_tokens"] == 0:
                break
            await asyncio.sleep(1.0)
        return result

    async def _check(self) -> SoakResult:
        signals = await read_stream(self.r, self.keys.signals())
        events = [(i, {**f, "detail": json.loads(f.get("detail") or "{}")})
                  for i, f in await read_stream(self.r, self.keys.events())]
        orders = await read_stream(self.r, self.keys.orders())
        sim_orders = (await self.http.get("/_sim/orders")).json()
        fills = await read_stream(self.r, self.keys.fills())
        pipe = self.r.pipeline(transaction=False)
        for t in self.tokens:
            pipe.hgetall(self.keys.token(t))
        tokens = dict(zip(self.tokens, await pipe.execute(), strict=True))
        live = {w for w in await self.r.smembers(self.keys.workers()) if await self.r.exists(self.keys.worker_lease(w))}
        kills = [c for c in self.chaos if c["action"] == "kill9"]
        summary: dict[str, Any] = {
            "spec": {**self.spec.__dict__, "chaos_gap": list(self.spec.chaos_gap)},
            "kills": dict(Counter(c["kind"] for c in kills)),
            "redis_restarts": sum(1 for c in self.chaos if c["action"] == "redis_restart"),
            "faults": dict(Counter(c["action"] for c in self.chaos if c["action"].startswith("fault:"))),
            "bursts": sum(1 for c in self.chaos if c["action"] == "burst"),
            "unexpected_exits": [{k: v for k, v in c.items() if k != "log_tail"} for c in self.crashes],
            "inject_errors": dict(self.inject_errors),
            "signals": inv.check_signals(await self._sim_trades(), signals),
            "decisions": inv.check_decisions(signals, events),
            "ownership": inv.check_ownership(events, orders, sim_orders),
            "intents": inv.check_intents(orders, sim_orders),
            "orphans": inv.check_orphans(sim_orders, tokens, live),
            "positions": await self._positions(sim_orders),
            "venue": await self._venue(sim_orders),
            "settlement": {**inv.check_settlement(sim_orders), "settled_after_sec": getattr(self, "settled_sec", None)},
            "failed_trades": inv.check_failed_voided(sim_orders, fills, events),
            "cancels": inv.check_cancels(sim_orders),
            "reassignment": inv.reassignment_times([k for k in kills if k.get("tokens")], events),
            "tokens_active_at_end": sum(1 for t in tokens.values() if t.get("state") in ACTIVE_STATES),
            "tokens_traded": len({o["token_id"] for o in sim_orders}),
            "kills_fast": sum(1 for k in kills if k.get("fast")),
            "gateway": self._gateway_figures(),
            "catalogue_tokens": len(self.tokens),
            "handed_back": await self._handed_back(),
            "redis_kill9": [{k: c[k] for k in ("t", "streams_checked", "entries_lost", "appendfsync", "aof_delayed_fsync")
                             if k in c}
                            for c in self.chaos if c["action"] == "redis_kill9"],
        }
        ex = summary["positions"]["examples"]
        differing = {e["token"] for e in ex["token"] + ex["session"]}
        # a position that differs is explained trade by trade (the report prints it)
        summary["positions"]["trades"] = {t: inv.trade_diff(t, sim_orders, fills, events) for t in sorted(differing)}
        summary["api"] = await self._check_api()
        summary["alerts"] = await self._check_alerts()
        summary["secrets"] = await self._check_secrets(sim_orders)
        failures = verdict(summary, self.spec.lease_ms)
        return SoakResult(summary, failures, human_line(summary), self.dir, self.chaos)


    async def _venue(self, sim_orders: list[dict[str, Any]]) -> dict[str, Any]:
        """What the soak traded on: v1/v2 markets (and tokens traded of each), the wallet that made
        the orders and whether it is the signing key's deposit wallet."""
        markets = (await self.http.get("/_sim/markets")).json()
        version = {t["token_id"]: m.get("version", "v1") for m in markets for t in m["tokens"]}
        deposit = (await self._key_wallets())["deposit"]
        makers = sorted({str(o.get("maker_address", "")).lower() for o in sim_orders})
        s = self.spec
        return {"markets_by_version": dict(sorted(Counter(m.get("version", "v1") for m in markets).items())),
                "tokens_traded_by_version": dict(sorted(Counter(version.get(t, "?") for t in
                                                                {o["token_id"] for o in sim_orders}).items())),
                "makers": makers, "deposit_wallet": bool(makers) and set(makers) <= deposit,
                "settle_lag_ms": s.settle_lag_ms, "settle_fail_share": s.settle_fail_share,
                "order_heartbeats": True, "redeemer": "redeemer" in self.services()}

    async def _key_wallets(self) -> dict[str, set[str]]:
        """Wallet kind -> the addresses (lower case) derived for the soak's signing key."""
        from eth_account import Account

        from shared.venue.environment import fetch_sim_environment
        from shared.venue.wallet_setup import derived_addresses

        signer = str(Account.from_key(self.secrets.private_key).address)
        env = await fetch_sim_environment(self.sim.url)
        return {kind: {a.lower() for a in derived_addresses(kind, signer, env)}  # type: ignore[arg-type]
                for kind in ("eoa", "deposit", "proxy", "safe")}

    async def _handed_back(self) -> dict[str, int]:
        """``handed_back`` session reports by reason: "worker process restarted" is the restarted
        worker's hand-back of inherited tokens."""
        return dict(Counter(f.get("reason", "") for _, f in await read_stream(self.r, self.keys.sessions())
                            if f.get("status") == "handed_back"))

    async def _api(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        resp = await self.http.request(method, f"{self.api_url}{path}", headers=headers, **kw)
        self.api_texts.append((f"{method} {path}", resp.text))
        return resp

    async def _check_api(self) -> dict[str, Any]:
        """The API after the chaos: every read answers 200 with the token, 401 without or with a wrong one."""
        token = self.secrets.api_token
        reads = ("/api/health", "/api/stats", "/api/workers", "/api/tokens", "/api/signals", "/api/events",
                 "/api/orders", "/api/fills", "/api/pnl", "/api/halt", "/api/config")
        ok: list[str] = []
        refused: list[str] = []
        wrong: list[str] = []
        for path in reads:
            try:
                good = await self._api("GET", path, token)
                bad = [await self._api("GET", path, t) for t in (None, "wrong-" + token[:4])]
            except httpx.HTTPError as exc:
                wrong.append(f"{path}: {type(exc).__name__}")
                continue
            (ok if good.status_code == 200 else wrong).append(f"{path}: {good.status_code}" if good.status_code != 200
                                                              else path)
            refused.extend(path for b in bad if b.status_code == 401)
            wrong.extend(f"{path} unauthenticated: {b.status_code}" for b in bad if b.status_code != 401)
        return {"authorized_ok": len(ok), "unauthorized_refused": len(refused), "wrong": wrong,
                "requests": len(self.api_texts)}

    async def _check_alerts(self) -> dict[str, Any]:
        """Alerts the webhook received during the soak, then one on demand: a halt set through the API
        (after the checks, so it changes nothing they read) must reach the webhook; then resume."""
        during = Counter(str(p["body"].get("kind", p["body"].get("text", "?")))[:40] if isinstance(p["body"], dict)
                         else "?" for p in self.webhook.posts)
        before = len(self.webhook.posts)
        halt_delivered_sec: float | None = None
        t = time.monotonic()
        try:
            resp = await self._api("POST", "/api/halt", self.secrets.api_token,
                                   json={"mode": "reduce_only", "reason": "soak: alert path check"})
            halt_status = resp.status_code
            while time.monotonic() - t < 30 and halt_delivered_sec is None:
                if any("reduce_only" in json.dumps(p["body"]) for p in self.webhook.posts[before:]):
                    halt_delivered_sec = round(time.monotonic() - t, 2)
                await asyncio.sleep(0.2)
            await self._api("POST", "/api/resume", self.secrets.api_token, json={"reason": "soak: done"})
        except httpx.HTTPError as exc:
            halt_status = -1
            self.api_texts.append(("POST /api/halt", repr(exc)))
        return {"posts_during_soak": before, "by_kind": dict(during), "halt_status": halt_status,
                "halt_alert_sec": halt_delivered_sec, "receiver_bad_requests": self.webhook.bad}

    async def _metrics_texts(self) -> list[tuple[str, str]]:
        out = []
        for instance, port in sorted(self.metrics_ports.items()):
            try:
                resp = await self.http.get(f"http://127.0.0.1:{port}/metrics")
                out.append((f"metrics:{instance}", resp.text))
            except httpx.HTTPError as exc:
                out.append((f"metrics:{instance} (no answer: {type(exc).__name__})", ""))
        return out

    async def _keyspace_texts(self) -> list[tuple[str, str]]:
        """Every key of the whole keyspace (SCAN, no pattern) with its values, one text per key."""
        out = []
        async for key in self.r.scan_iter(count=1000):
            kind = await self.r.type(key)
            value: Any
            if kind == "string":
                value = await self.r.get(key)
            elif kind == "hash":
                value = await self.r.hgetall(key)
            elif kind == "stream":
                value = await read_stream(self.r, key)
            elif kind == "list":
                value = await self.r.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(await self.r.smembers(key))
            elif kind == "zset":
                value = await self.r.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            out.append((f"redis:{key}", key + " " + json.dumps(value, default=str)))
        return out

    async def _check_secrets(self, sim_orders: list[dict[str, Any]]) -> dict[str, Any]:
        """H6: the fake secrets in no log file, no Redis value, no API answer, no /metrics, no alert.
        Two controls show the search can fail: the same search over the secret files finds every
        secret they hold, and the venue's orders are signed by the soak's key (the services loaded it)."""
        # the orders' maker is the key's own address or a wallet derived from it (deposit by default)
        makers = set().union(*(await self._key_wallets()).values())
        secret_files = [(f"secret file {p.name}", p.read_text()) for p in sorted((self.dir / "secrets").iterdir())]
        control = {h["secret"] for h in find_leaks(secret_files, self.secrets.values()) if "[" not in h["secret"]}
        logs = [(f"log:{p.name}", p.read_text(errors="replace")) for p in sorted(self.dir.glob("*.log"))]
        keyspace = await self._keyspace_texts()
        metrics = await self._metrics_texts()
        alerts = [("webhook body", json.dumps(p["body"], default=str)) for p in self.webhook.posts]
        config = [("config file", (self.dir / "polyfleet.yaml").read_text())]
        sources = [*logs, *keyspace, *self.api_texts, *metrics, *alerts, *config]
        leaks = find_leaks(sources, self.secrets.values())
        return {"secret_leaks": len(leaks), "secrets": len(self.secrets.values()), "log_files": len(logs),
                "redis_keys": len(keyspace), "api_responses": len(self.api_texts),
                "metrics_answered": sum(1 for _, t in metrics if t), "metrics_endpoints": len(metrics),
                "webhook_bodies": len(alerts), "bytes_searched": sum(len(t) for _, t in sources),
                "control_found_in_secret_files": sorted(control),
                "sim_orders_signed_by_soak_key": sum(1 for o in sim_orders if str(o.get("maker_address", "")).lower()
                                                     in makers), "examples": leaks[:10]}


async def run_soak(spec: SoakSpec, work_dir: Path) -> SoakResult:
    soak = Soak(spec, work_dir)
    try:
        soak.start()  # inside the try: a failed start (e.g. deriving the API creds) stops what did start
        return await soak.run()
    finally:
        soak.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--wallets", type=int, default=12)
    ap.add_argument("--markets", type=int, default=40, help="binary markets (two tokens each)")
    ap.add_argument("--ws-rate", type=float, default=0.0,
                    help="sim book changes a second over the tokens the gateway subscribed (wsload)")
    ap.add_argument("--trades-per-sec", type=float, default=1.5)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON summary (with the chaos log) here")
    ap.add_argument("--log-dir", type=Path, default=None, help="service logs (default: a temp dir, kept)")
    a = ap.parse_args(argv)
    log_dir = a.log_dir or Path(tempfile.mkdtemp(prefix="pf-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    spec = SoakSpec(seconds=a.seconds, seed=a.seed, workers=a.workers, wallets=a.wallets, markets=a.markets,
                    ws_rate=a.ws_rate, trades_per_sec=a.trades_per_sec)
    res = asyncio.run(run_soak(spec, log_dir))
    doc = {**res.summary, "failures": res.failures, "chaos": res.chaos, "log_dir": str(log_dir)}
    text = json.dumps(doc, indent=2, default=str)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    print(json.dumps({k: v for k, v in doc.items() if k != "chaos"}, indent=2, default=str))
    print(res.line)
    print("FAILED: " + "; ".join(res.failures) if res.failures else "all invariants held")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
