"""The fleet read model (shared/fleet.py): one worker row from its hash, lease TTL and assigned count."""

from __future__ import annotations

from shared.fleet import ACTIVE_STATES, EXITABLE_STATES, LIVE_STATES, WORKER_READS, WorkerView, worker_views
from shared.keys import TOKEN_STATES, Keys


def test_state_groups_nest_and_are_token_states() -> None:
    assert EXITABLE_STATES == ("starting", "running")
    assert ACTIVE_STATES == ("starting", "running", "exiting")
    assert LIVE_STATES == ("queued", "starting", "running", "exiting")
    assert set(LIVE_STATES) <= set(TOKEN_STATES)


def test_a_worker_row_reads_liveness_from_the_lease_ttl() -> None:
    h = {"capacity": "10", "load": "3", "draining": "1", "host": "h1", "last_beat": "1700000000123"}
    replies = [h, 2500, 4, {"capacity": "5"}, -2, 0, {}, -1, 1]
    a, b, c = worker_views(["a", "b", "c"], replies)
    assert a == WorkerView("a", alive=True, capacity=10, assigned=4, draining=True, lease_ms=2500, reported_load=3)
    assert (a.fields["host"], a.stamp("last_beat"), a.stamp("started")) == ("h1", 1700000000123, None)
    assert (b.alive, b.lease_ms, b.capacity, b.assigned, b.draining) == (False, 0, 5, 0, False)  # no lease key
    assert (c.alive, c.lease_ms, c.capacity) == (True, 0, 0)  # a lease without expiry still holds


def test_a_worker_row_survives_a_garbled_hash() -> None:
    (w,) = worker_views(["w"], [{"capacity": "lots", "load": "nan", "draining": "0"}, 100, 0])
    assert (w.capacity, w.reported_load, w.draining, w.alive) == (0, 0, False, True)


def test_the_reads_are_queued_in_the_order_worker_views_reads_them() -> None:
    from shared.fleet import queue_worker_reads

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return lambda key: self.calls.append((name, key))

    k, pipe = Keys("pf"), Recorder()
    queue_worker_reads(pipe, k, "w1")
    assert pipe.calls == [("hgetall", k.worker("w1")), ("pttl", k.worker_lease("w1")),
                          ("scard", k.worker_tokens("w1"))]
    assert len(pipe.calls) == WORKER_READS
