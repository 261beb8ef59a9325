"""Reading whole Redis streams."""

from __future__ import annotations

from typing import Any, TypeVar

from shared.messages import Message, decode

M = TypeVar("M", bound=Message)


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


async def read_messages(r: Any, key: str, kind: type[M]) -> list[M]:
    """Every entry of a stream decoded as a ``kind`` message, oldest first (one of another type, or
    one that does not decode, fails the caller: the stream holds only ``kind``)."""
    out: list[M] = []
    for _, fields in await read_stream(r, key):
        msg = decode(fields)
        if not isinstance(msg, kind):
            raise AssertionError(f"{key}: {type(msg).__name__} where only {kind.__name__} is expected")
        out.append(msg)
    return out
