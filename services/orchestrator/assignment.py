"""Which worker takes a token (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    alive: bool  # its lease key exists
    capacity: int
    load: int  # tokens the orchestrator has assigned to it (starting, running, exiting)
    draining: bool = False


def pick_worker(workers: list[WorkerView], exclude: frozenset[str] = frozenset()) -> str | None:
    """Least loaded live worker with room, by load/capacity then load then id (deterministic)."""
    candidates = [
        w for w in workers
        if w.alive and not w.draining and w.load < w.capacity and w.worker_id not in exclude
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda w: (w.load / w.capacity, w.load, w.worker_id))
    return best.worker_id
