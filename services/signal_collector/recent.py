"""RecentIds: the last N signal ids this process offered to the stream (bounded, FIFO; pure)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

DEFAULT_SIZE = 100_000  # ~10 MB at most; far more than the live/poll overlap of any sane setup


class RecentIds:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._order: deque[str] = deque()
        self._set: set[str] = set()

    def __contains__(self, sid: object) -> bool:
        return sid in self._set

    def __len__(self) -> int:
        return len(self._set)

    def add_all(self, ids: Iterable[str]) -> None:
        for sid in ids:
            if sid in self._set:
                continue
            self._set.add(sid)
            self._order.append(sid)
            if len(self._order) > self.size:
                self._set.discard(self._order.popleft())
