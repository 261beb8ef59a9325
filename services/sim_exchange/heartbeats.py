"""Order heartbeats, the venue's dead-man switch (pure, clock passed in; docs/venue.md H1).

``POST /v1/heartbeats {"heartbeat_id": id}``: the first send of an API key carries ``""`` and
arms the switch; every accepted send answers a fresh id, which the next send must carry. A send
with any other id is refused (400 ``Invalid Heartbeat ID`` with the id expected) and does not
refresh the deadline. When ``timeout`` passes with no accepted send, every open order of the key
is cancelled (reason ``heartbeat_expired``) and the registration is gone: the next send starts
again with ``""``.

While the matching engine restarts (every call 425, heartbeats included) the deadline waits:
:meth:`Heartbeats.hold` moves every registration's last send to the end of the outage, so a
restart alone never cancels anyone's orders. The venue's behaviour there is not documented; this
is the sim's choice (docs/venue.md H1).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass
class Registration:
    expected: str  # the id the next send must carry
    last: float  # when the last accepted send arrived


@dataclass(frozen=True)
class Beat:
    accepted: bool
    heartbeat_id: str  # accepted: the id to send next; refused: the id expected


class Heartbeats:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.registrations: dict[str, Registration] = {}  # API key -> its registration

    def beat(self, key: str, sent: str, now: float) -> Beat:
        reg = self.registrations.get(key)
        expected = reg.expected if reg else ""
        if sent != expected:
            return Beat(False, expected)
        fresh = str(uuid.uuid4())
        self.registrations[key] = Registration(fresh, now)
        return Beat(True, fresh)

    def expired(self, now: float) -> list[str]:
        """Keys whose deadline has passed; they are unregistered (their orders are the caller's)."""
        gone = [k for k, r in self.registrations.items() if now - r.last > self.timeout_s]
        for k in gone:
            del self.registrations[k]
        return gone

    def hold(self, until: float) -> None:
        """No deadline runs before ``until`` (the end of an engine restart)."""
        for r in self.registrations.values():
            r.last = max(r.last, until)
