"""Gateway metrics: rates and hop latencies for the heartbeat summary, mirrored to Prometheus.

The hot path only bumps plain ints and appends to bounded deques; rates, percentiles and the
Prometheus counters are computed once per heartbeat (a Counter.inc() per frame would cost more
than parsing the frame). Prometheus objects live in the default registry; whoever serves
``/metrics`` for the process exposes them (the gateway opens no HTTP port of its own).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from prometheus_client import Counter, Gauge

SAMPLES = 4096  # hop latency samples kept (the most recent)

_COUNTERS = {
    "frames": Counter("pf_gateway_frames", "Market websocket frames received"),
    "ticks": Counter("pf_gateway_ticks", "Ticks published"),
    "parse_errors": Counter("pf_gateway_parse_errors", "Frames that failed to decode (skipped)"),
    "publish_errors": Counter("pf_gateway_publish_errors", "Failed tick batches or error replies from Redis"),
    "reconnects": Counter("pf_gateway_reconnects", "Market websocket reconnections"),
    "reseeds": Counter("pf_gateway_reseeds", "Books replaced from REST /books"),
    "stale_marked": Counter("pf_gateway_stale_marked", "Tokens marked stale"),
}
_GAUGES = {
    "connections": Gauge("pf_gateway_connections", "Market websocket connections"),
    "tokens": Gauge("pf_gateway_tokens", "Tokens streamed"),
    "stale_tokens": Gauge("pf_gateway_stale_tokens", "Tokens currently stale"),
    "hop_gateway_p99_ms": Gauge("pf_gateway_hop_p99_ms", "Frame received to tick acknowledged by Redis, p99 (ms)"),
    "hop_venue_p99_ms": Gauge("pf_gateway_venue_hop_p99_ms", "Venue timestamp to frame received, p99 (ms)"),
}


class GatewayMetrics:
    def __init__(self) -> None:
        self.hop_gateway_ms: deque[float] = deque(maxlen=SAMPLES)  # frame in -> Redis ack
        self.hop_venue_ms: deque[float] = deque(maxlen=SAMPLES)  # venue timestamp -> frame in
        self._last_t = time.monotonic()
        self._last_counts: dict[str, float] = {}
        self._exported: dict[str, float] = {}

    def rates(self, counts: dict[str, int]) -> dict[str, float]:
        """Per-second rates of ``counts`` since the previous call."""
        now = time.monotonic()
        span = max(now - self._last_t, 1e-9)
        out = {f"{k}_per_sec": round((v - self._last_counts.get(k, 0)) / span, 1) for k, v in counts.items()}
        self._last_t = now
        self._last_counts = {k: float(v) for k, v in counts.items()}
        return out

    def latency(self) -> dict[str, float | None]:
        return {**_pct("hop_gateway", self.hop_gateway_ms), **_pct("hop_venue", self.hop_venue_ms)}

    def export(self, summary: dict[str, Any]) -> None:
        for name, counter in _COUNTERS.items():
            value = float(summary.get(name) or 0)
            delta = value - self._exported.get(name, 0.0)
            if delta > 0:
                counter.inc(delta)
            self._exported[name] = value
        for name, gauge in _GAUGES.items():
            current = summary.get(name)
            if isinstance(current, (int, float)):
                gauge.set(current)


def _pct(name: str, samples: deque[float]) -> dict[str, float | None]:
    if not samples:
        return {f"{name}_p50_ms": None, f"{name}_p99_ms": None}
    ordered = sorted(samples)
    n = len(ordered)
    return {f"{name}_p50_ms": round(ordered[n // 2], 3),
            f"{name}_p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 3)}
