"""StreamConsumer against a real redis-server: groups, ack, restart, takeover, bad entries."""

from __future__ import annotations

import redis.asyncio as aioredis

from harness import eventually
from shared.keys import Keys
from shared.messages import Signal
from shared.redisio.streams import StreamConsumer, add_message

GROUP = "orchestrator"


def signal(n: int) -> Signal:
    return Signal(id=f"sig-{n}", ts_event=1_700_000_000_000 + n, ts_init=1_700_000_000_100 + n, producer="test",
                  side="BUY", token_id=f"tok-{n}", account="0xabc", size=10.0 + n, price=0.5, source="poll")


async def pending_of(r: aioredis.Redis, stream: str) -> dict[str, str]:
    """entry id -> consumer, for every entry delivered in GROUP and not acked."""
    rows = await r.xpending_range(stream, GROUP, min="-", max="+", count=1000)
    return {row["message_id"]: row["consumer"] for row in rows}


async def test_ensure_groups_creates_the_stream_and_is_idempotent(r: aioredis.Redis, keys: Keys) -> None:
    c = StreamConsumer(r, [keys.signals(), keys.control()], GROUP, "c1")
    await c.ensure_groups()
    await c.ensure_groups()
    await StreamConsumer(r, [keys.signals()], GROUP, "c2").ensure_groups()
    for stream in (keys.signals(), keys.control()):
        groups = await r.xinfo_groups(stream)
        assert [g["name"] for g in groups] == [GROUP]


async def test_read_returns_decoded_messages_and_ack_clears_them(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    sent = [signal(n) for n in range(3)]
    ids = [await add_message(r, stream, m) for m in sent]

    entries = await c.read(count=10, block_ms=100)
    assert [e.entry_id for e in entries] == ids
    assert [e.message for e in entries] == sent
    assert all(e.stream == stream for e in entries)
    assert set(await pending_of(r, stream)) == set(ids)

    for e in entries:
        await c.ack(e.stream, e.entry_id)
    assert await pending_of(r, stream) == {}
    assert await c.read(count=10, block_ms=50) == []
    assert c.skipped == 0


async def test_entries_written_before_the_group_existed_are_delivered(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    await add_message(r, stream, signal(1))
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    assert [e.message for e in await c.read(block_ms=50)] == [signal(1)]


async def test_unacked_entries_are_read_again_after_a_restart(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    first = StreamConsumer(r, [stream], GROUP, "orchestrator-1")
    await first.ensure_groups()
    ids = [await add_message(r, stream, signal(n)) for n in range(2)]
    got = await first.read(block_ms=100)
    assert [e.entry_id for e in got] == ids
    del first  # crashed before storing the effects: nothing acked

    restarted = StreamConsumer(r, [stream], GROUP, "orchestrator-1")
    await restarted.ensure_groups()
    again = await restarted.read(block_ms=100)
    assert [e.entry_id for e in again] == ids
    assert [e.message for e in again] == [signal(0), signal(1)]
    for e in again:
        await restarted.ack(e.stream, e.entry_id)
    assert await restarted.read(block_ms=50) == []


async def test_pending_entries_come_before_new_ones(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    old = await add_message(r, stream, signal(1))
    assert [e.entry_id for e in await c.read(block_ms=50)] == [old]
    await add_message(r, stream, signal(2))
    assert [e.entry_id for e in await c.read(block_ms=50)] == [old]  # still unacked: redelivered first
    await c.ack(stream, old)
    assert [e.message for e in await c.read(block_ms=50)] == [signal(2)]


async def test_a_live_consumer_takes_over_entries_a_dead_one_left_pending(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    dead = StreamConsumer(r, [stream], GROUP, "dead", claim_idle_ms=200)
    await dead.ensure_groups()
    ids = [await add_message(r, stream, signal(n)) for n in range(3)]
    assert len(await dead.read(block_ms=100)) == 3  # then it dies without acking

    alive = StreamConsumer(r, [stream], GROUP, "alive", claim_idle_ms=200)
    await alive.ensure_groups()
    assert await alive.read(block_ms=10) == []  # not idle long enough yet

    async def claimed() -> list[str]:
        return [e.entry_id for e in await alive.read(block_ms=10)]

    got = await eventually(claimed, timeout=5, what="takeover of the dead consumer's entries")
    assert got == ids
    assert set((await pending_of(r, stream)).values()) == {"alive"}
    for entry_id in got:
        await alive.ack(stream, entry_id)
    assert await pending_of(r, stream) == {}


async def test_invalid_entries_are_counted_acked_and_never_returned(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    await r.xadd(stream, {"type": "no_such_type", "v": "1", "id": "x"})
    await r.xadd(stream, {**signal(1).encode(), "v": "99"})
    await r.xadd(stream, {**signal(2).encode(), "side": "HOLD"})
    good = await add_message(r, stream, signal(3))

    entries = await c.read(count=10, block_ms=100)
    assert [(e.entry_id, e.message) for e in entries] == [(good, signal(3))]
    assert c.skipped == 3
    assert set(await pending_of(r, stream)) == {good}  # the bad ones are acked, not left to loop

    restarted = StreamConsumer(r, [stream], GROUP, "c1")
    assert [e.entry_id for e in await restarted.read(block_ms=50)] == [good]
    assert restarted.skipped == 0


async def test_one_consumer_reads_several_streams(r: aioredis.Redis, keys: Keys) -> None:
    c = StreamConsumer(r, [keys.signals(), keys.control()], GROUP, "c1")
    await c.ensure_groups()
    a = await add_message(r, keys.signals(), signal(1))
    b = await add_message(r, keys.control(), signal(2))
    got = {(e.stream, e.entry_id) for e in await c.read(block_ms=100)}
    assert got == {(keys.signals(), a), (keys.control(), b)}


async def test_a_pending_entry_deleted_from_the_stream_is_dropped(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    gone = await add_message(r, stream, signal(1))
    assert len(await c.read(block_ms=50)) == 1
    await r.xdel(stream, gone)  # trimmed while pending
    restarted = StreamConsumer(r, [stream], GROUP, "c1")
    assert await restarted.read(block_ms=50) == []
    assert await pending_of(r, stream) == {}


async def test_a_group_lost_with_its_stream_is_recreated(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.signals()
    c = StreamConsumer(r, [stream], GROUP, "c1")
    await c.ensure_groups()
    await r.delete(stream)  # e.g. a wiped or restarted Redis without persistence
    assert await c.read(block_ms=50) == []
    assert [g["name"] for g in await r.xinfo_groups(stream)] == [GROUP]
    await add_message(r, stream, signal(1))
    assert [e.message for e in await c.read(block_ms=100)] == [signal(1)]


async def test_add_message_with_maxlen_trims_the_stream(r: aioredis.Redis, keys: Keys) -> None:
    stream = keys.events()
    for n in range(500):
        await add_message(r, stream, signal(n), maxlen=100)
    length = await r.xlen(stream)
    assert 100 <= length < 500


async def test_at_end_says_whether_a_read_reached_the_end_of_the_new_entries(r: aioredis.Redis, keys: Keys) -> None:
    """A worker posts orders only while its command stream was read to the end lately (a STOP there
    must have been applied): a full batch, or redelivered pending entries, are not the end."""
    stream = keys.cmd("w1")
    c = StreamConsumer(r, [stream], "workers", "w1")
    await c.ensure_groups()
    for n in range(3):
        await add_message(r, stream, signal(n))
    assert len(await c.read(count=2, block_ms=50)) == 2
    assert not c.at_end  # a full batch: more may wait
    del c
    again = StreamConsumer(r, [stream], "workers", "w1")  # restarted: its 2 pending come back first
    assert len(await again.read(count=2, block_ms=50)) == 2
    assert not again.at_end
    for e in await again.read(count=2, block_ms=50):  # still pending (unacked): redelivered again
        await again.ack(e.stream, e.entry_id)
    assert not again.at_end
    last = await again.read(count=2, block_ms=50)
    assert [e.message for e in last] == [signal(2)]
    assert again.at_end  # one new entry of two asked: the end
    await again.ack(last[0].stream, last[0].entry_id)
    assert await again.read(count=2, block_ms=50) == []
    assert again.at_end
