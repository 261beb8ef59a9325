"""Silence watchdog for the live-data socket (A6; pure: the caller passes the clock).

The feed is unofficial and lapses silently: the socket stays ping-alive (``pong`` keeps coming)
while the subscription has stopped delivering. A frozen connection is not revived by
resubscribing on it, only by a new socket (docs/venue.md L2, from the real-time data client's
troubleshooting notes), so data and keep-alive are watched apart and either silence replaces the
socket:

* no data for ``silence_sec``: the subscription froze: reconnect (a new socket subscribes afresh);
* no ``pong`` (nor any frame) for ``3 x ping_interval``: the socket is dead: reconnect.
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    NONE = "none"
    RECONNECT = "reconnect"


class SilenceWatchdog:
    def __init__(self, silence_sec: float, ping_interval: float) -> None:
        self.silence_sec = silence_sec
        self.ping_interval = ping_interval
        self.last_data = 0.0
        self.last_heard = 0.0

    def connected(self, now: float) -> None:
        self.last_data = self.last_heard = now

    def heard(self, now: float) -> None:
        """Any frame, keep-alive included."""
        self.last_heard = now

    def data(self, now: float) -> None:
        """A frame of the subscribed topic: the subscription is alive."""
        self.last_data = self.last_heard = now

    def check(self, now: float) -> Action:
        if now - self.last_heard > 3 * self.ping_interval or now - self.last_data > self.silence_sec:
            return Action.RECONNECT
        return Action.NONE

    def why(self, now: float) -> str:
        """What :meth:`check` saw, for the log."""
        if now - self.last_heard > 3 * self.ping_interval:
            return f"no pong for {now - self.last_heard:.0f}s"
        return f"no data for {now - self.last_data:.0f}s (a frozen subscription: resubscribing does not revive it)"
