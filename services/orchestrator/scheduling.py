"""When queued tokens may start and queued exits may run (pure): C5's limits, spacing, FIFO order."""

from __future__ import annotations


def tokens_to_start(queued: list[tuple[str, int]], active: int, max_concurrent: int,
                    last_start_ms: int, now_ms: int, start_cooldown_sec: float) -> list[str]:
    """Tokens to start now, oldest signal first (FIFO by the followed trade's time).

    ``queued`` holds (token_id, signal time ms). ``active`` counts starting + running sessions.
    With a start cooldown at most one token starts per call, and only once the cooldown since
    the last start has passed, so a burst of signals does not become a burst of starts.
    """
    free = max(0, max_concurrent - active)
    if free == 0 or not queued:
        return []
    if start_cooldown_sec > 0:
        if now_ms - last_start_ms < start_cooldown_sec * 1000:
            return []
        free = 1
    ordered = sorted(queued, key=lambda q: (q[1], q[0]))
    return [token for token, _ in ordered[:free]]


def exits_to_run(waiting: list[tuple[str, int]], exiting: int, max_concurrent_exits: int) -> list[str]:
    """Queued exits that may start now (oldest request first) without passing the exit limit."""
    free = max(0, max_concurrent_exits - exiting)
    return [token for token, _ in sorted(waiting, key=lambda q: (q[1], q[0]))[:free]]
