"""Latency of each signal source, exported two ways (A6): the heartbeat summary and Prometheus.

Two figures per source (``poll``, ``rtds``, ``screen``):

* ``detect``: ``ts_init - ts_event``, trade time to when we saw it. The venue stamps trades in
  whole seconds, so this carries up to 1 s of rounding; it is what a copy-trader loses.
* ``process``: from the moment the data reached us (frame received, HTTP page read) to the
  signal being on the stream: our own share of the delay.

:class:`LatencyBook` keeps fixed-bucket histograms (pure, cheap, mergeable); the same
observations go to a ``prometheus_client`` Histogram in the default registry, which whatever
serves metrics for the process can expose (this module opens no port).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000)

PROM_LATENCY = Histogram(
    "polyfleet_collector_signal_latency_seconds",
    "Signal collector latency by source: detect = trade time to seen, process = received to on the stream",
    ("source", "stage"),
    buckets=tuple(b / 1000 for b in BUCKETS_MS),
)


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    n: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def observe(self, ms: float) -> None:
        ms = max(0.0, ms)
        self.counts[bisect.bisect_left(BUCKETS_MS, ms)] += 1
        self.n += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (the max for the overflow bucket)."""
        if not self.n:
            return None
        rank = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return float(BUCKETS_MS[i]) if i < len(BUCKETS_MS) else self.max_ms
        return self.max_ms

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "mean_ms": round(self.total_ms / self.n, 1) if self.n else None,
                "p50_le_ms": self.quantile(0.5), "p99_le_ms": self.quantile(0.99), "max_ms": round(self.max_ms, 1)}


@dataclass
class LatencyBook:
    hist: dict[tuple[str, str], LatencyHistogram] = field(default_factory=dict)

    def observe(self, source: str, stage: str, ms: float) -> None:
        self.hist.setdefault((source, stage), LatencyHistogram()).observe(ms)
        PROM_LATENCY.labels(source, stage).observe(max(0.0, ms) / 1000)

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{"rtds.detect": {...}, "poll.process": {...}}`` for the heartbeat."""
        return {f"{s}.{st}": h.summary() for (s, st), h in sorted(self.hist.items())}
