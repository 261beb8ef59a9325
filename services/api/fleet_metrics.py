"""Fleet-wide Prometheus metrics, read from Redis at scrape time by the API process.

The orchestrator and the workers keep their state in Redis, not in process counters, so one
collector in the API exports it for the whole fleet: tokens per state, workers, stream lengths and
consumer-group lag, kill switch, today's PnL, exposure, heartbeats per service. The scrape runs in
prometheus-client's HTTP thread, hence the synchronous client (one pipelined round trip + SCAN).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from loguru import logger
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.fleet import WORKER_READS, queue_worker_reads, worker_views
from shared.keys import GROUP_ORCHESTRATOR, TOKEN_STATES, Keys

STREAMS = ("signals", "orders", "fills", "events", "control", "sessions", "opportunities")
GROUPED = ("signals", "control", "fills", "sessions")


class FleetCollector(Collector):
    def __init__(self, url: str, keys: Keys) -> None:
        self.r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)
        self.k = keys

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("polyfleet_redis_up", "1 when the API reached Redis for this scrape")
        try:
            families = list(self._families())
        except (redis.RedisError, OSError, ValueError) as exc:
            logger.warning("fleet metrics: {}", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[GaugeMetricFamily]:
        k = self.k
        pipe = self.r.pipeline(transaction=False)
        for state in TOKEN_STATES:
            pipe.scard(k.tokens_in_state(state))
        for name in STREAMS:
            pipe.xlen(getattr(k, name)())
        pipe.smembers(k.workers())
        pipe.get(k.halt())
        pipe.hget(k.pnl_daily(), datetime.now(tz=UTC).strftime("%Y-%m-%d"))
        pipe.hget(k.exposure(), "_total")
        pipe.hget(k.reserved(), "_committed")
        pipe.exists(k.orchestrator_leader())
        rows = pipe.execute()
        n_states = len(TOKEN_STATES)
        counts, lengths = rows[:n_states], rows[n_states:n_states + len(STREAMS)]
        workers, halt, pnl_today, exposure, committed, leader = rows[n_states + len(STREAMS):]

        tokens = GaugeMetricFamily("polyfleet_tokens", "Tokens per lifecycle state", labels=["state"])
        for state, n in zip(TOKEN_STATES, counts, strict=True):
            tokens.add_metric([state], n)
        yield tokens
        length = GaugeMetricFamily("polyfleet_stream_length", "Entries in each stream", labels=["stream"])
        for name, n in zip(STREAMS, lengths, strict=True):
            length.add_metric([name], n)
        yield length

        pipe = self.r.pipeline(transaction=False)
        ids = sorted(workers)
        for wid in ids:
            queue_worker_reads(pipe, k, wid)
        for name in GROUPED:
            pipe.xinfo_groups(getattr(k, name)())
        rows = pipe.execute(raise_on_error=False)
        views = worker_views(ids, rows)
        alive = sum(1 for v in views if v.alive)
        w = GaugeMetricFamily("polyfleet_workers", "Registered workers by liveness (lease present)", labels=["alive"])
        w.add_metric(["true"], alive)
        w.add_metric(["false"], len(ids) - alive)
        yield w
        load = GaugeMetricFamily("polyfleet_worker_tokens", "Tokens assigned to each worker", labels=["worker"])
        for v in views:
            load.add_metric([v.worker_id], v.assigned)
        yield load
        lag = GaugeMetricFamily("polyfleet_consumer_lag", "Entries not yet delivered to the orchestrator group",
                                labels=["stream"])
        pending = GaugeMetricFamily("polyfleet_consumer_pending", "Entries delivered but not acked yet",
                                    labels=["stream"])
        for name, groups in zip(GROUPED, rows[WORKER_READS * len(ids):], strict=True):
            if isinstance(groups, Exception):
                continue
            for g in groups:
                if g["name"] == GROUP_ORCHESTRATOR:
                    lag.add_metric([name], float(g.get("lag") or 0))
                    pending.add_metric([name], float(g.get("pending") or 0))
        yield lag
        yield pending

        h = GaugeMetricFamily("polyfleet_halt", "Kill switch: 1 for the mode in force", labels=["mode"])
        for mode in ("off", "reduce_only", "halt"):
            h.add_metric([mode], 1 if (halt or "off") == mode else 0)
        yield h
        yield GaugeMetricFamily("polyfleet_pnl_realized_today", "Realised PnL of the UTC day (from fills)",
                                value=float(pnl_today or 0))
        yield GaugeMetricFamily("polyfleet_exposure", "Notional at cost of open positions", value=float(exposure or 0))
        yield GaugeMetricFamily("polyfleet_risk_committed", "Risk budget committed (reservations and exposure)",
                                value=float(committed or 0))
        yield GaugeMetricFamily("polyfleet_orchestrator_leader", "1 when an orchestrator holds the leader lease",
                                value=1 if leader else 0)

        beats = GaugeMetricFamily("polyfleet_heartbeats", "Instances with a fresh heartbeat, per service",
                                  labels=["service"])
        per: dict[str, int] = {}
        for key in self.r.scan_iter(match=k.health_pattern(), count=1000):
            raw = self.r.get(key)
            if raw:
                service = str(json.loads(raw).get("service", "?"))
                per[service] = per.get(service, 0) + 1
        for service, n in sorted(per.items()):
            beats.add_metric([service], n)
        yield beats
