"""services/alerter against a real Redis, a real orchestrator loop and a real HTTP webhook
receiver (uvicorn on a free loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Request, Response

from harness import RedisServer, ServiceProcess, eventually, free_port
from services.alerter.service import AlerterService
from shared.config import ConfigError, Settings
from shared.keys import GROUP_ALERTER, REQUESTER_ORCHESTRATOR, Keys
from shared.messages import AuditEvent, ControlRequest, stable_id
from shared.redisio import add_message
from tests.integration.api_support import orchestrator_running, register_worker


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_next = 0
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.fail_next:
                self.fail_next -= 1
                return Response(status_code=503)
            self.bodies.append(await request.json())
            return Response(status_code=200)


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, str]]:
    rec, port = Receiver(), free_port()
    server = uvicorn.Server(uvicorn.Config(rec.app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield rec, f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


def settings(**alerts: object) -> Settings:
    return Settings.model_validate({"alerts": {"enabled": True, "check_interval_sec": 0.05, **alerts},
                                    "scheduler": {"poll_interval_sec": 0.02}})


@contextlib.asynccontextmanager
async def alerter(r: aioredis.Redis, s: Settings) -> AsyncIterator[AlerterService]:
    svc = AlerterService(s, "a1", r)

    async def loop() -> None:
        await svc.setup()
        while not svc.stopping:
            await svc.step(block_ms=20)

    task = asyncio.create_task(loop())
    # its group starts at the end of pf:events ("$"): what a test sends before it exists is never seen
    await eventually(lambda: _listening(r, svc), what="the alerter's consumer group")
    try:
        yield svc
    finally:
        svc.stop()
        await task
        assert svc._http is not None  # the service made its own client: close it
        await svc._http.aclose()


async def halt(r: aioredis.Redis, keys: Keys, n: int, mode: str = "halt") -> None:
    await add_message(r, keys.control(), ControlRequest(id=stable_id("halt", n), ts_event=1, ts_init=1, producer="cli",
                                                        action="halt", target=mode, reason=f"drill {n}"))


async def test_a_halt_reaches_the_webhook_once_in_telegram_format(r: aioredis.Redis, keys: Keys,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async with receiving() as (rec, url):
        monkeypatch.setenv("PF_ALERT_WEBHOOK_URL", url)
        s = settings(format="telegram", telegram_chat_id="-100777", dedup_sec=60)
        async with alerter(r, s) as svc, orchestrator_running(r):
            await halt(r, keys, 1)
            await eventually(lambda: _n(rec, 1), timeout=10, what="telegram alert")
            await halt(r, keys, 2)  # the same alert again within dedup_sec: suppressed
            await eventually(lambda: _true(svc.counts["suppressed"] == 1), timeout=10, what="suppressed")
    [body] = rec.bodies
    assert body["chat_id"] == "-100777"
    assert "halt: Kill switch set to halt by cli: drill 1" in body["text"]


async def test_worker_death_gateway_stall_and_rejection_rate(r: aioredis.Redis, keys: Keys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async with receiving() as (rec, url):
        monkeypatch.setenv("PF_ALERT_WEBHOOK_URL", url)
        s = settings(gateway_stall_sec=0.2, rejections_per_minute=3, dedup_sec=60)
        await register_worker(r, keys, "w9")
        await r.sadd(keys.worker_tokens("w9"), "111")
        async with alerter(r, s) as svc:
            await eventually(lambda: _true("w9" in svc.workers.alive_before), what="w9 seen alive")
            await r.delete(keys.worker_lease("w9"))
            await eventually(lambda: _kinds(rec, "worker_dead"), timeout=10, what="worker_dead alert")

            await r.sadd(keys.gw_want(REQUESTER_ORCHESTRATOR), "111")  # wanted, and no gateway alive
            await eventually(lambda: _kinds(rec, "gateway_stall"), timeout=10, what="gateway_stall alert")

            for n in range(3):
                await add_message(r, keys.events(), AuditEvent(
                    id=f"rej{n}", ts_event=1, ts_init=1_700_000_000_000 + n, producer="orchestrator:o",
                    kind="token.rejected", level="info", token_id=str(n), reason="over risk.max_notional_total"))
            await eventually(lambda: _kinds(rec, "risk_rejections"), timeout=10, what="rejection-rate alert")
    by_kind = {b["kind"]: b for b in rec.bodies}
    assert by_kind["worker_dead"]["subject"] == "w9"
    assert by_kind["worker_dead"]["severity"] == "critical"
    assert "over risk.max_notional_total" in by_kind["risk_rejections"]["text"]
    assert len(rec.bodies) == 3


async def test_a_failing_webhook_is_retried(r: aioredis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    async with receiving() as (rec, url):
        monkeypatch.setenv("PF_ALERT_WEBHOOK_URL", url)
        rec.fail_next = 2
        async with alerter(r, settings()) as svc, orchestrator_running(r):
            await halt(r, keys, 1, "reduce_only")
            await eventually(lambda: _true(svc.counts["sent"] == 1), timeout=10, what="alert after two 503s")
            assert svc.counts["failed"] == 0
    assert rec.bodies[0]["severity"] == "warning"


async def test_enabled_without_a_webhook_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_ALERT_WEBHOOK_URL", raising=False)
    with pytest.raises(ConfigError, match="PF_ALERT_WEBHOOK_URL"):
        AlerterService(settings(), "a1")


async def test_the_alerter_process_starts_beats_and_stops(redis_server: RedisServer, r: aioredis.Redis,
                                                          keys: Keys, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("monitoring: {heartbeat_interval_sec: 0.3}\n")
    proc = ServiceProcess("alerter", {"PF_CONFIG": str(cfg), "PF_REDIS_URL": redis_server.url}, tmp_path).start()
    try:
        await eventually(lambda: r.keys(keys.health_pattern("alerter")), timeout=20, what="alerter heartbeat")
        assert await r.xinfo_groups(keys.events())
    finally:
        assert proc.stop() == 0, proc.log()


async def _listening(r: aioredis.Redis, svc: AlerterService) -> bool:
    if svc.consumer is None or not await r.exists(svc.keys.events()):
        return False
    return any(g["name"] == GROUP_ALERTER for g in await r.xinfo_groups(svc.keys.events()))


async def _n(rec: Receiver, n: int) -> bool:
    return len(rec.bodies) >= n


async def _kinds(rec: Receiver, kind: str) -> bool:
    return any(b["kind"] == kind for b in rec.bodies)


async def _true(v: bool) -> bool:
    return v
