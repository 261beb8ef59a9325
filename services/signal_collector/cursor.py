"""Per-target cursor: which trades were already turned into signals (pure; no Redis).

The Data API time filter has one-second resolution and several trades can share a second, so a
bare "last timestamp" either repeats or loses trades. The cursor is therefore
(last trade second, keys of the trades seen AT that second): the next poll asks for
``start=ts - overlap`` (inclusive) and drops what is older than that or, at ``ts``, already in
``keys``. The overlap is there because the API indexes trades late and out of order (a trade of
second T can appear after one of T+1 was read); the trades it re-reads below ``ts`` cannot be told
apart here, so they go on to the Redis seen-set, which emits each id once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from shared.venue.data_api import Trade


@dataclass(frozen=True, slots=True)
class Cursor:
    ts: int  # epoch seconds of the newest trade taken (or of the first run)
    keys: frozenset[str] = frozenset()  # Trade.key_id of every trade taken at ``ts``
    floor: int = 0  # where following began: the overlap never reads history from before it (A2)

    def read_from(self, overlap_sec: int) -> int:
        """The ``start`` of the next poll: ``overlap_sec`` below ``ts``, never below ``floor``."""
        return max(self.ts - overlap_sec, self.floor)

    def to_hash(self, updated_ms: int) -> dict[str, str]:
        return {"ts": str(self.ts), "keys": json.dumps(sorted(self.keys)), "floor": str(self.floor),
                "updated_ms": str(updated_ms)}

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Cursor | None:
        """None when there is no (usable) cursor: the caller starts a fresh one. A cursor written
        before ``floor`` existed gets ``floor = ts``: no overlap below a point never re-read."""
        if not h or "ts" not in h:
            return None
        try:
            keys = json.loads(h.get("keys") or "[]")
            ts = int(h["ts"])
            return cls(ts, frozenset(str(k) for k in keys), int(h.get("floor") or ts))
        except (ValueError, TypeError):
            return None


def first_cursor(now_s: float, initial_lookback_sec: int) -> Cursor:
    """A2: a new target starts at "now" (history is not copied) unless a look-back is asked for."""
    start = int(now_s) - max(0, initial_lookback_sec)
    return Cursor(start, floor=start)


def select_new(cursor: Cursor, trades: Iterable[Trade], overlap_sec: int = 0) -> tuple[list[Trade], Cursor]:
    """Trades that may not be taken yet, oldest first (de-duplicated), and the cursor after taking
    them all.

    Trades of ``[cursor.read_from(overlap_sec), cursor.ts)`` are returned too (late-indexed trades hide
    there; the caller's seen-set drops the ones already emitted) but never move the cursor back.
    ``trades`` is in the order the API serves them (newest first): within one second that order
    is the only clue to which came first, so it is reversed, then stably sorted by second.
    """
    floor = cursor.read_from(overlap_sec)
    fresh: dict[str, Trade] = {}
    for trade in reversed(list(trades)):
        kid = trade.key_id
        if trade.timestamp < floor or (trade.timestamp == cursor.ts and kid in cursor.keys):
            continue
        fresh.setdefault(kid, trade)
    ordered = sorted(fresh.values(), key=lambda t: t.timestamp)
    current = [t for t in ordered if t.timestamp >= cursor.ts]
    if not current:
        return ordered, cursor
    top = current[-1].timestamp
    at_top = {t.key_id for t in current if t.timestamp == top}
    new_keys = (cursor.keys | at_top) if top == cursor.ts else frozenset(at_top)
    return ordered, Cursor(top, frozenset(new_keys), cursor.floor)
