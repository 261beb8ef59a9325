"""The fleet as every reader sees it: the named groups of token states, the smallest position,
and a worker's row (its hash, its lease, the tokens assigned to it), read one way by the
orchestrator, the alerter, the API and the CLI.

Every token state is listed in shared/keys.py (``TOKEN_STATES``); the groups below are the ones
the rules and views ask about, named once so a rule and the index it reads cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.keys import Keys

# A session runs or is being started: a SELL (or a stop) asks it to exit.
EXITABLE_STATES = ("starting", "running")
# A worker holds the token: the members of pf:worker:{id}:tokens and its assigned count.
ACTIVE_STATES = (*EXITABLE_STATES, "exiting")
# Admitted and not finished: a BUY for the token is ignored; listed first by the API and CLI.
LIVE_STATES = ("queued", *ACTIVE_STATES)

DUST = 0.01  # shares below this are not a position and cannot be sold (two-decimal sizes)

WORKER_READS = 3  # replies ``queue_worker_reads`` adds to a pipeline per worker


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    alive: bool  # its lease key exists
    capacity: int
    assigned: int  # tokens the orchestrator assigned to it (members of pf:worker:{id}:tokens)
    draining: bool = False
    ready: bool = True  # its venue account is open: it may take tokens (a worker holds its lease before)
    lease_ms: int = 0  # lease time left (0: none, or a lease without expiry)
    reported_load: int = 0  # sessions the worker last reported running (its hash's ``load``)
    fields: Mapping[str, str] = field(default_factory=dict, compare=False)  # the whole hash (host, pid, ...)

    def stamp(self, name: str) -> int | None:
        """A millisecond time field of the worker's hash (``started``, ``last_beat``); None if unset."""
        return _int(self.fields.get(name)) or None


def queue_worker_reads(pipe: Any, keys: Keys, worker_id: str) -> None:
    """Queue one worker's reads (hash, lease TTL, assigned count) on a pipeline, sync or async."""
    pipe.hgetall(keys.worker(worker_id))
    pipe.pttl(keys.worker_lease(worker_id))
    pipe.scard(keys.worker_tokens(worker_id))


def worker_views(worker_ids: Sequence[str], replies: Sequence[Any]) -> list[WorkerView]:
    """The rows of ``worker_ids`` from the first ``WORKER_READS * len(worker_ids)`` replies of a
    pipeline that ran ``queue_worker_reads`` for each of them, in order."""
    out = []
    for i, wid in enumerate(worker_ids):
        h, lease_ms, assigned = replies[WORKER_READS * i:WORKER_READS * (i + 1)]
        h = h if isinstance(h, dict) else {}
        ttl = lease_ms if isinstance(lease_ms, int) else -2
        out.append(WorkerView(
            wid, alive=ttl > 0 or ttl == -1, capacity=_int(h.get("capacity")),
            assigned=assigned if isinstance(assigned, int) else 0,
            draining=h.get("draining", "0") not in ("0", "", "false"), ready=h.get("ready", "1") == "1",
            lease_ms=max(ttl, 0),
            reported_load=_int(h.get("load")), fields=h))
    return out


async def read_workers(redis: Any, keys: Keys) -> list[WorkerView]:
    """Every registered worker, by id: two round trips however many there are."""
    ids = sorted(await redis.smembers(keys.workers()))
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for wid in ids:
            queue_worker_reads(pipe, keys, wid)
        return worker_views(ids, await pipe.execute())


def read_workers_sync(redis: Any, keys: Keys) -> list[WorkerView]:
    """``read_workers`` for a synchronous client (the CLI, the API's metrics collector)."""
    ids = sorted(redis.smembers(keys.workers()))
    if not ids:
        return []
    pipe = redis.pipeline(transaction=False)
    for wid in ids:
        queue_worker_reads(pipe, keys, wid)
    return worker_views(ids, pipe.execute())


def _int(raw: Any) -> int:
    try:
        return int(float(raw or 0))
    except (TypeError, ValueError, OverflowError):
        return 0
