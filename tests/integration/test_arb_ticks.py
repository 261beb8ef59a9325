"""The scanner's tick evaluation on the shared TickFeed, against real Redis: a ``seq`` gap on a
token's channel makes the scanner re-read the token's ``pf:book`` hash and evaluate its sets on
it, so a lost tick cannot leave it on a top of book that has moved."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from harness import eventually
from services.arb_scanner.catalogue import ArbSet
from services.arb_scanner.detect import Kind
from services.arb_scanner.service import ArbScannerService
from shared.config import Settings
from shared.keys import Keys
from shared.messages import Opportunity, decode
from shared.ticks import Tick
from shared.venue.fees import FeeSchedule

FREE = FeeSchedule(0.0, 1.0)
MARKET = ArbSet("0xm", (Kind.BUY_BOTH,), "M?", ("yes", "no"), (FREE, FREE), 5.0, 0.01, None, False, ("0xm",))


def tick(token: str, seq: int, ask: float) -> Tick:
    return Tick(token, seq, round(ask - 0.02, 2), ask, 100.0, 100.0, None, 0.01, 1_000 + seq, 2_000 + seq)


async def opportunities(r: aioredis.Redis, keys: Keys) -> list[Opportunity]:
    got = [decode(fields) for _, fields in await r.xrange(keys.opportunities())]
    return [m for m in got if isinstance(m, Opportunity)]


async def test_a_seq_gap_makes_the_scanner_re_read_the_book(r: aioredis.Redis, keys: Keys) -> None:
    settings = Settings.model_validate({"arbitrage": {"enabled": True, "kinds": ["buy_both"], "min_edge": 0.01,
                                                      "depth_min_interval_sec": 3600}})
    scanner = ArbScannerService(settings, "a1", redis=r)
    # asks 0.52 + 0.50 = 1.02: nothing to report
    await r.hset(keys.book("yes"), mapping=tick("yes", 1, 0.52).to_hash())
    await r.hset(keys.book("no"), mapping=tick("no", 1, 0.50).to_hash())
    await scanner.catalogue.install([MARKET])
    assert {t: scanner.tops[t].seq for t in MARKET.tokens} == {"yes": 1, "no": 1}  # read from the hashes
    stop = asyncio.Event()
    runner = asyncio.create_task(scanner.ticks.feed.run(stop))
    try:
        # ticks 2..4 of YES never arrive (lost across a pub/sub blip); the gateway's hash holds 5,
        # where YES asks 0.45 (the asks sum to 0.95); the channel then delivers a late tick 3
        await r.hset(keys.book("yes"), mapping=tick("yes", 5, 0.45).to_hash())
        await r.publish(keys.tick("yes"), tick("yes", 3, 0.52).to_json())

        async def opened() -> Opportunity | None:
            got = [o for o in await opportunities(r, keys) if o.status == "open"]
            return got[0] if got else None

        opp = await eventually(opened, timeout=10, what="the opportunity in the re-read book")
        assert opp.prices == [0.45, 0.50]
        assert opp.top_sum == 0.95
        assert scanner.tops["yes"].seq == 5
        assert scanner.ticks.feed.gaps == 1
    finally:
        stop.set()
        await runner
        await scanner.ticks.close()
