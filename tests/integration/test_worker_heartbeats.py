"""A maker worker's order heartbeats against sim_exchange (real process, the official SDK, real
Redis; the worker in this process): its resting order outlives the venue's deadline while it beats
and not once it stops; when heartbeats fail it stops placing orders, says so (event, metric,
alert) and starts again when they pass (services/maker_worker/heartbeat.py, docs/venue.md H1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from harness import SimExchangeProcess, eventually
from services.alerter.rules import from_event
from services.maker_worker.executor import NOT_SENT, ClobExecutor
from services.maker_worker.service import MakerWorkerService
from shared.config import load_settings
from shared.keys import Keys
from shared.messages import AuditEvent, decode
from shared.venue.ids import outcome
from shared.venue.orders import OrderMarket


class Worker:
    def __init__(self, sim: SimExchangeProcess, svc: MakerWorkerService, task: asyncio.Task[None],
                 http: httpx.AsyncClient, market: dict[str, Any]) -> None:
        self.sim, self.svc, self.task, self.http, self.market = sim, svc, task, http, market
        self.token: dict[str, Any] = market["tokens"][0]

    @property
    def executor(self) -> ClobExecutor:
        assert isinstance(self.svc.executor, ClobExecutor)
        return self.svc.executor

    async def rest(self, price: float) -> str:
        """A resting BUY of this worker's account (its API key: the one that beats)."""
        t = self.token
        m = OrderMarket(outcome(t["token_id"], self.market["version"]), False, t["min_size"])
        ack = await self.executor.venue.place_limit(m, "BUY", price, t["min_size"], t["tick_size"])
        assert ack.status == "live"
        return ack.order_id

    async def order(self, order_id: str) -> dict[str, Any]:
        rows = (await self.http.get("/_sim/orders", params={"token_id": self.token["token_id"]})).json()
        return next(o for o in rows if o["id"] == order_id)

    async def events(self, r: aioredis.Redis, keys: Keys, kind: str) -> list[AuditEvent]:
        return [m for _, f in await r.xrange(keys.events()) if isinstance(m := decode(f), AuditEvent) and m.kind == kind]


@pytest.fixture
async def start_worker(start_sim: Callable[..., SimExchangeProcess], r: aioredis.Redis
                       ) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    started: list[Worker] = []

    async def _start(overrides: dict[str, Any]) -> Worker:
        sim = start_sim({"sim_exchange": {"markets": 1, "volatility": 0.0}, **overrides})
        http = httpx.AsyncClient(base_url=sim.url, timeout=15)
        market = (await http.get("/_sim/markets")).json()[0]
        put = await http.put(f"/_sim/book/{market['tokens'][0]['token_id']}",
                             json={"bids": [[0.40, 100]], "asks": [[0.60, 100]], "freeze": True})
        assert put.status_code == 200, put.text
        svc = MakerWorkerService(load_settings(sim.env["PF_CONFIG"], environ={}), "w-beat", r)
        w = Worker(sim, svc, asyncio.create_task(svc.run()), http, market)
        started.append(w)
        await eventually(lambda: _armed(w), timeout=30, what="the worker's first accepted heartbeat")
        return w

    yield _start
    for w in started:
        w.svc.stop()
        await asyncio.gather(w.task, return_exceptions=True)
        await w.http.aclose()


async def _armed(w: Worker) -> bool:
    assert not w.task.done(), w.task.exception()
    return w.svc.venue_beat is not None and w.svc.venue_beat.sendable()


async def test_a_resting_order_outlives_the_venue_deadline_while_its_worker_beats_and_not_after(
        start_worker: Callable[[dict[str, Any]], Any]) -> None:
    """The venue's 10 s and the worker's 5 s defaults. Without heartbeats the switch is never armed
    and the order would rest forever after the worker stops (the second half fails)."""
    w: Worker = await start_worker({})
    beat = w.svc.venue_beat
    assert beat is not None
    order_id = await w.rest(0.30)
    placed, beats = time.monotonic(), beat.state.accepted_count

    async def beyond_the_deadline() -> bool:  # three more accepted beats, and more than the venue's 10 s
        return beat.state.accepted_count >= beats + 3 and time.monotonic() - placed > 11.0

    await eventually(beyond_the_deadline, timeout=30, interval=0.2, what="11 s of heartbeats")
    alive = await w.order(order_id)
    assert (alive["status"], alive.get("cancel_reason", "")) == ("LIVE", "")
    w.svc.stop()  # a clean stop cancels only its sessions' orders: this one is left to the venue's switch
    await asyncio.gather(w.task, return_exceptions=True)

    async def expired() -> dict[str, Any] | None:
        o = await w.order(order_id)
        return o if o["status"] == "CANCELED" else None

    gone = await eventually(expired, timeout=20, interval=0.2, what="the venue cancels the order")
    assert gone["cancel_reason"] == "heartbeat_expired"


async def test_failing_heartbeats_close_the_order_gate_say_so_and_it_reopens_when_they_pass(
        start_worker: Callable[[dict[str, Any]], Any], r: aioredis.Redis, keys: Keys) -> None:
    """The sim refuses every heartbeat for 4 s (fault ``heartbeat_outage``; venue deadline 3 s here,
    the worker's gate closes 1 s before it): no order leaves while closed; one event, the metric and
    an alert say so; the resting order is cancelled by the venue; heartbeats pass again and so do orders."""
    w: Worker = await start_worker({"sim_exchange": {"heartbeat_timeout_ms": 3000},
                                    "order_heartbeats": {"interval_sec": 1.0, "retry_sec": 0.5,
                                                         "venue_timeout_sec": 3.0, "fail_closed_margin_sec": 1.0}})
    await eventually(lambda: _true(w.svc.lease.sendable()), timeout=10, what="the send gate open")
    order_id = await w.rest(0.30)
    resp = await w.http.post("/_sim/fault", json={"kind": "heartbeat_outage", "seconds": 4})
    assert resp.status_code == 200, resp.text

    failing = await eventually(lambda: w.events(r, keys, "worker.heartbeat_failing"), timeout=10,
                               what="the worker.heartbeat_failing event")
    assert not w.svc.lease.sendable()
    assert REGISTRY.get_sample_value("polyfleet_worker_heartbeat_gate_open") == 0
    assert (failing[0].level, failing[0].detail["worker"]) == ("error", "w-beat")
    assert "stopped placing orders" in failing[0].reason
    alert = from_event(failing[0].model_dump(), 1)
    assert alert is not None
    assert (alert.kind, alert.severity) == ("venue_heartbeat", "critical")
    held = await w.executor.place(w.token["token_id"], "BUY", 0.31, w.token["min_size"], w.token["tick_size"], "GTC",
                                  lambda: w.svc.lease.may_send(time.monotonic()))
    assert held.error == NOT_SENT  # the desk's send gate: nothing reached the venue

    restored = await eventually(lambda: w.events(r, keys, "worker.heartbeat_restored"), timeout=15,
                                what="the worker.heartbeat_restored event")
    assert len(restored) == 1
    assert len(await w.events(r, keys, "worker.heartbeat_failing")) == 1  # said once
    assert w.svc.lease.sendable()
    assert REGISTRY.get_sample_value("polyfleet_worker_heartbeat_gate_open") == 1
    gone = await w.order(order_id)
    assert (gone["status"], gone["cancel_reason"]) == ("CANCELED", "heartbeat_expired")
    sent = await w.executor.place(w.token["token_id"], "BUY", 0.32, w.token["min_size"], w.token["tick_size"], "GTC",
                                  lambda: w.svc.lease.may_send(time.monotonic()))
    assert sent.ok, sent.error
    prices = {o["price"] for o in (await w.http.get("/_sim/orders", params={"token_id": w.token["token_id"]})).json()}
    assert prices == {0.30, 0.32}  # the order held back while closed never reached the venue


async def _true(value: bool) -> bool:
    return value
