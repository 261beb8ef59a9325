"""What a worker may assume about its own lease, by its own clock (the last guard of H3).

The orchestrator moves a dead worker's tokens once its lease key is gone from Redis. A session
checks in Redis that it still owns its token before each order, but the order reaches the venue
later (a queued venue thread, a slow sign, a throttled venue); if the lease lapsed meanwhile, the
token may already have a new owner who trades it too. The venue has no fencing token, so the
worker fences itself: an order is posted only while

* the lease key has existed without a break since the ownership check was read (a renewal that
  landed after the key may have expired starts a new tenure: checks read before it prove nothing,
  since the orchestrator may have moved the token in the gap), and
* the lease surely holds ``margin`` longer, time for the POST to reach the venue, and
* the worker's command stream was read to its end recently enough: the orchestrator also moves an
  alive worker's token when a hand-back it asked for (STOP) has not come within a lease. A STOP
  written after a read began is at most a lease old when the move can happen, so an order posted
  ``margin`` before ``read began + lease`` still lands first; one written before it was applied
  (the session's stop gate), and
* the venue's dead-man switch is surely armed and not near its deadline (``venue_gate``: the order
  heartbeats of heartbeat.py; None where there are none, paper mode and bare sessions).

Times are ``time.monotonic()`` seconds. A renewal that *started* at ``s`` set the key to expire
no earlier than ``s + lease`` (Redis applied it later), so ``valid_until`` never overstates the
key's life; a renewal that *ended* after ``valid_until`` may have landed after the key expired.
Read from venue threads without a lock: each field is one atomic store, and the order of the
stores in :meth:`renewed` keeps every interleaving conservative.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class LeaseClock:
    def __init__(self, lease_ms: int, margin_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.configure(lease_ms, margin_ms)
        self.valid_until = -math.inf  # the key exists at least until then
        self.held_since = math.inf  # the current unbroken tenure began no later than this
        self.tenures = 0  # 1 + the breaks seen (each may have cost the worker its tokens)
        self.commands_read_at = -math.inf  # the latest read of the command stream that reached its end began then
        self.revoked = False
        self.venue_gate: Callable[[], bool] | None = None  # False: order heartbeats failing, fail closed

    def configure(self, lease_ms: int, margin_ms: int) -> None:
        """The lease and margin from the settings (a config reload may change them)."""
        self.lease_s, self.margin_s = lease_ms / 1000, margin_ms / 1000

    def renewed(self, started: float, ended: float) -> None:
        """A ``SET lease PX lease_ms`` sent at ``started`` succeeded at ``ended``."""
        if ended > self.valid_until:  # the key may have lapsed before this SET landed
            self.held_since = ended  # stored first: a reader between the two stores refuses
            self.tenures += 1
        self.valid_until = max(self.valid_until, started + self.lease_s)

    def commands_read(self, started: float) -> None:
        """A read of the command stream begun at ``started`` returned all there was (every STOP
        written before then has been applied)."""
        self.commands_read_at = max(self.commands_read_at, started)

    def revoke(self) -> None:
        """The worker is giving its lease up (drain): nothing more may be sent."""
        self.revoked = True

    def may_send(self, checked_at: float) -> bool:
        """May an order whose ownership check was read after ``checked_at`` be posted now?"""
        deadline = self.clock() + self.margin_s
        return (not self.revoked and checked_at >= self.held_since and deadline <= self.valid_until
                and deadline <= self.commands_read_at + self.lease_s
                and (self.venue_gate is None or self.venue_gate()))

    def sendable(self) -> bool:
        """Could an order whose ownership is checked now be posted (the lease renewed, commands read)?"""
        return self.may_send(self.clock())

    def remaining(self) -> float:
        """Seconds the lease surely holds yet (negative: it may have lapsed)."""
        return self.valid_until - self.clock()
