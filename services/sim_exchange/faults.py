"""Injected faults: HTTP 429 bursts, orders whose HTTP response stalls after they are stored, and
the weekly matching-engine restart (docs/venue.md O1, O2).

A restart (:meth:`Faults.restart`) is two windows, back to back: ``seconds`` of HTTP 425 on every
CLOB call (the engine is down: nothing matches, nothing is accepted), then ``post_only_seconds``
in which only post-only orders and cancels are accepted (a plain order is refused 503
``post_only_mode``). Resting orders survive it: the venue's restart page says the engine reloads
its books; ``cancel_resting`` stands for an unscheduled restart that loses them (reason
``restart``).

A relayer stall (``relayer_stalls``) applies the next relayed transactions' calls but leaves them
``STATE_MINED`` for good: the relayer never says they are confirmed, so the sender cannot tell
they landed.

A heartbeat outage (:meth:`Faults.heartbeat_outage`) answers every order heartbeat 503 for
``seconds`` while everything else works: the account's deadline runs on (docs/venue.md H1), as
when the heartbeats of a worker cannot get through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ORDER_TIMEOUT_DELAY = 15.0
# Texts the venue's are not known for (docs/venue.md O1, O2): the sim's picks. The post-only one is
# the text the official SDK maps to ``post_only_mode`` when it arrives per order.
RESTART_TEXT = "Too Early: the matching engine is restarting"
HEARTBEAT_OUTAGE_TEXT = "Service Unavailable: heartbeats are not being accepted"
POST_ONLY_TEXT = "post-only mode: only post-only orders and cancels are allowed"
POST_ONLY_CODE = "post_only_mode"
# Paths that are not the CLOB (their own services on the venue): a restart leaves them alone.
NOT_CLOB = ("/_sim", "/gamma", "/data-api", "/ws", "/relayer")


@dataclass
class Http429:
    remaining: int
    retry_after: float
    path_prefix: str = ""
    status: int = 429  # 425 / 500 / 503 exercise the same back-off path


@dataclass
class Restart:
    down_until: float  # 425 on every CLOB call before this
    post_only_until: float  # then only post-only orders and cancels before this


@dataclass
class Faults:
    http_429: list[Http429] = field(default_factory=list)
    order_timeouts: int = 0
    order_timeout_delay: float = DEFAULT_ORDER_TIMEOUT_DELAY
    order_timeouts_answered: int = 0  # held answers sent at last (to a client that gave up on them)
    restart_window: Restart | None = None
    heartbeats_down_until: float = 0.0  # every order heartbeat refused (503) before this
    relayer_stalls: int = 0  # the next relayed transactions apply but never reach STATE_CONFIRMED

    def clear(self) -> None:
        self.http_429.clear()
        self.order_timeouts = 0
        self.restart_window = None
        self.heartbeats_down_until = 0.0
        self.relayer_stalls = 0

    def take_relayer_stall(self) -> bool:
        """Whether this relayed transaction stalls (using one of the armed count)."""
        if self.relayer_stalls <= 0:
            return False
        self.relayer_stalls -= 1
        return True

    def take_429(self, path: str) -> Http429 | None:
        """The armed 429 fault matching ``path`` (using one of its count), if any."""
        if path.startswith("/_sim"):
            return None
        for fault in self.http_429:
            if fault.remaining > 0 and path.startswith(fault.path_prefix or "/"):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.http_429.remove(fault)
                return fault
        return None

    def take_order_timeout(self) -> float | None:
        """The delay to stall this order's response for, if the fault is armed."""
        if self.order_timeouts <= 0:
            return None
        self.order_timeouts -= 1
        return self.order_timeout_delay

    # ---- order heartbeats refused ----------------------------------------------------------------
    def heartbeat_outage(self, now: float, seconds: float) -> float:
        self.heartbeats_down_until = now + seconds
        return self.heartbeats_down_until

    def heartbeats_down(self, now: float) -> bool:
        return now < self.heartbeats_down_until

    # ---- the engine restart ---------------------------------------------------------------------
    def restart(self, now: float, seconds: float, post_only_seconds: float) -> Restart:
        self.restart_window = Restart(now + seconds, now + seconds + post_only_seconds)
        return self.restart_window

    def restarting(self, now: float) -> bool:
        return self.restart_window is not None and now < self.restart_window.down_until

    def post_only(self, now: float) -> bool:
        w = self.restart_window
        return w is not None and w.down_until <= now < w.post_only_until

    @staticmethod
    def is_clob(path: str) -> bool:
        return not path.startswith(NOT_CLOB)
