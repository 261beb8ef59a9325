"""Reading whole Redis streams."""

from __future__ import annotations

from typing import Any


async def read_stream(r: Any, key: str, page: int = 10_000) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a stream, read in pages (the soak's and the system benchmark's streams are
    too long for one XRANGE)."""
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        rows = await r.xrange(key, min=start, count=page)
        out.extend(rows[1:] if out and rows and rows[0][0] == out[-1][0] else rows)
        if len(rows) < page:
            return out
        start = rows[-1][0]
