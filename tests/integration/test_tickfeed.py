from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from shared.keys import Keys
from shared.tickfeed import TickFeed
from shared.ticks import Tick
from tests.support import eventually


def tick(seq: int, bid: float) -> Tick:
    return Tick("tok", seq, bid, bid + 0.02, 10, 10, None, 0.01, 1_000 + seq, 2_000 + seq)


async def test_a_session_gets_the_hash_at_once_then_only_the_latest_tick(r: aioredis.Redis, keys: Keys) -> None:
    await r.hset(keys.book("tok"), mapping=tick(1, 0.40).to_hash())
    feed = TickFeed(r, keys)
    stop = asyncio.Event()
    runner = asyncio.create_task(feed.run(stop))
    try:
        await feed.add("tok")
        first = await feed.next_tick("tok", None, timeout=1)
        assert first == tick(1, 0.40)  # from pf:book before any publish

        async def published() -> bool:
            await r.publish(keys.tick("tok"), tick(2, 0.41).to_json())
            return feed.received > 0

        await eventually(published, timeout=5, what="tick delivered")
        # A burst while the session is busy: it sees the freshest, not a backlog.
        for seq in range(3, 8):
            await r.publish(keys.tick("tok"), tick(seq, 0.40 + seq / 100).to_json())
        await eventually(lambda: _latest_seq(feed, 7), timeout=5, what="latest seq 7")
        nxt = await feed.next_tick("tok", first, timeout=1)
        assert nxt is not None
        assert nxt.seq == 7
        # An older tick arriving late does not replace a newer one; garbage is counted.
        await r.publish(keys.tick("tok"), tick(4, 0.1).to_json())
        await r.publish(keys.tick("tok"), "not json")
        await eventually(lambda: _bad_is(feed, 1), timeout=5, what="bad frame counted")
        assert feed.latest["tok"].seq == 7
        assert await feed.next_tick("tok", feed.latest["tok"], timeout=0.2) is None
    finally:
        stop.set()
        await runner
        await feed.close()


async def _latest_seq(feed: TickFeed, seq: int) -> bool:
    t = feed.latest.get("tok")
    return t is not None and t.seq == seq


async def _bad_is(feed: TickFeed, n: int) -> bool:
    return feed.bad == n
