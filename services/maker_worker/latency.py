"""Tick-to-decision latency of one worker process's sessions, for its heartbeat.

A session adds one sample per gateway tick its strategy has evaluated: the wall clock at that
moment minus the tick's ``ts_recv`` (the gateway's receive stamp, taken just before it publishes),
so a sample is publish -> Redis -> the worker's feed -> the session's wake-up -> ``on_tick``.
``ts_recv`` is whole milliseconds, so a sample over-states by 0-1 ms.

The hot path is a bisect and an increment. Counts are cumulative per fixed bucket: a reader
subtracts two heartbeats' ``decide_hist`` (:func:`diff_counts`) and takes percentiles of the
difference (:func:`quantile`), the distribution over exactly that window (bench/bench_worker.py).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# Upper bucket bounds (ms): 0.5 ms steps to 20, 1 ms to 50, then coarser; "inf" takes the rest.
BOUNDS_MS: tuple[float, ...] = (
    *(i / 2 for i in range(1, 41)), *(float(i) for i in range(21, 51)),
    60.0, 70.0, 80.0, 90.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0,
    1000.0, 2000.0, 5000.0, 10000.0,
)
INF = "inf"


def bucket_label(bound: float) -> str:
    return f"{bound:g}"


class LatencyHistogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS_MS) + 1)
        self.total = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[bisect_left(BOUNDS_MS, ms)] += 1
        self.total += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def buckets(self) -> dict[str, int]:
        """Non-empty buckets, cumulative since the process started: {upper bound (ms) or "inf": n}."""
        labels = [*(bucket_label(b) for b in BOUNDS_MS), INF]
        return {label: n for label, n in zip(labels, self.counts, strict=True) if n}

    def summary(self, prefix: str) -> dict[str, Any]:
        hist = self.buckets()

        def q(p: float) -> float | None:
            v = quantile(hist, p)
            return round(self.max_ms, 3) if v == float("inf") else v  # past the last bound: the max bounds it

        return {f"{prefix}_n": self.total, f"{prefix}_p50_ms": q(0.50), f"{prefix}_p99_ms": q(0.99),
                f"{prefix}_max_ms": round(self.max_ms, 3), f"{prefix}_hist": hist}


def diff_counts(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """The samples added between two :meth:`LatencyHistogram.buckets` readings."""
    out = {k: n - before.get(k, 0) for k, n in after.items()}
    return {k: n for k, n in out.items() if n > 0}


def quantile(hist: dict[str, int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the ``q`` quantile (nearest rank); ``inf`` when it
    falls past the last bound; None with no samples. An upper bound: the true value is at most this."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, min(total, int(q * total + 0.999999)))
    seen = 0
    for label in sorted(hist, key=lambda k: float(k)):
        seen += hist[label]
        if seen >= rank:
            return float(label)
    return float("inf")
