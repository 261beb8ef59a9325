"""One signer's rate budget shared by two processes through a real Redis (shared/venue/rate_budget.py,
docs/venue.md R2): what one spends the other cannot, a 429 holds both, and against the sim's
buckets the second client waits instead of being refused."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import redis.asyncio as aioredis
from polymarket.rate_limit import RateLimitUpdate
from prometheus_client import REGISTRY

from harness import SimExchangeProcess
from shared.config import Secrets, load_settings
from shared.keys import Keys
from shared.venue.account import open_account
from shared.venue.environment import fetch_sim_environment
from shared.venue.errors import VenueUnavailable
from shared.venue.ids import outcome
from shared.venue.orders import OrderMarket, VenueOrders
from shared.venue.rate_budget import CANCELS, ORDERS, RateBudget
from shared.venue.ratelimit import SignerRateLimit

SIGNER = "0x" + "ab" * 20


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def process(r: aioredis.Redis, keys: Keys, clock: Clock, max_wait_s: float = 10.0) -> RateBudget:
    """One process's view of the signer's budget (its own local state, the shared hash)."""
    return RateBudget(r, keys, SignerRateLimit(SIGNER), max_wait_s, clock=clock, sleep=clock.sleep)


async def test_what_one_process_spends_the_other_cannot(r: aioredis.Redis, keys: Keys) -> None:
    clock = Clock(1000.0)
    a, b = process(r, keys, clock), process(r, keys, clock)
    assert await a.wait_s(ORDERS) == 0  # nothing known yet: send
    await a.report(ORDERS, [RateLimitUpdate(remaining=2, reset=1005.0, tier="standard")])
    assert await a.wait_s(ORDERS) == 0
    assert await b.wait_s(ORDERS) == 0  # the last token: taken by b, at once, in Redis
    assert await a.wait_s(ORDERS) == pytest.approx(5.0)  # spent until the bucket is full again
    assert await b.wait_s(ORDERS) == pytest.approx(5.0)
    assert await b.wait_s(CANCELS) == 0  # the cancel bucket is another
    stored = await r.hgetall(keys.ratelimit(SIGNER.upper().replace("0X", "0x"), ORDERS))
    assert (float(stored["remaining"]), stored["tier"]) == (0.0, "standard")
    assert 0 < await r.pttl(keys.ratelimit(SIGNER, ORDERS)) <= 600_000
    clock.t = 1005.0  # reset: the bucket refilled; what was known is stale
    assert await b.wait_s(ORDERS) == 0
    assert "remaining" not in await r.hgetall(keys.ratelimit(SIGNER, ORDERS))


async def test_a_429_seen_by_one_process_holds_every_process_back(r: aioredis.Redis, keys: Keys) -> None:
    clock = Clock(2000.0)
    a, b = process(r, keys, clock), process(r, keys, clock)
    await b.report(ORDERS, [], throttled_until=2003.0)
    assert await a.wait_s(ORDERS) == pytest.approx(3.0)
    await a.report(ORDERS, [], throttled_until=2001.0)  # an earlier hold never shortens a later one
    assert await b.wait_s(ORDERS) == pytest.approx(3.0)
    await a.acquire(ORDERS)  # waits it out in naps of at most a second, asking again each time
    assert clock.t == pytest.approx(2003.0)
    assert clock.slept == [1.0, 1.0, 1.0]


async def test_a_wait_beyond_max_wait_is_refused_as_a_429_nothing_sent(r: aioredis.Redis, keys: Keys) -> None:
    clock = Clock(3000.0)
    a, b = process(r, keys, clock, max_wait_s=2.0), process(r, keys, clock)
    await b.report(ORDERS, [RateLimitUpdate(remaining=0, reset=3030.0)])
    with pytest.raises(VenueUnavailable) as caught:
        await a.acquire(ORDERS)
    assert (caught.value.status, caught.value.retry_after) == (429, pytest.approx(30.0))
    assert clock.slept == []


async def test_redis_away_falls_back_to_the_process_own_view(keys: Keys) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    clock = Clock(4000.0)
    local = SignerRateLimit(SIGNER)
    budget = RateBudget(dead, keys, local, 10.0, clock=clock, sleep=clock.sleep)
    assert await budget.wait_s(ORDERS) == 0
    local.on_throttled(2.0, now=4000.0)
    assert await budget.wait_s(ORDERS) == pytest.approx(2.0)
    await budget.report(ORDERS, [RateLimitUpdate(remaining=1)])  # logged, never raised
    await dead.aclose()


async def test_two_clients_of_one_signer_share_the_venues_bucket_the_second_waits_instead_of_a_429(
        start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys) -> None:
    """Against the sim's buckets (3 orders, refilled at 1.5 a second): client A spends the bucket;
    client B, which never had an answer of its own, reads the shared budget and waits for the
    refill. Without the shared budget its order is refused 429 (the test fails)."""
    sim = start_sim({"sim_exchange": {"markets": 2, "volatility": 0.0}})
    http = httpx.AsyncClient(base_url=sim.url, timeout=15)
    resp = await http.post("/_sim/fault", json={"kind": "rate_limit", "mode": "enforce", "order_burst": 3,
                                                "order_rate": 1.5})
    assert resp.status_code == 200, resp.text
    settings = load_settings(sim.env["PF_CONFIG"], environ={"PF__POLYMARKET__WALLET": "eoa"})
    env = await fetch_sim_environment(sim.url)
    accounts = [await open_account(settings, Secrets(), env) for _ in range(2)]
    assert accounts[0].signer == accounts[1].signer
    assert accounts[0].rate is not accounts[1].rate
    a, b = (VenueOrders(acc, RateBudget(r, keys, acc.rate, 10.0)) for acc in accounts)
    market = next(m for m in (await http.get("/_sim/markets")).json() if not m["neg_risk"])
    token = market["tokens"][0]
    put = await http.put(f"/_sim/book/{token['token_id']}", json={"bids": [[0.40, 100]], "asks": [[0.60, 100]],
                                                                  "freeze": True})
    assert put.status_code == 200, put.text
    m = OrderMarket(outcome(token["token_id"], market["version"]), False, token["min_size"])
    try:
        for price in (0.10, 0.11, 0.12):
            await a.place_limit(m, "BUY", price, token["min_size"], token["tick_size"])
        shared = await r.hgetall(keys.ratelimit(accounts[0].signer, ORDERS))
        assert float(shared["remaining"]) < 1  # the venue's report, under the orders bucket
        waits = REGISTRY.get_sample_value("polyfleet_rate_budget_waits_total", {"bucket": "orders"}) or 0
        ack = await b.place_limit(m, "BUY", 0.13, token["min_size"], token["tick_size"])
        assert ack.status == "live"
        assert (REGISTRY.get_sample_value("polyfleet_rate_budget_waits_total", {"bucket": "orders"}) or 0) == waits + 1
        assert accounts[1].rate.throttled_until == 0.0  # never refused
        rows = (await http.get("/_sim/orders", params={"token_id": token["token_id"]})).json()
        assert len([o for o in rows if o["status"] == "LIVE"]) == 4
    finally:
        for acc in accounts:
            await acc.close()
        await http.aclose()
