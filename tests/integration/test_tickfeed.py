from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from harness import eventually
from shared.keys import Keys
from shared.tickfeed import TickFeed
from shared.ticks import Tick


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


async def test_a_seq_gap_re_reads_the_book_hash(r: aioredis.Redis, keys: Keys) -> None:
    feed = TickFeed(r, keys)
    stop = asyncio.Event()
    runner = asyncio.create_task(feed.run(stop))
    try:
        await feed.add("tok")
        await r.publish(keys.tick("tok"), tick(1, 0.40).to_json())
        await eventually(lambda: _latest_seq(feed, 1), timeout=5, what="seq 1")
        # ticks 2..4 never reach us (e.g. lost across a pub/sub reconnect); the hash has 5 and the
        # channel then delivers 3 (a late duplicate-ish tick): the gap makes the feed read the hash.
        await r.hset(keys.book("tok"), mapping=tick(5, 0.45).to_hash())
        await r.publish(keys.tick("tok"), tick(3, 0.43).to_json())
        await eventually(lambda: _latest_seq(feed, 5), timeout=5, what="hash tick after the gap")
        assert (feed.gaps, feed.latest["tok"].bid) == (1, 0.45)
        assert feed.rereads >= 1
        # contiguous ticks are no gap
        await r.publish(keys.tick("tok"), tick(6, 0.46).to_json())
        await eventually(lambda: _latest_seq(feed, 6), timeout=5, what="seq 6")
        assert feed.gaps == 1
    finally:
        stop.set()
        await runner
        await feed.close()


async def test_staleness_follows_the_tick_flag_and_the_gateway_liveness_key(r: aioredis.Redis, keys: Keys) -> None:
    import shared.tickfeed as tickfeed

    feed = TickFeed(r, keys)
    stop = asyncio.Event()
    old_check = tickfeed.GATEWAY_CHECK_SEC
    tickfeed.GATEWAY_CHECK_SEC = 0.05
    runner = asyncio.create_task(feed.run(stop))
    try:
        await r.set(keys.gw_alive(), "g1", px=60_000)
        await feed.add("tok")
        assert feed.stale("tok")  # no tick yet
        assert feed.age("tok") is None
        await r.publish(keys.tick("tok"), tick(1, 0.40).to_json())
        await eventually(lambda: _latest_seq(feed, 1), timeout=5, what="seq 1")
        await eventually(lambda: _not(feed.stale("tok")), timeout=5, what="fresh")
        age = feed.age("tok")
        assert age is not None
        assert 0 <= age < 5
        flagged = Tick("tok", 2, 0.40, 0.42, 10, 10, None, 0.01, 1_002, 2_002, stale=True)
        await r.publish(keys.tick("tok"), flagged.to_json())
        await eventually(lambda: _is(feed.stale("tok")), timeout=5, what="flag from the gateway")
        await r.publish(keys.tick("tok"), tick(3, 0.41).to_json())
        await eventually(lambda: _not(feed.stale("tok")), timeout=5, what="flag cleared")
        await r.delete(keys.gw_alive())  # the gateway died: nobody can flag anything any more
        await eventually(lambda: _is(feed.stale("tok")), timeout=5, what="stale without a gateway")
        assert feed.gateway_alive is False
    finally:
        tickfeed.GATEWAY_CHECK_SEC = old_check
        stop.set()
        await runner
        await feed.close()


async def test_a_lost_pubsub_connection_re_reads_every_owned_book(r: aioredis.Redis, keys: Keys) -> None:
    feed = TickFeed(r, keys)
    stop = asyncio.Event()
    runner = asyncio.create_task(feed.run(stop))
    try:
        await feed.add("tok")
        await r.publish(keys.tick("tok"), tick(1, 0.40).to_json())
        await eventually(lambda: _latest_seq(feed, 1), timeout=5, what="seq 1")
        # Redis drops the feed's connection (as on a restart or a network blip); meanwhile the
        # book moved and nothing will be published for it again (a quiet market)
        await r.hset(keys.book("tok"), mapping=tick(2, 0.44).to_hash())
        await r.client_kill_filter(_type="pubsub")
        await eventually(lambda: _latest_seq(feed, 2), timeout=10, what="book re-read after the reconnect")
        assert feed.reconnects >= 1
        # and the channel works again after the reconnect
        async def delivered() -> bool:
            await r.publish(keys.tick("tok"), tick(3, 0.45).to_json())
            return feed.latest["tok"].seq == 3
        await eventually(delivered, timeout=10, what="ticks after the reconnect")
    finally:
        stop.set()
        await runner
        await feed.close()


async def _is(value: bool) -> bool:
    return value


async def _not(value: bool) -> bool:
    return not value


async def test_tokens_added_and_removed_in_bulk_and_a_listener_sees_every_tick_taken(
        r: aioredis.Redis, keys: Keys) -> None:
    seen: list[tuple[str, int]] = []

    async def listener(t: Tick, arrived: float) -> None:
        seen.append((t.token_id, t.seq))

    def at(token: str, seq: int) -> Tick:
        return Tick(token, seq, 0.40, 0.42, 10, 10, None, 0.01, 1_000 + seq, 2_000 + seq)

    await r.hset(keys.book("a"), mapping=at("a", 1).to_hash())
    feed = TickFeed(r, keys, listener=listener)
    stop = asyncio.Event()
    runner = asyncio.create_task(feed.run(stop))
    try:
        await feed.add_many(["a", "b"])
        assert seen == [("a", 1)]  # a's hash at once; b has none yet
        await r.publish(keys.tick("b"), at("b", 1).to_json())
        await r.publish(keys.tick("a"), at("a", 1).to_json())  # the same tick again: not taken
        await r.publish(keys.tick("a"), at("a", 2).to_json())
        await eventually(lambda: _is(("a", 2) in seen), timeout=5, what="a's seq 2")
        assert seen == [("a", 1), ("b", 1), ("a", 2)]
        await feed.remove_many(["a"])
        assert feed.tokens == ["b"]
        assert "a" not in feed.latest
        await r.publish(keys.tick("a"), at("a", 3).to_json())  # no longer followed
        await r.publish(keys.tick("b"), at("b", 2).to_json())
        await eventually(lambda: _is(("b", 2) in seen), timeout=5, what="b's seq 2")
        assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    finally:
        stop.set()
        await runner
        await feed.close()
