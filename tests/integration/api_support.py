"""Shared helpers for the API tests: an app on the test Redis, a real orchestrator loop, seeding."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from services.api.app import create_app
from services.orchestrator.service import OrchestratorService
from shared.clock import now_ms
from shared.config import Secrets, Settings
from shared.keys import Keys
from shared.messages import Fill, SessionReport, Signal, TradeStatus, stable_id
from shared.redisio import add_message

API_TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def api_settings(**over: object) -> Settings:
    base: dict[str, object] = {"scheduler": {"poll_interval_sec": 0.02}, "api": {"control_wait_sec": 3.0},
                               "cooldown": {"cooldown_sec_per_token": 0}}
    base.update(over)
    return Settings.model_validate(base)


def make_app(r: aioredis.Redis, keys: Keys, settings: Settings | None = None, **secrets: str) -> FastAPI:
    return create_app(settings or api_settings(), r, keys, Secrets(api_token=API_TOKEN, **secrets))


def client(app: FastAPI, auth: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                             headers=AUTH if auth else {}, timeout=10)


@contextlib.asynccontextmanager
async def orchestrator_running(r: aioredis.Redis, settings: Settings | None = None) -> AsyncIterator[OrchestratorService]:
    svc = OrchestratorService(settings or api_settings(), "o-api", r)

    async def loop() -> None:
        while not svc.stopping:
            await svc.step(block_ms=20)

    task = asyncio.create_task(loop())
    try:
        yield svc
    finally:
        svc.stop()
        await task


async def register_worker(r: aioredis.Redis, keys: Keys, wid: str = "w1", capacity: int = 10) -> None:
    await r.hset(keys.worker(wid), mapping={"capacity": capacity, "load": 0, "host": "h", "pid": 1,
                                             "last_beat": now_ms(), "draining": "0"})
    await r.sadd(keys.workers(), wid)
    await r.set(keys.worker_lease(wid), "1", px=60_000)


async def buy_signal(r: aioredis.Redis, keys: Keys, token: str = TOKEN, n: int = 0, side: str = "BUY") -> None:
    await add_message(r, keys.signals(), Signal(
        id=stable_id("api-test", side, token, n), ts_event=now_ms(), ts_init=now_ms(), producer="test",
        side=side, token_id=token, account="0x" + "a" * 40, size=20, price=0.5, source="poll",  # type: ignore[arg-type]
        slug="will-it-rain", outcome="Yes"))


async def started(r: aioredis.Redis, keys: Keys, epoch: int, token: str = TOKEN, worker: str = "w1") -> None:
    await add_message(r, keys.sessions(), SessionReport(
        id=stable_id("started", token, epoch), ts_event=now_ms(), ts_init=now_ms(), producer=worker,
        token_id=token, epoch=epoch, worker=worker, status="started"))


async def fill(r: aioredis.Redis, keys: Keys, side: str, price: float, size: float, token: str = TOKEN,
               n: int = 0, trade: str = "", status: str = "CONFIRMED") -> None:
    await add_message(r, keys.fills(), Fill(
        id=stable_id("fill", token, side, n), ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=token,
        epoch=1, worker="w1", order_id=f"o{n}", side=side, price=price, size=size,  # type: ignore[arg-type]
        trade_id=trade, status=status))  # type: ignore[arg-type]


async def trade_status(r: aioredis.Redis, keys: Keys, trade: str, status: str, token: str = TOKEN) -> None:
    await add_message(r, keys.fills(), TradeStatus(
        id=stable_id("trade", trade, status), ts_event=now_ms(), ts_init=now_ms(), producer="w1", token_id=token,
        epoch=1, worker="w1", trade_id=trade, status=status))  # type: ignore[arg-type]


async def wait_for(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    from harness import eventually

    return await eventually(check, timeout=timeout)
