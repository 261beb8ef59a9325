"""Per-target cursor: which trades were already turned into signals (pure; no Redis).

The Data API time filter has one-second resolution and several trades can share a second, so a
bare "last timestamp" either repeats or loses trades. The cursor is therefore
(last trade second, keys of the trades seen AT that second): the next poll asks for
``start=ts`` (inclusive) and drops what is older than ``ts`` or already in ``keys``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from shared.polymarket.data_api import Trade


@dataclass(frozen=True, slots=True)
class Cursor:
    ts: int  # epoch seconds of the newest trade taken (or of the first run)
    keys: frozenset[str] = frozenset()  # Trade.key_id of every trade taken at ``ts``

    def to_hash(self, updated_ms: int) -> dict[str, str]:
        return {"ts": str(self.ts), "keys": json.dumps(sorted(self.keys)), "updated_ms": str(updated_ms)}

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Cursor | None:
        """None when there is no (usable) cursor: the caller starts a fresh one."""
        if not h or "ts" not in h:
            return None
        try:
            keys = json.loads(h.get("keys") or "[]")
            return cls(int(h["ts"]), frozenset(str(k) for k in keys))
        except (ValueError, TypeError):
            return None


def first_cursor(now_s: float, initial_lookback_sec: int) -> Cursor:
    """A2: a new target starts at "now" (history is not copied) unless a look-back is asked for."""
    return Cursor(int(now_s) - max(0, initial_lookback_sec))


def select_new(cursor: Cursor, trades: Iterable[Trade]) -> tuple[list[Trade], Cursor]:
    """Trades not yet taken, oldest first (de-duplicated), and the cursor after taking them all.

    ``trades`` is in the order the API serves them (newest first): within one second that order
    is the only clue to which came first, so it is reversed, then stably sorted by second.
    """
    fresh: dict[str, Trade] = {}
    for trade in reversed(list(trades)):
        kid = trade.key_id
        if trade.timestamp < cursor.ts or (trade.timestamp == cursor.ts and kid in cursor.keys):
            continue
        fresh.setdefault(kid, trade)
    if not fresh:
        return [], cursor
    ordered = sorted(fresh.values(), key=lambda t: t.timestamp)
    top = ordered[-1].timestamp
    at_top = {t.key_id for t in ordered if t.timestamp == top}
    new_keys = (cursor.keys | at_top) if top == cursor.ts else frozenset(at_top)
    return ordered, Cursor(top, frozenset(new_keys))
