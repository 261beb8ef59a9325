"""Operator control requests, shared by every writer of ``pf:control`` (CLI, API).

Building the request and deciding whether the orchestrator has applied it are the same for a sync
and an async client; only the two Redis reads differ, so each caller does its own I/O with these.
The orchestrator commits a request's effects with its ack, so "delivered to the group and no
longer pending" means applied.
"""

from __future__ import annotations

import time
from typing import Any

from shared.clock import now_ms
from shared.keys import GROUP_ORCHESTRATOR
from shared.messages import ControlRequest, stable_id


def control_request(action: str, target: str = "", reason: str = "", force: bool = False, expires_at: int = 0,
                    requester: str = "cli") -> ControlRequest:
    ts = now_ms()
    return ControlRequest(id=stable_id(requester, action, target, ts, time.monotonic_ns()), ts_event=ts,
                          ts_init=ts, producer=requester, action=action, target=target,  # type: ignore[arg-type]
                          reason=reason, force=force, expires_at=expires_at)


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a comparable (ms, seq)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def delivered(groups: list[dict[str, Any]], entry_id: str) -> bool:
    """Has the orchestrator group read up to ``entry_id`` (``groups`` = XINFO GROUPS of the stream)?
    If so, the caller asks XPENDING whether it is still unacknowledged."""
    group = next((g for g in groups if g.get("name") == GROUP_ORCHESTRATOR), None)
    return group is not None and entry_key(str(group["last-delivered-id"])) >= entry_key(entry_id)
