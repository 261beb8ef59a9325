"""Which worker takes a token (pure)."""

from __future__ import annotations

from shared.fleet import WorkerView


def pick_worker(workers: list[WorkerView], exclude: frozenset[str] = frozenset()) -> str | None:
    """Least loaded live, ready worker with room, by assigned/capacity then assigned then id
    (deterministic). A worker still opening its venue account is passed over: its sessions could not
    trade yet."""
    candidates = [
        w for w in workers
        if w.alive and w.ready and not w.draining and w.assigned < w.capacity and w.worker_id not in exclude
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda w: (w.assigned / w.capacity, w.assigned, w.worker_id))
    return best.worker_id


def pick_taker(workers: list[WorkerView], old_owner: str, may_keep: bool) -> str | None:
    """Who takes a token ``old_owner`` gives up: another live worker if one has room; else, when
    ``may_keep`` (a hand-back from a live, not draining owner: a process restarted under the same
    id), the old owner itself under a new epoch, so a one-worker fleet does not orphan its tokens.
    The token is already counted in the old owner's load, so its capacity is not asked again."""
    other = pick_worker(workers, exclude=frozenset({old_owner}))
    if other is not None or not may_keep:
        return other
    same = next((w for w in workers if w.worker_id == old_owner), None)
    return old_owner if same is not None and same.alive and not same.draining else None
