"""Silence watchdog for the live-data socket (A6; pure: the caller passes the clock).

The feed is unofficial and lapses silently: the socket stays ping-alive (``pong`` keeps coming)
while the subscription has stopped delivering. So data and keep-alive are watched apart:

* no data for ``silence_sec``: resubscribe on the open socket (cheap, and it usually revives);
* still no data ``silence_sec`` after that: reconnect;
* no ``pong`` (nor any frame) for ``3 x ping_interval``: the socket is dead: reconnect.
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    NONE = "none"
    RESUBSCRIBE = "resubscribe"
    RECONNECT = "reconnect"


class SilenceWatchdog:
    def __init__(self, silence_sec: float, ping_interval: float) -> None:
        self.silence_sec = silence_sec
        self.ping_interval = ping_interval
        self.last_data = 0.0
        self.last_heard = 0.0
        self.resubscribed_at: float | None = None

    def connected(self, now: float) -> None:
        self.last_data = self.last_heard = now
        self.resubscribed_at = None

    def heard(self, now: float) -> None:
        """Any frame, keep-alive included."""
        self.last_heard = now

    def data(self, now: float) -> None:
        """A frame of the subscribed topic: the subscription is alive."""
        self.last_data = self.last_heard = now
        self.resubscribed_at = None

    def check(self, now: float) -> Action:
        if now - self.last_heard > 3 * self.ping_interval:
            return Action.RECONNECT
        if self.resubscribed_at is not None:
            if now - self.resubscribed_at > self.silence_sec:
                return Action.RECONNECT
            return Action.NONE
        if now - self.last_data > self.silence_sec:
            self.resubscribed_at = now
            return Action.RESUBSCRIBE
        return Action.NONE
