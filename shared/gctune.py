"""Garbage-collector settings for latency-sensitive services, and a record of the pauses.

CPython's cyclic collector stops the event loop while it runs; a full (generation 2) pass over a
service holding thousands of books or sessions takes milliseconds to tens of milliseconds, which
lands directly in the p99 of every hop. Two standard mitigations, applied once at start-up:

* ``gc.freeze()`` after start-up: everything allocated so far (modules, config, clients) moves to
  a permanent generation that collections never scan again;
* a larger generation-0 threshold, so young collections run less often (the objects of a frame
  or a tick mostly die by reference counting, not by the cyclic collector).

``pauses()`` reports how long the collector actually stopped the process (per generation: count,
total and worst ms), so the effect is visible in the heartbeat rather than assumed.
"""

from __future__ import annotations

import gc
import time
from typing import Any

GEN0_THRESHOLD = 20_000  # default 700
GEN1_THRESHOLD = 20  # default 10
GEN2_THRESHOLD = 20  # default 10

_started: float | None = None
_stats: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}  # count, total, max


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    elif _started is not None:
        ms = (time.perf_counter() - _started) * 1000
        row = _stats[int(info.get("generation", 2))]
        row[0] += 1
        row[1] += ms
        row[2] = max(row[2], ms)
        _started = None


def tune(enabled: bool = True) -> None:
    """Freeze what start-up allocated, raise the thresholds (unless ``enabled`` is false:
    ``PF_GC_TUNE=0`` keeps CPython's defaults, to compare), and record pauses. Idempotent."""
    if enabled:
        gc.collect()
        gc.freeze()
        gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def pauses() -> dict[str, Any]:
    """Collector pauses since start: per generation count, total ms, worst ms."""
    return {f"gc{gen}": {"count": int(c), "total_ms": round(t, 2), "max_ms": round(m, 2)}
            for gen, (c, t, m) in _stats.items()}
