"""A token session's venue in the integration tests: a one-market sim_exchange process, the worker's
venue room on it (the official SDK), and ticks of its token published on the gateway's channel by
a small poller of the sim's top of book, in the shape shared/ticks.py defines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness import SimExchangeProcess
from services.maker_worker.executor import ClobExecutor
from shared.clock import now_ms
from shared.config import Secrets, load_settings
from shared.keys import Keys
from shared.tickfeed import TickFeed
from shared.ticks import Tick
from shared.venue.account import open_account
from shared.venue.environment import fetch_sim_environment
from shared.venue.orders import VenueOrders

WORKER = "worker-it"


class Venue:
    def __init__(self, sim: SimExchangeProcess, http: httpx.AsyncClient, token: str, executor: ClobExecutor) -> None:
        self.sim, self.http, self.token, self.executor = sim, http, token, executor

    async def path(self, points: list[float], interval_ms: int = 150) -> None:
        resp = await self.http.put(f"/_sim/price/{self.token}", json={"path": points, "interval_ms": interval_ms})
        assert resp.status_code == 200, resp.text
        await asyncio.sleep(len(points) * interval_ms / 1000 + 0.6)

    async def orders(self, side: str | None = None) -> list[dict[str, Any]]:
        rows = (await self.http.get("/_sim/orders", params={"token_id": self.token})).json()
        return [o for o in rows if side is None or o["side"] == side]


async def publish_ticks(r: aioredis.Redis, keys: Keys, http: httpx.AsyncClient, token: str,
                        stop: asyncio.Event) -> None:
    seq = 0
    while not stop.is_set():
        markets = (await http.get("/_sim/markets")).json()
        top = next(t for m in markets for t in m["tokens"] if t["token_id"] == token)
        seq += 1
        tick = Tick(token, seq, top["best_bid"], top["best_ask"], 100.0, 100.0, None, top["tick_size"], now_ms(), now_ms())
        await r.hset(keys.book(token), mapping=tick.to_hash())
        await r.publish(keys.tick(token), tick.to_json())
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_venue(start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis, keys: Keys,
                     sim: dict[str, Any] | None = None) -> AsyncIterator[tuple[Venue, TickFeed]]:
    """A one-market sim (``sim``: more ``sim_exchange`` settings), the worker's venue room on it, and
    ticks of its first token published on the gateway's channel."""
    process = start_sim({"sim_exchange": {"markets": 1, "volatility": 0.0, **(sim or {})}})
    http = httpx.AsyncClient(base_url=process.url, timeout=5)
    token = (await http.get("/_sim/markets")).json()[0]["tokens"][0]["token_id"]
    settings = load_settings(process.env["PF_CONFIG"], environ={})
    env = await fetch_sim_environment(process.url)
    account = await open_account(settings, Secrets(), env)
    v = Venue(process, http, token, ClobExecutor(VenueOrders(account)))
    await v.path([0.50], 10)
    stop = asyncio.Event()
    feed = TickFeed(r, keys)
    tasks = [asyncio.create_task(publish_ticks(r, keys, http, token, stop)), asyncio.create_task(feed.run(stop))]
    try:
        yield v, feed
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await feed.close()
        await account.close()
        await http.aclose()
