"""Stream I/O with consumer groups (at-least-once): add, read-group, ack, auto-claim.

Consumers ack only after the entry's effect is stored. Entries a dead consumer left pending are
taken over with XAUTOCLAIM once idle for ``claim_idle_ms``. An entry that is not a known message
is logged, counted and acked (never crash-looped).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import ResponseError

from shared.messages import Message, MessageError, decode


async def add_message(r: aioredis.Redis, stream: str, msg: Message, maxlen: int | None = None) -> str:
    """XADD the message's flat fields; returns the entry id."""
    fields = msg.encode()
    if maxlen:
        return str(await r.xadd(stream, fields, maxlen=maxlen, approximate=True))  # type: ignore[arg-type]
    return str(await r.xadd(stream, fields))  # type: ignore[arg-type]


@dataclass(frozen=True)
class StreamEntry:
    stream: str
    entry_id: str
    message: Message


class StreamConsumer:
    """One consumer in one group over one or more streams."""

    def __init__(self, r: aioredis.Redis, streams: list[str], group: str, consumer: str,
                 claim_idle_ms: int = 30_000, start_id: str = "0") -> None:
        self.r = r
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.start_id = start_id
        self.skipped = 0  # entries that were not valid messages
        # True after a read() that reached the end of the new entries (a '>' read returning fewer
        # than asked): everything written before that read began has been delivered.
        self.at_end = False
        self._claim_cursor = {s: "0-0" for s in streams}

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.r.xgroup_create(stream, self.group, id=self.start_id, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, count: int = 100, block_ms: int = 1000) -> list[StreamEntry]:
        """Own pending first (after a restart), then claims from dead consumers, then new entries."""
        self.at_end = False
        entries, _ = await self._read_ids({s: "0" for s in self.streams}, count, block_ms=None)
        if entries:
            return entries
        claimed = await self._autoclaim(count)
        if claimed:
            return claimed
        entries, raw = await self._read_ids({s: ">" for s in self.streams}, count, block_ms=block_ms)
        self.at_end = raw < count
        return entries

    async def _read_ids(self, ids: dict[str, str], count: int, block_ms: int | None
                        ) -> tuple[list[StreamEntry], int]:
        """-> (the valid entries, how many rows Redis returned: invalid ones are counted and dropped)."""
        try:
            resp = await self.r.xreadgroup(self.group, self.consumer, ids, count=count, block=block_ms)  # type: ignore[arg-type]
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                await self.ensure_groups()
                return [], count  # nothing read: not known to be at the end
            raise
        out: list[StreamEntry] = []
        raw = 0
        for stream, rows in resp or []:
            raw += len(rows)
            for entry_id, fields in rows:
                entry = await self._to_entry(stream, entry_id, fields)
                if entry is not None:
                    out.append(entry)
        return out, raw

    async def _autoclaim(self, count: int) -> list[StreamEntry]:
        out: list[StreamEntry] = []
        for stream in self.streams:
            try:
                resp = await self.r.xautoclaim(stream, self.group, self.consumer, self.claim_idle_ms,
                                               start_id=self._claim_cursor[stream], count=count)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    await self.ensure_groups()
                    continue
                raise
            next_id, rows = resp[0], resp[1]
            self._claim_cursor[stream] = next_id
            for entry_id, fields in rows:
                if fields is None:  # entry trimmed away while pending
                    await self.r.xack(stream, self.group, entry_id)
                    continue
                logger.info("claimed {} {} left pending by a dead consumer", stream, entry_id)
                entry = await self._to_entry(stream, entry_id, fields)
                if entry is not None:
                    out.append(entry)
        return out

    async def _to_entry(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> StreamEntry | None:
        if fields is None:
            # Pending entry whose body was trimmed (deleted): nothing to do but ack it.
            await self.ack(stream, entry_id)
            return None
        try:
            return StreamEntry(stream, entry_id, decode(fields))
        except MessageError as exc:
            self.skipped += 1
            logger.warning("skipping {} {}: {} (fields {})", stream, entry_id, exc, dict(list(fields.items())[:8]))
            await self.ack(stream, entry_id)
            return None

    async def ack(self, stream: str, entry_id: str) -> None:
        await self.r.xack(stream, self.group, entry_id)
