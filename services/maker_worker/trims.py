"""Partial exits of a session (EXIT with a fraction, docs/copytrading.md "Exits"): each once.

A partial exit is named by the signal that caused it (the leader's SELL). The orchestrator keeps
the ones it asked for on the token (``pf:token`` ``trims``) and hands them to every START; the
session keeps which it has done in its snapshot (``pf:session`` ``trims``). So a trim asked of a
worker that died before doing it is done by the next owner, and one already done is not done again
by anyone. A trim is marked done (and the snapshot written) before its SELL goes out: a worker
killed halfway leaves the rest of that trim unsold (the leader's next sell, or its exit, carries
on), never sells the same share of the position twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

DONE_KEPT = 50  # ids of done trims remembered: far more than a session sees, bounded all the same


class TrimQueue:
    def __init__(self) -> None:
        self.pending: list[tuple[str, float]] = []  # (trim id, fraction), oldest first
        self.done: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.pending)

    def add(self, trim_id: str, fraction: float) -> bool:
        """Ask for one; False when it is known already (asked again, or done)."""
        if not 0 < fraction < 1:
            raise ValueError(f"a partial exit sells a fraction in (0, 1), not {fraction!r}")
        if trim_id and (trim_id in self.done or any(t == trim_id for t, _ in self.pending)):
            return False
        self.pending.append((trim_id, fraction))
        return True

    def add_all(self, trims: Iterable[object]) -> None:
        """The START params' ``trims`` ([id, fraction] pairs); a malformed entry is skipped."""
        for item in trims:
            if isinstance(item, list | tuple) and len(item) == 2:
                try:
                    self.add(str(item[0]), float(item[1]))
                except (TypeError, ValueError):
                    continue

    def take(self) -> float:
        """The next trim's fraction, marked done."""
        trim_id, fraction = self.pending.pop(0)
        if trim_id:
            self.done = [*self.done, trim_id][-DONE_KEPT:]
        return fraction

    def dump(self) -> str:
        return json.dumps({"pending": self.pending, "done": self.done}, separators=(",", ":"))

    def restore(self, raw: str | None) -> None:
        """The last owner's record: what it did is done; what it had not done yet is still to do."""
        data = json.loads(raw) if raw else {}
        done = [str(i) for i in data.get("done", [])]
        self.done = [*done, *(i for i in self.done if i not in done)][-DONE_KEPT:]
        self.pending = [(t, f) for t, f in self.pending if t not in self.done]
        self.add_all(data.get("pending", []))
