"""The orchestrator's own Prometheus metrics (served by shared.metrics on its /metrics port).

Counted where the audit event is written, so every decision, start, reassignment and error the
event stream records is also a counter an operator can rate and alert on without reading Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

EVENTS = Counter("polyfleet_orchestrator_events", "Audit events written by the orchestrator, by kind and level",
                 ("kind", "level"))
DECISIONS = Counter("polyfleet_orchestrator_decisions", "Signals and control requests decided (applied once)")
DUPLICATES = Counter("polyfleet_orchestrator_duplicates", "Entries seen again and not applied twice")
LEADER = Gauge("polyfleet_orchestrator_is_leader", "1 while this process holds the leader lease")
DEAD_WORKERS = Gauge("polyfleet_orchestrator_dead_workers", "Registered workers without a lease that still hold tokens")


@dataclass
class Tally:
    """This process's own counts for its heartbeat, moved together with the counters above."""

    decisions: int = 0
    duplicates: int = 0

    def decided(self, n: int = 1) -> None:
        self.decisions += n
        DECISIONS.inc(n)

    def duplicate(self) -> None:
        self.duplicates += 1
        DUPLICATES.inc()
